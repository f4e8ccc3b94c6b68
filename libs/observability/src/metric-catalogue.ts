/**
 * Every Prometheus metric the mesh exports, defined once: the services register them from here, and the
 * Grafana dashboard, the alert rules and the KEDA triggers are checked against this list (and against a
 * real scrape in the end-to-end test). Names follow Prometheus conventions: `rsmoe_` prefix, base units
 * (`_seconds`, `_bytes`, `_total`), histograms rather than summaries.
 */

export type MetricType = 'histogram' | 'counter' | 'gauge';
export type ServiceName = 'gateway' | 'router' | 'expert' | 'aggregator';

export interface MetricDefinition<T extends MetricType = MetricType> {
  name: string;
  type: T;
  help: string;
  labelNames: readonly string[];
  /** Which service exports it. */
  service: ServiceName;
  /** Histogram buckets; LATENCY_BUCKETS_SECONDS unless stated. */
  buckets?: readonly number[];
}

/** 1 ms to 60 s, roughly ×2.5 per step. */
export const LATENCY_BUCKETS_SECONDS = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);
/**
 * LATENCY_BUCKETS_SECONDS plus 120 s, 300 s and 600 s, for expert jobs: a segmentation or change mask is long text
 * and takes minutes, and histogram_quantile never answers above the top finite bucket (an alert on a p99 over
 * 120 s needs buckets above it).
 */
export const EXPERT_JOB_LATENCY_BUCKETS_SECONDS = Object.freeze([...LATENCY_BUCKETS_SECONDS, 120, 300, 600]);
export const BATCH_SIZE_BUCKETS = Object.freeze([1, 2, 4, 8, 16, 32, 64, 128, 256]);
export const EXPERT_COUNT_BUCKETS = Object.freeze([0, 1, 2, 3, 4, 6, 8, 16]);

/** Labels of every expert-side series: which expert, which model directory, which pack version. */
export const EXPERT_LABELS = Object.freeze(['expert', 'model', 'version'] as const);

/** Phases of an expert's compute, the values of the `phase` label. */
export const COMPUTE_PHASES = Object.freeze(['vision_encode', 'prefill', 'decode'] as const);
export type ComputePhase = (typeof COMPUTE_PHASES)[number];

/** Queue states of `rsmoe_queue_jobs`; `waiting` counts waiting and prioritized jobs together (the autoscaling signal). */
export const QUEUE_STATES = Object.freeze(['waiting', 'active', 'delayed', 'failed'] as const);
export type QueueState = (typeof QUEUE_STATES)[number];

function expertMetric<T extends MetricType>(
  name: string,
  type: T,
  help: string,
  extraLabels: readonly string[] = [],
  buckets?: readonly number[],
): MetricDefinition<T> {
  return { name, type, help, labelNames: [...EXPERT_LABELS, ...extraLabels], service: 'expert', ...(buckets ? { buckets } : {}) };
}

export const METRICS = Object.freeze({
  // Experts
  expertRequestDuration: expertMetric(
    'rsmoe_expert_request_duration_seconds',
    'histogram',
    'Time from an expert job being queued to its partial being produced (queue wait + compute), by task (a segmentation mask takes far longer than a caption).',
    ['task'],
    EXPERT_JOB_LATENCY_BUCKETS_SECONDS,
  ),
  expertQueueWait: expertMetric('rsmoe_expert_queue_wait_seconds', 'histogram', 'Time an expert job waited in its queue before a worker took it.'),
  expertCompute: expertMetric(
    'rsmoe_expert_compute_seconds',
    'histogram',
    'Compute time of one batch, by phase (vision_encode: image features, 0 when served from the feature cache; prefill; decode).',
    ['phase'],
  ),
  expertTimeToFirstToken: expertMetric(
    'rsmoe_expert_time_to_first_token_seconds',
    'histogram',
    'Time from a worker taking a job to the first generated token of its batch.',
  ),
  expertBatchSize: expertMetric('rsmoe_expert_batch_size', 'histogram', 'Jobs per generation call.', [], BATCH_SIZE_BUCKETS),
  expertJobs: expertMetric('rsmoe_expert_jobs_total', 'counter', 'Expert jobs finished, by status (ok, error, timed_out).', ['status']),
  expertTokens: expertMetric('rsmoe_expert_generated_tokens_total', 'counter', 'Tokens generated.'),
  expertInflight: expertMetric('rsmoe_expert_inflight_jobs', 'gauge', 'Jobs a worker holds right now (waiting for a batch or computing).'),
  expertFeatureCache: expertMetric('rsmoe_expert_feature_cache_lookups_total', 'counter', 'Image-feature lookups, by result (hit, miss).', ['result']),

  // Queues (exported by the router, which owns dispatch; query with max by (queue, state) across replicas)
  queueJobs: {
    name: 'rsmoe_queue_jobs',
    type: 'gauge',
    help: 'Jobs per BullMQ queue and state; waiting counts waiting and prioritized jobs together.',
    labelNames: ['queue', 'state'],
    service: 'router',
  },

  // Gateway
  httpRequestDuration: {
    name: 'rsmoe_http_request_duration_seconds',
    type: 'histogram',
    help: 'HTTP request duration at the gateway, by method, route template, status code and task (`none` for routes that run none).',
    labelNames: ['method', 'route', 'status', 'task'],
    service: 'gateway',
  },

  apiKeyRequests: {
    name: 'rsmoe_api_key_requests_total',
    type: 'counter',
    help: 'Requests that needed an API key (AUTH_MODE=required), by key name (`-` when no known key was sent; never the key) and outcome: admitted, unauthenticated, forbidden, rate_limited, quota_exceeded.',
    labelNames: ['key', 'outcome'],
    service: 'gateway',
  },
  apiKeyImagesToday: {
    name: 'rsmoe_api_key_images_today',
    type: 'gauge',
    help: 'Images each API key had processed today (UTC; one per inference request), read from Redis at scrape time (every replica reports the same).',
    labelNames: ['key'],
    service: 'gateway',
  },
  apiKeyDailyQuota: {
    name: 'rsmoe_api_key_daily_quota',
    type: 'gauge',
    help: 'Daily quota of images of each API key, read from Redis at scrape time.',
    labelNames: ['key'],
    service: 'gateway',
  },

  // Router
  grpcRequestDuration: {
    name: 'rsmoe_grpc_request_duration_seconds',
    type: 'histogram',
    help: 'gRPC call duration at the router, by method and status code name.',
    labelNames: ['method', 'code'],
    service: 'router',
  },
  routerExpertsChosen: {
    name: 'rsmoe_router_experts_chosen',
    type: 'histogram',
    help: 'Experts a request was routed to, by task.',
    labelNames: ['task'],
    service: 'router',
    buckets: EXPERT_COUNT_BUCKETS,
  },
  routerExpertSelections: {
    name: 'rsmoe_router_expert_selections_total',
    type: 'counter',
    help: 'Times each expert was chosen, by task.',
    labelNames: ['expert', 'task'],
    service: 'router',
  },

  routerFusedResults: {
    name: 'rsmoe_router_fused_results_total',
    type: 'counter',
    help: 'Results the router fused and stored itself, by outcome (complete, degraded, failed): every request whose dispatched experts all reported before its fuse point. The aggregator stores the others.',
    labelNames: ['task', 'outcome'],
    service: 'router',
  },

  routerExpertLiveWorkers: {
    name: 'rsmoe_router_expert_live_workers',
    type: 'gauge',
    help: "Workers connected to each expert's queue at the router's last poll; 0: the expert is down and routed around.",
    labelNames: ['expert'],
    service: 'router',
  },

  routerAdmissionRefusals: {
    name: 'rsmoe_router_admission_refusals_total',
    type: 'counter',
    help: 'Routed experts left out or refused before dispatch, by expert and reason: unavailable (no live worker), queue_full, queue_wait, interactive_first (bulk yielding to interactive requests).',
    labelNames: ['expert', 'reason'],
    service: 'router',
  },

  // Aggregator
  aggregatorFusionDuration: {
    name: 'rsmoe_aggregator_fusion_duration_seconds',
    type: 'histogram',
    help: 'Time to fuse the partials of one request and store the result, by task.',
    labelNames: ['task'],
    service: 'aggregator',
  },
  aggregatorResults: {
    name: 'rsmoe_aggregator_results_total',
    type: 'counter',
    help: 'Results the aggregator stored, by task and outcome (complete, degraded, failed); every degraded result is stored here.',
    labelNames: ['task', 'outcome'],
    service: 'aggregator',
  },
} satisfies Record<string, MetricDefinition>);

export type MetricKey = keyof typeof METRICS;

/** Every metric name of the catalogue, for checks of dashboards, alert rules and autoscaler triggers. */
export const METRIC_NAMES: readonly string[] = Object.freeze(Object.values(METRICS).map((metric) => metric.name));

/** The port name every service serves `/metrics` on (Kubernetes containerPort name, ServiceMonitor endpoint). */
export const METRICS_PORT_NAME = 'metrics';
/** Default port of the metrics/health server of every service. */
export const DEFAULT_METRICS_PORT = 9464;
