// tabbyctl datastore check | backup FILE | restore FILE — the store itself, for an operator.
//   check    file store: replays the log and reports its size, revision and keys, or the damage
//            (file and byte offset) that stops writes; exit 1 on damage. etcd: answers, revision, keys.
//   backup   every key under /tabby/ with its value, taken at one revision, as one JSON document
//            (written beside FILE and renamed, mode 0600). Works for the file store and etcd.
//   restore  the store becomes exactly the backup, all or nothing: the file is read and checked whole
//            first; the file store is replaced by one snapshot renamed over its log (a damaged log
//            too). etcd: the keys under /tabby/ are replaced in bounded transactions (etcd-restore.ts);
//            refused into a non-empty /tabby/ unless --force.
import { ROOT_PREFIX } from '../../datastore/keys.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { openDatastore, type Datastore } from '../../datastore/index.js';
import { FileDatastore } from '../../datastore/file.js';
import { EtcdDatastore } from '../../datastore/etcd.js';
import { RESTORE_MARKER, restoreEtcd } from '../../datastore/etcd-restore.js';
import { readBounded } from '../../common/bounded-read.js';
import { echo } from '../../common/echo.js';
import { datastoreConfigFromFlags, withDatastoreFlags, type DatastoreFlags } from './resources.js';

const BACKUP_FORMAT = 'tabby-datastore-backup/v1';
/** A backup is read whole before anything changes: this bounds it (a store of a large cluster fits). */
const MAX_BACKUP_BYTES = 256 << 20;

interface Backup {
  format: string;
  type: string;
  revision: number;
  created: string;
  kv: { key: string; value: unknown }[];
}

type Opts = DatastoreFlags & { file?: string; force?: boolean };

const write = (s: string) => process.stdout.write(`${s}\n`);
function fail(msg: string): never {
  process.stderr.write(`tabbyctl datastore: ${msg}\n`);
  process.exit(1);
}

async function withDs<R>(a: DatastoreFlags, fn: (ds: Datastore) => Promise<R>): Promise<R> {
  const ds = await openDatastore(datastoreConfigFromFlags(a));
  try {
    return await fn(ds);
  } finally {
    await ds.close().catch(() => undefined);
  }
}

/** Parse and check a backup document whole; throws with what is wrong. */
export function parseBackup(text: string, source: string): Backup {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source} is not JSON: ${echo((e as Error).message, 120)}`);
  }
  const b = doc as Partial<Backup>;
  if (typeof doc !== 'object' || doc === null || b.format !== BACKUP_FORMAT)
    throw new Error(`${source} is not a tabby datastore backup (format ${echo(b?.format)}, want ${BACKUP_FORMAT})`);
  if (!Array.isArray(b.kv)) throw new Error(`${source}: "kv" must be a list`);
  const seen = new Set<string>();
  b.kv.forEach((e: unknown, i) => {
    const kv = e as { key?: unknown; value?: unknown };
    if (typeof e !== 'object' || e === null || typeof kv.key !== 'string' || !kv.key.startsWith(ROOT_PREFIX) || kv.value === undefined) {
      throw new Error(`${source}: kv[${i}] must be {key: "${ROOT_PREFIX}…", value} (got ${echo(e)})`);
    }
    if (seen.has(kv.key)) throw new Error(`${source}: key ${echo(kv.key)} appears twice`);
    seen.add(kv.key);
  });
  return b as Backup;
}

export const datastoreCommand: CommandModule<object, Opts> = {
  command: 'datastore <command>',
  describe: 'the datastore itself: check it, back it up, restore a backup',
  builder: (y: Argv<object>) =>
    withDatastoreFlags(y)
      .command<Opts>(
        'check',
        'replay the store and report its state or the damage that stops writes (exit 1)',
        (yy) => yy,
        async (a) =>
          withDs(a, async (ds) => {
            if (ds instanceof FileDatastore) {
              const r = ds.inspect();
              write(`File store ${r.file}: ${r.bytes} bytes, revision ${r.revision}, ${r.keys} keys.`);
              if (r.corrupt) {
                write(
                  `Corrupt at byte offset ${r.corrupt.offset}: a damaged record with valid records after it. Writes are refused; readers see the state before it.`,
                );
                write(
                  'Restore a backup (tabbyctl datastore restore FILE) — nothing was truncated, so the damaged log can also be repaired by hand.',
                );
                process.exitCode = 1;
              } else {
                write('No damage found.');
              }
              return;
            }
            const { items, revision } = await ds.list(ROOT_PREFIX);
            write(`${ds.kind} store: revision ${revision}, ${items.length} keys under ${ROOT_PREFIX}.`);
            if (ds instanceof EtcdDatastore && (await ds.client.get(RESTORE_MARKER).string()) !== null) {
              write(`A restore did not finish (${RESTORE_MARKER} is set): re-run it with --force.`);
              process.exitCode = 1;
            } else write('No damage found.');
          }),
      )
      .command<Opts>(
        'backup <file>',
        'write every key at one revision to FILE (JSON, mode 0600)',
        (yy) => yy.positional('file', { type: 'string', demandOption: true }),
        async (a) =>
          withDs(a, async (ds) => {
            const file = path.resolve(a.file!);
            if (ds instanceof FileDatastore && ds.corruption())
              process.stderr.write('tabbyctl datastore: warning: the store is damaged; the backup holds the state before the damage\n');
            const { items, revision } = await ds.list(ROOT_PREFIX);
            const doc: Backup = {
              format: BACKUP_FORMAT,
              type: ds.kind,
              revision,
              created: new Date().toISOString(),
              kv: items.map((kv) => ({ key: kv.key, value: kv.value })),
            };
            const tmp = `${file}.${process.pid}.tmp`;
            try {
              const fd = fs.openSync(tmp, 'wx', 0o600);
              try {
                fs.writeFileSync(fd, `${JSON.stringify(doc)}\n`);
                fs.fsyncSync(fd);
              } finally {
                fs.closeSync(fd);
              }
              fs.renameSync(tmp, file);
            } catch (e) {
              try {
                fs.unlinkSync(tmp);
              } catch {
                /* not created */
              }
              fail(`cannot write ${echo(file, 200)}: ${(e as Error).message}`);
            }
            write(`Backed up ${items.length} keys at revision ${revision} to ${file}.`);
          }),
      )
      .command<Opts>(
        'restore <file>',
        'make the store exactly the backup in FILE (file store: all or nothing; etcd: into an empty /tabby/ unless --force)',
        (yy) =>
          yy.positional('file', { type: 'string', demandOption: true }).option('force', {
            type: 'boolean',
            default: false,
            describe: 'etcd: replace the keys already under /tabby/',
          }),
        async (a) => {
          let backup: Backup;
          try {
            backup = parseBackup(readBounded(a.file!, MAX_BACKUP_BYTES).toString('utf8'), a.file === '-' ? 'stdin' : a.file!);
          } catch (e) {
            fail(`${(e as Error).message}: nothing was changed`);
          }
          await withDs(a, async (ds) => {
            if (ds instanceof EtcdDatastore) {
              const r = await restoreEtcd(ds.client, ROOT_PREFIX, backup.kv, { force: a.force === true }).catch((e: unknown) =>
                fail(`${(e as Error).message}`),
              );
              write(
                `Restored ${backup.kv.length} keys from ${a.file} (taken at revision ${backup.revision}) in ${r.transactions} transaction(s)` +
                  `${r.replaced ? `, replacing ${r.replaced} keys` : ''}; etcd is now at revision ${r.revision}.`,
              );
              return;
            }
            if (!(ds instanceof FileDatastore)) fail(`restore is not supported for the ${ds.kind} store: nothing was changed`);
            const rev = await ds.restore(backup.kv).catch((e: unknown) => fail(`${(e as Error).message}`));
            write(
              `Restored ${backup.kv.length} keys from ${a.file} (taken at revision ${backup.revision}); the store is now at revision ${rev}.`,
            );
          });
        },
      )
      .demandCommand(1, 'name a datastore command: check, backup, restore'),
  handler: () => undefined,
};
