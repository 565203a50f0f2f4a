#!/usr/bin/env node
// tabbyctl — the operator's CLI (calicoctl-like). Each command group lives in its own module
// under src/cli/commands/ and is registered here; rendering stays inside src/cli/.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.js';
import { parseLogLevel } from '../common/log-level.js';

export async function main(argv: string[]): Promise<void> {
  try {
    parseLogLevel(process.env.TABBY_LOG_LEVEL, 'TABBY_LOG_LEVEL');
  } catch (e) {
    process.stderr.write(`tabbyctl: ${(e as Error).message}\n`);
    process.exit(2);
  }
  let cli = yargs(argv)
    .scriptName('tabbyctl')
    .strict()
    .demandCommand(1, 'name a command: tabbyctl --help')
    .recommendCommands()
    .completion('completion', 'print a shell completion script (bash/zsh)')
    .help()
    .alias('h', 'help')
    .wrap(Math.min(120, process.stdout.columns || 100))
    .fail((msg, err, y) => {
      if (err) throw err;
      process.stderr.write(`${msg}\n\n`);
      y.showHelp('error');
      process.exit(2);
    });
  for (const c of commands) cli = cli.command(c);
  await cli.parseAsync();
}

main(hideBin(process.argv)).catch((err: unknown) => {
  process.stderr.write(`tabbyctl: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
