// Traffic for the network-policy tests, run inside a pod's netns (`node policy-probe.js …`):
//   serve            TCP 80 and 81 (answer "ok" and close) and UDP 80 (echo) on every address
//   probe JSON [ms]  JSON = [{ip, proto: "tcp"|"udp", port}]; prints [true|false, …]: a TCP connect that
//                    got "ok", a UDP datagram that came back, each within ms (default 1500)
import net from 'node:net';
import dgram from 'node:dgram';

export interface ProbeTarget {
  ip: string;
  proto: 'tcp' | 'udp';
  port: number;
}

function serve(): void {
  for (const port of [80, 81])
    net
      .createServer((s) => {
        s.on('error', () => undefined);
        s.end('ok');
      })
      .listen(port, '0.0.0.0');
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(m, r.port, r.address));
  u.bind(80, '0.0.0.0', () => process.stdout.write('ready\n'));
}

function tcp(t: ProbeTarget, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: t.ip, port: t.port });
    let got = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    s.on('data', (d) => {
      got += d.toString();
      if (got === 'ok') done(true);
    });
    s.on('error', () => done(false));
  });
}

function udp(t: ProbeTarget, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const token = `probe-${Math.random()}`;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ms);
    s.on('message', (m) => {
      if (m.toString() === token) done(true);
    });
    s.on('error', () => done(false));
    s.send(token, t.port, t.ip);
  });
}

export function probeAll(targets: readonly ProbeTarget[], ms: number): Promise<boolean[]> {
  return Promise.all(targets.map((t) => (t.proto === 'tcp' ? tcp(t, ms) : udp(t, ms))));
}

if (process.argv[2] === 'serve') serve();
else if (process.argv[2] === 'probe') {
  void probeAll(JSON.parse(process.argv[3] ?? '[]') as ProbeTarget[], Number(process.argv[4] ?? 1500)).then((r) =>
    process.stdout.write(`${JSON.stringify(r)}\n`),
  );
}
