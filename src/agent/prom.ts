// The parts of prom-client tabby-node uses, each loaded from its own file: prom-client's index also
// loads its Pushgateway (node:https, TLS) and cluster aggregator (node:cluster), ~2.4 MB of RSS in an
// agent that uses neither. The types are prom-client's own.
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const require = createRequire(import.meta.url);

export const Registry = require('prom-client/lib/registry') as typeof Prom.Registry;
export type Registry = Prom.Registry;
export const Gauge = require('prom-client/lib/gauge') as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram = require('prom-client/lib/histogram') as typeof Prom.Histogram;
export type Histogram<T extends string = string> = Prom.Histogram<T>;

/** prom-client's default metrics (process CPU/memory/fds, heap, event loop lag, GC), loaded when called. */
export const collectDefaultMetrics = (config: Prom.DefaultMetricsCollectorConfiguration<Prom.RegistryContentType>): void =>
  (require('prom-client/lib/defaultMetrics') as typeof Prom.collectDefaultMetrics)(config);
