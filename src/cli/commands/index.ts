// The command groups of tabbyctl. Each module exports one yargs CommandModule; add yours here.
import type { CommandModule } from 'yargs';
import { versionCommand } from './version.js';
import { nodeCommand } from './node.js';
import { labCommand } from './lab.js';
import { ipamCommand } from './ipam.js';
import { datastoreCommand } from './datastore.js';
import { resourceCommands } from './resources.js';
import { bgpCommand } from './bgp.js';
import { labelCommand, policyCommand } from './policy.js';
import { clusterCommand } from './cluster.js';
import { routeCommand } from './route.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  versionCommand,
  nodeCommand,
  labCommand,
  ipamCommand,
  datastoreCommand,
  ...resourceCommands,
  bgpCommand,
  labelCommand,
  policyCommand,
  clusterCommand,
  routeCommand,
];
