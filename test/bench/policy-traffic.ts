// Traffic helper of the policy benchmark, run inside a pod's netns:
//   recv PORT      print "<sendTimeMs> <arrivalMs>" for every datagram (no reply: every packet is a
//                  new conntrack flow until a reply is seen, so each one meets the policy)
//   send IP PORT   a datagram every ~1 ms carrying its wall-clock send time
import dgram from 'node:dgram';

const now = () => performance.timeOrigin + performance.now();
const [mode, a, b] = process.argv.slice(2);
if (mode === 'recv') {
  const s = dgram.createSocket('udp4');
  s.on('message', (m) => process.stdout.write(`${m.toString()} ${now().toFixed(3)}\n`));
  s.bind(Number(a), '0.0.0.0', () => process.stdout.write('ready\n'));
} else if (mode === 'send') {
  const s = dgram.createSocket('udp4');
  setInterval(() => s.send(now().toFixed(3), Number(b), a!), 1);
}
