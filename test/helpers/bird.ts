// Test helper: a real BIRD 2 (`bird` from Debian bird2) in a network namespace with its own config,
// control socket and temp dir; `birdc` to query it. Killed and cleaned in t.teardown.
//   const bird = await startBird(t, { netns: pair.b.name, config: birdConfig });
//   await bird.birdc('show protocols');  await bird.waitEstablished('tabby4');
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { hasProgram, runTag, waitFor, type Teardown } from './netns.js';

const execFileP = promisify(execFile);

export const haveBird = (): boolean => hasProgram('bird') && hasProgram('birdc');

export interface BirdOptions {
  /** netns name to run in */
  netns: string;
  /** bird.conf text */
  config: string;
}

/** One route of `birdc show route <prefix> all`, parsed. */
export interface BirdRoute {
  prefix: string;
  protocol: string;
  best: boolean;
  /** gateway of 'via X on dev' ('' for other kinds) */
  via: string;
  dev: string;
  asPath: number[];
  nextHop: string;
  localPref?: number;
  med?: number;
  communities: string[];
  largeCommunities: string[];
  originatorId?: string;
  clusterList: string[];
  /** every `BGP.x: value` line */
  bgp: Record<string, string>;
}

/** Parse `show route … all` output. */
export function parseBirdRoutes(out: string): BirdRoute[] {
  const routes: BirdRoute[] = [];
  let prefix = '';
  let cur: BirdRoute | undefined;
  for (const line of out.split('\n')) {
    const head = /^(\S+)?\s+\w+ \[(\S+) [^\]]*\]( \*)?/.exec(line);
    if (head && /\[/.test(line) && !line.startsWith('\t')) {
      if (head[1] && head[1] !== 'Table') prefix = head[1];
      cur = {
        prefix,
        protocol: head[2] ?? '',
        best: !!head[3],
        via: '',
        dev: '',
        asPath: [],
        nextHop: '',
        communities: [],
        largeCommunities: [],
        clusterList: [],
        bgp: {},
      };
      routes.push(cur);
      continue;
    }
    if (!cur) continue;
    const via = /^\s+via (\S+) on (\S+)/.exec(line);
    if (via) {
      cur.via = via[1] ?? '';
      cur.dev = via[2] ?? '';
      continue;
    }
    const attr = /^\s+BGP\.(\w+): ?(.*)$/.exec(line);
    if (!attr) continue;
    const [, k = '', v = ''] = attr;
    cur.bgp[k] = v.trim();
    if (k === 'as_path') cur.asPath = v.trim() ? v.trim().split(/\s+/).map(Number) : [];
    else if (k === 'next_hop') cur.nextHop = v.trim().split(/\s+/)[0] ?? '';
    else if (k === 'local_pref') cur.localPref = Number(v);
    else if (k === 'med') cur.med = Number(v);
    else if (k === 'community') cur.communities = v.match(/\([^)]*\)/g) ?? [];
    else if (k === 'large_community') cur.largeCommunities = v.match(/\([^)]*\)/g) ?? [];
    else if (k === 'originator_id') cur.originatorId = v.trim();
    else if (k === 'cluster_list') cur.clusterList = v.trim().split(/\s+/).filter(Boolean);
  }
  return routes;
}

export interface Bird {
  dir: string;
  /** `show route <prefix> all` (or `show route all` without prefix), parsed. */
  routes(prefix?: string): Promise<BirdRoute[]>;
  socket: string;
  /** Run one birdc command, return its output. */
  birdc(cmd: string): Promise<string>;
  /** The protocol's row of `show protocols` (e.g. 'tabby4 BGP --- up 12:00:00 Established'), or ''. */
  protocolState(name: string): Promise<string>;
  /** Wait until `show protocols` says Established for the protocol; false on timeout. */
  waitEstablished(name: string, timeoutMs?: number): Promise<boolean>;
  /** Replace the config file and `birdc configure`. */
  reconfigure(config: string): Promise<string>;
  /** SIGKILL (as a crash: the kernel closes its TCP connections) and wait for exit. */
  kill(): Promise<void>;
  /** SIGSTOP: a hung peer (connections stay open, nothing is sent: hold timers expire). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** Start again with the same config (after kill/stop). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  readonly running: boolean;
}

export async function startBird(t: Teardown, o: BirdOptions): Promise<Bird> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}-bird-`));
  const conf = path.join(dir, 'bird.conf');
  const socket = path.join(dir, 'bird.ctl');
  fs.writeFileSync(conf, o.config);
  let proc: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const log = path.join(dir, 'bird.log');

  const launch = async (): Promise<void> => {
    try {
      fs.unlinkSync(socket);
    } catch {
      /* not there */
    }
    const out = fs.openSync(log, 'a');
    const p = spawn('ip', ['netns', 'exec', o.netns, 'bird', '-f', '-c', conf, '-s', socket], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    proc = p;
    exited = new Promise((r) => p.once('exit', () => r()));
    const ok = await waitFor(
      async () => {
        if (p.exitCode !== null) return true;
        try {
          await execFileP('birdc', ['-s', socket, 'show', 'status'], { timeout: 2000 });
          return true;
        } catch {
          return false;
        }
      },
      10_000,
      50,
    );
    if (!ok || p.exitCode !== null) throw new Error(`bird did not start: ${fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''}`);
  };

  const kill = async (): Promise<void> => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGCONT');
    p.kill('SIGKILL');
    await exited;
  };

  const birdc = async (cmd: string): Promise<string> => {
    try {
      const r = await execFileP('birdc', ['-s', socket, ...cmd.split(/\s+/).filter(Boolean)], { timeout: 5000 });
      return r.stdout;
    } catch (e) {
      // birdc exits non-zero for answers like "Network not found": return what it printed.
      const err = e as { stdout?: string; stderr?: string };
      if (typeof err.stdout === 'string' && err.stdout.length) return err.stdout + (err.stderr ?? '');
      throw e;
    }
  };

  t.teardown(async () => {
    await kill();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await launch();

  const protocolState = async (name: string): Promise<string> => {
    const out = await birdc('show protocols').catch(() => '');
    return out.split('\n').find((l) => l.split(/\s+/)[0] === name) ?? '';
  };
  return {
    dir,
    socket,
    birdc,
    async routes(prefix?: string) {
      return parseBirdRoutes(await birdc(prefix ? `show route ${prefix} all` : 'show route all'));
    },
    protocolState,
    async waitEstablished(name, timeoutMs = 15_000) {
      return waitFor(async () => (await protocolState(name)).includes('Established'), timeoutMs, 100);
    },
    async reconfigure(config) {
      fs.writeFileSync(conf, config);
      return birdc('configure');
    },
    kill,
    freeze() {
      proc?.kill('SIGSTOP');
    },
    thaw() {
      proc?.kill('SIGCONT');
    },
    async restart() {
      await kill();
      await launch();
    },
    async stop() {
      await kill();
    },
    get running() {
      return !!proc && proc.exitCode === null && proc.signalCode === null;
    },
  };
}
