// Interface routes (Calico's `protocol direct`): which connected prefixes a node offers for export.
import t from 'tap';
import { interfaceRoutes } from '../../../src/agent/interface-routes.js';
import type { InterfaceAddress } from '../../../src/agent/ports.js';

const a = (iface: string, address: string, prefixLen: number, extra: Partial<InterfaceAddress> = {}): InterfaceAddress => ({
  iface,
  address,
  prefixLen,
  scope: 0,
  up: true,
  ...extra,
});

t.test('connected prefixes by interface; workload, tunnel, loopback and ignored interfaces left out', async (t) => {
  const addrs = [
    a('lo', '127.0.0.1', 8, { scope: 254 }),
    a('eth0', '10.0.0.5', 24),
    a('eth0', 'fe80::1', 64, { scope: 253 }),
    a('eth0', 'fd00::5', 64),
    a('br-lan', '192.168.50.1', 24),
    a('cali12345', '169.254.1.1', 32),
    a('kube-ipvs0', '10.96.0.10', 32),
    a('vxlan.calico', '10.244.0.0', 32),
    a('tunl0', '10.244.0.1', 32),
    a('ens7', '172.16.0.9', 20),
    a('ens8', '172.17.0.9', 24),
    a('down0', '172.18.0.1', 24, { up: false }),
  ];
  t.same(
    Object.fromEntries(interfaceRoutes(addrs, ['ens*'])),
    { '192.168.50.0/24': 'br-lan', '10.0.0.0/24': 'eth0', 'fd00::/64': 'eth0' },
    'network form; host/link scope, down links, cali*, kube-ipvs*, tunnels and ignoredInterfaces excluded',
  );
  t.equal(interfaceRoutes(addrs).get('172.16.0.0/20'), 'ens7', 'not ignored: included');
  t.equal(interfaceRoutes([a('eth1', '10.9.0.1', 24), a('br0', '10.9.0.2', 24)]).get('10.9.0.0/24'), 'br0', 'shared prefix: first by name');
});
