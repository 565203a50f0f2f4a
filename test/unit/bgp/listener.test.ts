// The BGP listener's handling of connections it does not want: 300 connections from an address that
// is not a configured peer write one warning, not 300 (the rest are summed up in a periodic summary);
// the rate limit is per source and per window.
import t from 'tap';
import net from 'node:net';
import { BgpListener, RepeatLimiter } from '../../../src/bgp/listener.js';
import type { Logger } from '../../../src/common/log.js';

function recordingLogger(lines: { level: string; obj: unknown; msg: string }[]): Logger {
  const l = {
    child: () => l,
    ...Object.fromEntries(
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal'].map((level) => [
        level,
        (obj: unknown, msg?: string) => {
          lines.push({ level, obj, msg: msg ?? String(obj) });
        },
      ]),
    ),
  };
  return l as unknown as Logger;
}

t.test('RepeatLimiter: first per source per window, the rest counted', async (t) => {
  let now = 0;
  const r = new RepeatLimiter(60_000, () => now, 3);
  t.equal(r.allow('a'), true);
  t.equal(r.allow('a'), false);
  t.equal(r.allow('b'), true, 'per source');
  now = 60_000;
  t.equal(r.allow('a'), true, 'again after the window');
  t.same(r.takeSummary(), { total: 1, bySource: { a: 1 } });
  t.equal(r.takeSummary(), undefined, 'nothing new');
  t.equal(r.allow('c'), true);
  t.equal(r.allow('d'), true);
  t.equal(r.allow('e'), false, 'beyond maxSources (3): counted as other, never a new map entry');
  t.same(r.takeSummary(), { total: 1, bySource: { '(other sources)': 1 } });
});

t.test('300 connections from an unconfigured address: one warning and one summary line', async (t) => {
  const lines: { level: string; obj: unknown; msg: string }[] = [];
  const l = new BgpListener({ address: '127.0.0.1', port: 0 }, recordingLogger(lines));
  await l.start();
  t.teardown(() => l.stop());
  const port = l.port;
  let closed = 0;
  await Promise.all(
    Array.from(
      { length: 300 },
      () =>
        new Promise<void>((resolve) => {
          const c = net.connect({ host: '127.0.0.1', port });
          c.on('error', () => undefined);
          c.on('close', () => {
            closed++;
            resolve();
          });
        }),
    ),
  );
  t.equal(closed, 300, 'every connection closed');
  const warns = lines.filter((x) => x.level === 'warn');
  t.equal(warns.length, 1, `one warning line, not 300 (got ${warns.length})`);
  t.ok(l.logSummary());
  const summary = lines.filter((x) => x.level === 'warn')[1];
  t.match(summary?.msg, /^299 more connections from unconfigured peers closed/);
  t.same((summary?.obj as { bySource: Record<string, number> }).bySource, { '127.0.0.1': 299 });
});
