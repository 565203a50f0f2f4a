// tabbyctl input parsing and rendering helpers (no datastore, no child process).
import t from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readDocuments } from '../../../src/cli/commands/resources.js';
import { renderTable, parseOutputFormat } from '../../../src/cli/output.js';
import { validateResource } from '../../../src/datastore/resources.js';
import { runTag } from '../../helpers/run-tag.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${runTag()}clin-`));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = (n: string, text: string) => {
  const f = path.join(dir, n);
  fs.writeFileSync(f, text);
  return f;
};

t.test('multi-doc YAML, Lists, JSON arrays, empty documents', async (t) => {
  const f = file(
    'm.yaml',
    `---\n# only a comment\n---\napiVersion: projectcalico.org/v3\nkind: List\nitems:\n  - {apiVersion: projectcalico.org/v3, kind: IPPool, metadata: {name: a}, spec: {cidr: 10.0.0.0/16}}\n  - {apiVersion: projectcalico.org/v3, kind: IPPool, metadata: {name: b}, spec: {cidr: 10.1.0.0/16}}\n---\n[{"apiVersion": "projectcalico.org/v3", "kind": "Node", "metadata": {"name": "n1"}}]\n`,
  );
  const { docs, errors } = readDocuments(f);
  t.same(errors, []);
  t.same(
    docs.map((d) => (d.raw as { metadata: { name: string } }).metadata.name),
    ['a', 'b', 'n1'],
  );
  t.match(docs[1]!.where, /m\.yaml document 2 item 2 \(line 4\)/);
});

t.test('an unquoted asdot AS number keeps its text', async (t) => {
  const f = file(
    'asdot.yaml',
    'apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: 10.0.0.1, asNumber: 64512.100}\n',
  );
  const { docs } = readDocuments(f);
  const res = validateResource(docs[0]!.raw);
  t.equal((res.spec as { asNumber: number }).asNumber, 64512 * 65536 + 100);
});

t.test('broken YAML names the document', async (t) => {
  const { errors } = readDocuments(file('b.yaml', 'kind: IPPool\n---\nkind: [\n'));
  t.equal(errors.length, 1);
  t.match(errors[0], /b\.yaml document 2 \(line \d+\): invalid YAML/);
  t.match(readDocuments(file('e.yaml', '\n')).errors, [/no resources found/]);
});

t.test('tables and formats', async (t) => {
  t.equal(
    renderTable(
      ['NAME', 'CIDR'],
      [
        ['p1', '10.0.0.0/16'],
        ['longer-name', 'fd00::/48'],
      ],
    ),
    'NAME          CIDR\np1            10.0.0.0/16\nlonger-name   fd00::/48\n',
  );
  t.equal(parseOutputFormat('ps'), 'table');
  t.equal(parseOutputFormat(undefined), 'table');
  t.equal(parseOutputFormat('YAML'), 'yaml');
  t.throws(() => parseOutputFormat('xml'), /unknown output format "xml"/);
});
