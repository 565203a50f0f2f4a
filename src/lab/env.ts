// The environment a lab node's tools see: the lab's datastore (file store in the lab's state dir) and
// the node's state dir (its agent's status socket), so `tabbyctl lab exec node-1 -- tabbyctl ipam show`
// reads the lab's store and `… -- tabbyctl node status` that node's agent. `tabbyctl lab env [NODE]`
// prints the same as shell exports for the host shell (unix sockets work across network namespaces).
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './pods.js';
import type { LabState } from './state.js';

/** How every lab node's tabby-node finds its address (its underlay interface). */
export const LAB_AUTODETECTION_METHOD = 'interface=^eth0$';

export function labNodeStateDir(state: LabState, node: string): string {
  return path.join(state.stateDir, 'nodes', node);
}

/** Datastore and state settings of the lab (and of one node when named). */
export function labEnv(state: LabState, node?: string): Record<string, string> {
  const env: Record<string, string> = {
    DATASTORE_TYPE: 'file',
    TABBY_DATASTORE_DIR: state.datastoreDir,
    TABBY_LAB_DIR: state.stateDir,
  };
  if (node) {
    env.TABBY_STATE_DIR = labNodeStateDir(state, node);
    env.NODENAME = node;
    env.IP_AUTODETECTION_METHOD = LAB_AUTODETECTION_METHOD;
  }
  return env;
}

/** The tabbyctl entry point of this build (for when `tabbyctl` is not on PATH). */
export function tabbyctlMain(): string {
  return path.join(repoRoot(), 'dist/src/cli/main.js');
}

function onPath(cmd: string, pathVar: string | undefined): boolean {
  return (pathVar ?? '').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d || '.', cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** `tabbyctl …` becomes `node dist/src/cli/main.js …` when no tabbyctl is installed. */
export function resolveCommand(argv: readonly string[], pathVar = process.env.PATH): string[] {
  if (argv[0] === 'tabbyctl' && !onPath('tabbyctl', pathVar)) return [process.execPath, tabbyctlMain(), ...argv.slice(1)];
  return [...argv];
}

const shq = (s: string): string => (/^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Shell lines for `eval "$(tabbyctl lab env [NODE])"`. */
export function renderEnvExports(state: LabState, node?: string): string {
  const lines = Object.entries(labEnv(state, node)).map(([k, v]) => `export ${k}=${shq(v)}`);
  if (!onPath('tabbyctl', process.env.PATH)) lines.push(`alias tabbyctl=${shq(`${process.execPath} ${tabbyctlMain()}`)}`);
  return `${lines.join('\n')}\n`;
}
