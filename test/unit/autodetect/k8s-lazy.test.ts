// The kubernetes-internal-ip method's module (src/autodetect/k8s.ts) is part of every agent; loading it
// must not load node:fs/promises (with its readline ~0.4 MB of an idle one-file agent on etcd; the file
// datastore's fs.watch loads it anyway): the service account files are read through fs.promises when
// the method runs.
import t from 'tap';
import { runModule } from '../../helpers/node-child.js';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const mod = pathToFileURL(path.resolve(here, '../../../src/autodetect/k8s.js')).href;

t.test('loading autodetect/k8s does not load node:fs/promises', async (t) => {
  const code = `await import(${JSON.stringify(mod)}); console.log(JSON.stringify(process.moduleLoadList));`;
  const r = runModule(code);
  t.equal(r.status, 0, r.stderr);
  const loaded = JSON.parse(r.stdout) as string[];
  t.ok(
    loaded.some((m) => m.endsWith('autodetect/k8s') || m.startsWith('NativeModule')),
    'the module list was read',
  );
  t.notOk(loaded.includes('NativeModule fs/promises'), 'node:fs/promises not loaded');
});
