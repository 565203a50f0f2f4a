// Re-detection loop with injected timers: changes reported once, errors keep the old address, stop stops.
import t from 'tap';
import { startAddressPolling, type PollTimers } from '../../../src/autodetect/poll.js';

class FakeTimers implements PollTimers {
  pending: { fn: () => void; ms: number; id: number }[] = [];
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.push({ fn, ms, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.pending = this.pending.filter((p) => p.id !== h);
  }
  async fire(): Promise<void> {
    const p = this.pending.shift();
    if (!p) throw new Error('no timer');
    p.fn();
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
}

t.test('reports a changed address once, keeps polling at the interval', async (t) => {
  const timers = new FakeTimers();
  const answers = ['10.0.0.5/24', '10.0.0.5/24', '10.0.1.5/24'];
  const changes: string[] = [];
  const p = startAddressPolling({
    intervalMs: 60_000,
    initial: { ipv4: '10.0.0.5/24' },
    timers,
    resolve: async () => ({ ipv4: answers.shift() ?? '10.0.1.5/24' }),
    onChange: (now, before) => {
      changes.push(`${before.ipv4}->${now.ipv4}`);
    },
  });
  t.equal(timers.pending[0]?.ms, 60_000);
  await timers.fire();
  await timers.fire();
  t.same(changes, []);
  await timers.fire();
  t.same(changes, ['10.0.0.5/24->10.0.1.5/24']);
  await timers.fire();
  t.same(changes.length, 1, 'same address again is no change');
  p.stop();
  t.equal(timers.pending.length, 0, 'stop clears the timer');
});

t.test('errors keep the address and the loop alive', async (t) => {
  const timers = new FakeTimers();
  const errors: unknown[] = [];
  let n = 0;
  startAddressPolling({
    intervalMs: 1000,
    initial: { ipv4: '10.0.0.5/24' },
    timers,
    resolve: async () => {
      if (n++ === 0) throw new Error('no address');
      return { ipv4: '10.0.0.5/24' };
    },
    onChange: () => {
      t.fail('no change expected');
    },
    onError: (e) => errors.push(e),
  });
  await timers.fire();
  t.equal(errors.length, 1);
  t.equal(timers.pending.length, 1, 'rescheduled after an error');
  await timers.fire();
  t.equal(errors.length, 1);
});

t.test('interval 0 never schedules; pollNow still runs', async (t) => {
  const timers = new FakeTimers();
  let calls = 0;
  const p = startAddressPolling({
    intervalMs: 0,
    initial: {},
    timers,
    resolve: async () => {
      calls++;
      return { ipv4: '10.0.0.1/8' };
    },
    onChange: () => {},
  });
  t.equal(timers.pending.length, 0);
  await p.pollNow();
  t.equal(calls, 1);
});
