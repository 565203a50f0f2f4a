// A fixture Kubernetes API server for integration tests (no API server runs on these machines): serves
// the list and watch JSON of Services (/api/v1/services) and EndpointSlices
// (/apis/discovery.k8s.io/v1/endpointslices) as the API server does — a list with a resourceVersion,
// then a newline-delimited stream of {type, object} events. Run as a child process (it can then live in
// a network namespace): `node k8s-fixture.js HOST PORT`; prints "listening" when ready; each stdin line
// {"kind":"services"|"endpointslices","type":"ADDED"|"MODIFIED"|"DELETED","object":{…}} changes the
// state and is sent to the open watches. Namespaces and pods list empty (for the label sync).
import http from 'node:http';
import readline from 'node:readline';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

type Kind = 'services' | 'endpointslices';
interface Obj {
  metadata: { name: string; namespace?: string; resourceVersion?: string };
}

function serve(host: string, port: number): void {
  let rv = 100;
  const state: Record<Kind, Map<string, Obj>> = { services: new Map(), endpointslices: new Map() };
  const watchers: Record<Kind, Set<http.ServerResponse>> = { services: new Set(), endpointslices: new Set() };
  const kindOf = (p: string): Kind | undefined =>
    p === '/api/v1/services' ? 'services' : p === '/apis/discovery.k8s.io/v1/endpointslices' ? 'endpointslices' : undefined;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const kind = kindOf(u.pathname);
    if (u.pathname === '/api/v1/namespaces' || u.pathname === '/api/v1/pods') {
      res.writeHead(200, { 'content-type': 'application/json' });
      // an empty list, and a watch that stays open with nothing to say
      if (u.searchParams.get('watch') !== '1')
        res.end(`{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"${rv}"},"items":[]}`);
      return;
    }
    if (!kind) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    if (u.searchParams.get('watch') === '1') {
      watchers[kind].add(res);
      res.on('close', () => watchers[kind].delete(res));
      return;
    }
    res.end(
      JSON.stringify({
        kind: kind === 'services' ? 'ServiceList' : 'EndpointSliceList',
        apiVersion: kind === 'services' ? 'v1' : 'discovery.k8s.io/v1',
        metadata: { resourceVersion: String(rv) },
        items: [...state[kind].values()],
      }),
    );
  });
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const ev = JSON.parse(line) as { kind: Kind; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: Obj };
    const o = { ...ev.object, metadata: { ...ev.object.metadata, resourceVersion: String(++rv) } };
    const key = `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`;
    if (ev.type === 'DELETED') state[ev.kind].delete(key);
    else state[ev.kind].set(key, o);
    for (const w of watchers[ev.kind]) w.write(`${JSON.stringify({ type: ev.type, object: o })}\n`);
    process.stdout.write(`applied ${rv}\n`);
  });
  process.stdin.on('end', () => process.exit(0));
  server.listen(port, host, () => process.stdout.write('listening\n'));
}

export interface K8sFixture {
  url: string;
  send(kind: Kind, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: object): void;
  stop(): void;
}

/** Start the fixture as a child process, in `netns` when given; resolves once it listens. */
export function startK8sFixture(host: string, port: number, netns?: string): Promise<K8sFixture> {
  const self = fileURLToPath(import.meta.url);
  const argv = [process.execPath, self, host, String(port)];
  const child: ChildProcess = netns
    ? spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('k8s fixture did not start')), 20_000);
    child.once('error', reject);
    child.stdout!.on('data', (b: Buffer) => {
      if (!b.toString().includes('listening')) return;
      clearTimeout(timer);
      resolve({
        url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
        send: (kind, type, object) => child.stdin!.write(`${JSON.stringify({ kind, type, object })}\n`),
        stop: () => {
          child.stdin!.end();
          child.kill();
        },
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) serve(process.argv[2] ?? '127.0.0.1', Number(process.argv[3] ?? 6443));
