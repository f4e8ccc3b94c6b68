import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { LATENCY_BUCKETS_SECONDS, METRICS, type MetricDefinition, type MetricKey } from './metric-catalogue';

type MetricOf<K extends MetricKey> = (typeof METRICS)[K]['type'] extends 'histogram'
  ? Histogram<string>
  : (typeof METRICS)[K]['type'] extends 'counter'
    ? Counter<string>
    : Gauge<string>;

/**
 * How often the event-loop lag is sampled, in ms. prom-client's default, 10 ms, wakes every service's main
 * thread 100 times a second even when idle (11 with 100 ms); a loop blocked for longer than this still shows
 * in the lag's max and percentiles.
 */
const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * A service's Prometheus registry: the process metrics of prom-client (CPU, memory, event-loop lag,
 * unprefixed, as every Node exporter names them) plus the catalogue metrics the service asks for.
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  private readonly created = new Map<MetricKey, Histogram<string> | Counter<string> | Gauge<string>>();

  constructor(defaultLabels: Record<string, string> = {}) {
    this.registry.setDefaultLabels(defaultLabels);
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }

  /** The catalogue metric `key`, created on first use; `collect` runs on every scrape (gauges only). */
  get<K extends MetricKey>(key: K, collect?: (gauge: Gauge<string>) => Promise<void> | void): MetricOf<K> {
    const existing = this.created.get(key);
    if (existing) return existing as MetricOf<K>;
    const metric = createMetric(METRICS[key], this.registry, collect);
    this.created.set(key, metric);
    return metric as MetricOf<K>;
  }

  /** The text exposition format, as served on /metrics. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

function createMetric(
  definition: MetricDefinition,
  registry: Registry,
  collect?: (gauge: Gauge<string>) => Promise<void> | void,
): Histogram<string> | Counter<string> | Gauge<string> {
  const common = { name: definition.name, help: definition.help, labelNames: [...definition.labelNames], registers: [registry] };
  switch (definition.type) {
    case 'histogram':
      return new Histogram({ ...common, buckets: [...(definition.buckets ?? LATENCY_BUCKETS_SECONDS)] });
    case 'counter':
      return new Counter(common);
    case 'gauge':
      return new Gauge({
        ...common,
        ...(collect
          ? {
              async collect(this: Gauge<string>) {
                await collect(this);
              },
            }
          : {}),
      });
  }
}

/** Milliseconds to the base unit of the catalogue. */
export function msToSeconds(ms: number): number {
  return ms / 1000;
}
