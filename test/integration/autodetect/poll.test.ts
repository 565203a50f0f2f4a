// Re-detection on a real kernel: the node's address changes on its interface, the poll loop reports
// the new address (with its prefix); when the address disappears altogether the stored one is kept.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { resolveNodeAddresses } from '../../../src/autodetect/detect.js';
import { autodetectConfigFromEnv } from '../../../src/autodetect/settings.js';
import { startAddressPolling, type PolledAddresses } from '../../../src/autodetect/poll.js';
import { runId } from '../../helpers/run-tag.js';

const isRoot = process.getuid?.() === 0;
const run = runId();
const NS = `tb${run}adp`;
const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const destroy = (): void => {
  try {
    ip('netns', 'del', NS);
  } catch {
    /* not there */
  }
};

t.test(
  'AUTODETECT_POLL_INTERVAL: a changed address is reported, a vanished one kept',
  { skip: isRoot ? false : 'needs root (network namespaces)' },
  async (t) => {
    destroy();
    t.teardown(destroy);
    ip('netns', 'add', NS);
    ip('-n', NS, 'link', 'add', 'eth0', 'type', 'bridge');
    ip('-n', NS, 'addr', 'add', '10.9.0.5/24', 'dev', 'eth0');
    ip('-n', NS, 'link', 'set', 'eth0', 'up');

    const cfg = autodetectConfigFromEnv({ IP: 'autodetect', AUTODETECT_POLL_INTERVAL: '100ms' });
    t.equal(cfg.pollIntervalMs, 100);
    let stored: PolledAddresses = {};
    const resolve = async (): Promise<PolledAddresses> => {
      const r = await resolveNodeAddresses(cfg, { nodeName: 'n1', netnsPath: `/var/run/netns/${NS}`, stored });
      return { ipv4: r.ipv4.choice?.address };
    };
    stored = await resolve();
    t.same(stored, { ipv4: '10.9.0.5/24' });
    const changes: string[] = [];
    const errors: unknown[] = [];
    const poller = startAddressPolling({
      intervalMs: cfg.pollIntervalMs,
      initial: stored,
      resolve,
      onChange: (now, before) => {
        changes.push(`${before.ipv4} -> ${now.ipv4}`);
        stored = now;
      },
      onError: (e) => errors.push(e),
    });
    t.teardown(() => poller.stop());

    ip('-n', NS, 'addr', 'del', '10.9.0.5/24', 'dev', 'eth0');
    ip('-n', NS, 'addr', 'add', '10.9.1.7/23', 'dev', 'eth0');
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && changes.length === 0) await new Promise((r) => setTimeout(r, 20));
    t.same(changes, ['10.9.0.5/24 -> 10.9.1.7/23'], 'the new address with its prefix, reported once');

    ip('-n', NS, 'addr', 'flush', 'dev', 'eth0');
    await poller.pollNow();
    await poller.pollNow();
    t.same(changes.length, 1, 'no address on any interface: the stored one is kept (with a warning), no change reported');
    t.same(errors, []);
  },
);
