// The resident CNI wire format (src/cni/resident-protocol.ts): a request split at every byte decodes the
// same once complete; oversized fields and a foreign magic are refused before they are buffered.
import t from 'tap';
import { LIMITS, ProtocolError, decodeRequest, encodeAnswer, encodeRequest } from '../../../src/cni/resident-protocol.js';

t.test('round trip, and undefined until the request is complete', async (t) => {
  const req = {
    name: 'tabby-ipam',
    env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=b;C=d=e', EMPTY: '' },
    stdin: Buffer.from('{"cniVersion":"1.0.0"}'),
  };
  const bytes = Buffer.concat([encodeRequest(req), Buffer.of(0x47)]);
  for (let cut = 0; cut < bytes.length - 1; cut++) t.equal(decodeRequest(bytes.subarray(0, cut)), undefined, `undefined at ${cut}`);
  const got = decodeRequest(bytes)!;
  t.same(got.request, req);
  t.equal(got.used, bytes.length - 1, 'the go byte after the request is left for the caller');
});

t.test('bad magic and oversized fields are protocol errors', async (t) => {
  t.throws(() => decodeRequest(Buffer.from('GET / HTTP/1.1\r\n')), ProtocolError);
  const big = Buffer.alloc(12);
  big.write('TCN1');
  big.writeUInt32BE(LIMITS.name + 1, 4);
  t.throws(() => decodeRequest(big), /name is \d+ bytes, more than 64/);
  const env = encodeRequest({ name: 'tabby', env: {}, stdin: Buffer.alloc(0) }).subarray(0, 17);
  env.writeUInt32BE(LIMITS.env + 1, 13);
  t.throws(() => decodeRequest(env), /env is \d+ bytes/);
});

t.test('answer: exit code and stdout, length-prefixed', async (t) => {
  const a = encodeAnswer(1, '{"code":7}\n');
  t.equal(a.readUInt32BE(0), 1);
  t.equal(a.readUInt32BE(4), 11);
  t.equal(a.subarray(8).toString(), '{"code":7}\n');
});
