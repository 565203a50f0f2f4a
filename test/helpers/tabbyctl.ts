// Runs the compiled tabbyctl as a user would, in a clean environment (no datastore settings or config
// file leak in from the machine running the tests), and collects its exit code and output.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/src/cli/main.js of this build (this file runs from dist/test/helpers). */
export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runTabbyctl(
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TABBY_CONFIG: '/dev/null', ...opts.env };
    const c = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 120_000 });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
    });
    c.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    c.once('error', reject);
    c.once('exit', (code) => resolve({ code, stdout, stderr }));
    c.stdin.end(opts.input ?? '');
  });
}
