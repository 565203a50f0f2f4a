// `tabby-node --help`: the flags (one per AGENT_ENV entry) and the environment, formatted by yargs.
// Its own module, imported only for --help: the running agent parses flags with node:util (config.ts)
// and never loads yargs.
import yargs from 'yargs';
import { AGENT_ENV } from './config.js';

/** The help text tabby-node prints for --help. */
export async function agentHelp(): Promise<string> {
  let y = yargs([])
    .scriptName('tabby-node')
    .usage('tabby-node [flags]\n\nThe tabby node agent. Every flag has an environment variable of the same meaning; the flag wins.')
    .help(false)
    .version(false)
    .exitProcess(false);
  for (const e of AGENT_ENV) {
    y = y.option(e.flag, {
      type: 'string',
      describe: `${e.description} [env ${e.name}${e.default !== undefined ? `, default ${e.default}` : ''}]`,
    });
  }
  const env = AGENT_ENV.map((e) => `  ${e.name.padEnd(30)} ${e.description}${e.default !== undefined ? ` (default ${e.default})` : ''}`);
  return `${await y.getHelp()}\n\nEnvironment:\n${env.join('\n')}\n`;
}
