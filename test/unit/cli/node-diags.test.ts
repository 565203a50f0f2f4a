// node diags' archive: a ustar that GNU tar lists and extracts byte for byte.
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { tarFiles } from '../../../src/cli/commands/node-diags.js';

t.test('tar round trip', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tbdiags-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const big = Buffer.alloc(5000, 7);
  const file = path.join(dir, 'a.tar.gz');
  fs.writeFileSync(
    file,
    zlib.gzipSync(
      tarFiles([
        { name: 'd/x.json', data: Buffer.from('{"a":1}\n') },
        { name: 'd/big.bin', data: big },
        { name: 'd/empty', data: Buffer.alloc(0) },
      ]),
    ),
  );
  t.same(execFileSync('tar', ['tzf', file], { encoding: 'utf8' }).trim().split('\n'), ['d/x.json', 'd/big.bin', 'd/empty']);
  execFileSync('tar', ['xzf', file, '-C', dir]);
  t.equal(fs.readFileSync(path.join(dir, 'd/x.json'), 'utf8'), '{"a":1}\n');
  t.same(fs.readFileSync(path.join(dir, 'd/big.bin')), big);
  t.equal(fs.statSync(path.join(dir, 'd/empty')).size, 0);
});
