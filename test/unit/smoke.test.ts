import t from 'tap';
import { log } from '../../src/common/log.js';
t.test('logger gives a component child', async (t) => {
  const l = log('test', { peer: '10.0.0.1' });
  t.equal(typeof l.info, 'function');
  t.equal(l.bindings().component, 'test');
});
