import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { METRICS, type MetricDefinition } from '@rsmoe/observability';

/**
 * PromQL helpers for the monitoring artefacts under deploy/: which metrics and labels the Grafana dashboard,
 * the alert rules and the KEDA triggers use, so that tests can hold them against the metric catalogue
 * (test/deploy) and against a real scrape of the services (test/e2e).
 */

export const REPO_ROOT = resolve(__dirname, '../..');
export const DASHBOARD_FILE = join(REPO_ROOT, 'deploy/grafana/dashboards/rsmoe-mesh.json');
export const ALERTS_FILE = join(REPO_ROOT, 'deploy/prometheus/alerts.yml');
export const K8S_DIR = join(REPO_ROOT, 'deploy/k8s');

/** One vector selector of a PromQL expression. */
export interface MetricSelector {
  /** The metric name (from the identifier or a `__name__="…"` matcher). */
  metric: string;
  /** Label names used in this selector's matchers (without `__name__`). */
  labels: string[];
  /** The matchers themselves, for checks on values (e.g. `state="waiting"`). */
  matchers: LabelMatcher[];
  /**
   * Label names the expression expects on this selector's series: `by (…)`/`without (…)` of every enclosing
   * aggregation, `on (…)`/`ignoring (…)` of every enclosing binary operation, and `group_left (…)`/
   * `group_right (…)` labels when the selector is on the side they are copied from.
   */
  byLabels: string[];
}

export interface LabelMatcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

/** Where a monitoring query lives. */
export type MonitoringSource =
  | { kind: 'dashboard'; file: string; panel: string; refId: string }
  | { kind: 'dashboard-variable'; file: string; variable: string }
  | { kind: 'alert'; file: string; group: string; alert: string }
  | { kind: 'keda'; file: string; scaledObject: string; trigger: number };

export interface MonitoringQuery {
  source: MonitoringSource;
  /** The expression as written (Grafana variables still in it). */
  expr: string;
  /** The expression as parsed: Grafana variables replaced, `label_values(…)` turned into PromQL. */
  promql: string;
}

/**
 * Metrics that come from outside the mesh, with the labels their exporters attach (Kubernetes target labels
 * included). Anything the dashboard or the rules use that is neither here nor in the catalogue is a typo.
 */
export const EXTERNAL_METRICS: Readonly<Record<string, { source: string; labels: readonly string[] }>> = Object.freeze({
  container_cpu_usage_seconds_total: { source: 'cAdvisor (kubelet)', labels: ['namespace', 'pod', 'container', 'node', 'id', 'image', 'name', 'cpu', 'job', 'instance', 'endpoint', 'service', 'metrics_path'] },
  container_memory_working_set_bytes: { source: 'cAdvisor (kubelet)', labels: ['namespace', 'pod', 'container', 'node', 'id', 'image', 'name', 'job', 'instance', 'endpoint', 'service', 'metrics_path'] },
  DCGM_FI_DEV_GPU_UTIL: { source: 'NVIDIA DCGM exporter', labels: ['gpu', 'UUID', 'device', 'modelName', 'Hostname', 'DCGM_FI_DRIVER_VERSION', 'namespace', 'pod', 'container', 'job', 'instance', 'endpoint', 'service'] },
  DCGM_FI_DEV_FB_USED: { source: 'NVIDIA DCGM exporter', labels: ['gpu', 'UUID', 'device', 'modelName', 'Hostname', 'DCGM_FI_DRIVER_VERSION', 'namespace', 'pod', 'container', 'job', 'instance', 'endpoint', 'service'] },
  kube_deployment_status_replicas_available: { source: 'kube-state-metrics', labels: ['namespace', 'deployment', 'job', 'instance', 'endpoint', 'service', 'pod', 'container'] },
});

/** Labels Prometheus attaches to every series of a target discovered through the mesh's ServiceMonitor. */
export const TARGET_LABELS = Object.freeze(['namespace', 'pod', 'job', 'instance', 'container', 'service', 'endpoint']);

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'] as const;

/** The catalogue entry a series name belongs to (histogram series resolve to their histogram). */
export function catalogueMetricFor(series: string): { definition: MetricDefinition; suffix: '' | (typeof HISTOGRAM_SUFFIXES)[number] } | undefined {
  const definitions: MetricDefinition[] = Object.values(METRICS);
  const exact = definitions.find((definition) => definition.name === series);
  if (exact) return { definition: exact, suffix: '' };
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!series.endsWith(suffix)) continue;
    const base = series.slice(0, -suffix.length);
    const histogram = definitions.find((definition) => definition.name === base && definition.type === 'histogram');
    if (histogram) return { definition: histogram, suffix };
  }
  return undefined;
}

/** Every label a series can carry once scraped (catalogue labels, `le` on buckets, target labels), or undefined for an unknown series. */
export function knownLabelsOf(series: string): readonly string[] | undefined {
  const entry = catalogueMetricFor(series);
  if (entry) return [...entry.definition.labelNames, ...(entry.suffix === '_bucket' ? ['le'] : []), ...TARGET_LABELS];
  return EXTERNAL_METRICS[series]?.labels;
}

/**
 * Grafana's variables are not PromQL: `$__rate_interval` and friends become a duration, any other `$var`,
 * `${var}` or `${var:format}` (only ever inside label values here) a plain word.
 */
export function substituteGrafanaVariables(expr: string): string {
  return expr
    .replace(/\$\{__(?:rate_interval|interval|range)(?::[^}]*)?\}|\$__(?:rate_interval|interval|range)(?:_ms|_s)?\b/g, '5m')
    .replace(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::[^}]*)?\}|\$[A-Za-z_][A-Za-z0-9_]*/g, 'var');
}

/** Grafana's `label_values(selector, label)` as the PromQL it stands for: `group by (label) (selector)`. */
export function labelValuesToPromql(query: string): string | undefined {
  const match = /^\s*label_values\(\s*(.*?)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/s.exec(query);
  if (!match) return undefined;
  return `group by (${match[2]}) (${match[1]})`;
}

export class PromqlParseError extends Error {
  constructor(
    readonly expr: string,
    readonly position: number,
  ) {
    super(`PromQL does not parse at offset ${position}: ${expr.slice(0, position)}⟨here⟩${expr.slice(position)}`);
    this.name = 'PromqlParseError';
  }
}

/**
 * The vector selectors of a PromQL expression with the labels each one is matched and grouped on, parsed with
 * Prometheus' own grammar (@prometheus-io/lezer-promql, the parser of the Prometheus UI). Grafana variables are
 * substituted first. Throws PromqlParseError on a syntax error.
 */
export function extractMetricSelectors(expr: string): MetricSelector[] {
  const promql = substituteGrafanaVariables(expr);
  const tree = parser.parse(promql);
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) throw new PromqlParseError(promql, node.from);
    },
  });
  const text = (node: SyntaxNode) => promql.slice(node.from, node.to);
  const selectors: MetricSelector[] = [];
  const cursor = tree.cursor();
  do {
    if (cursor.name !== 'VectorSelector') continue;
    const node = cursor.node;
    const identifier = node.getChild('Identifier');
    const matchers: LabelMatcher[] = [];
    for (const matcher of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
      matchers.push(matcherOf(text(matcher.getChild('LabelName')!), matcher, text));
    }
    for (const matcher of node.getChild('LabelMatchers')?.getChildren('QuotedLabelMatcher') ?? []) {
      matchers.push(matcherOf(unquote(text(matcher.getChild('QuotedLabelName')!)), matcher, text));
    }
    for (const quoted of node.getChild('LabelMatchers')?.getChildren('QuotedLabelName') ?? []) {
      // `{"metric_name"}`: the name as a bare quoted string.
      matchers.push({ label: '__name__', op: '=', value: unquote(text(quoted)) });
    }
    const nameMatcher = matchers.find((matcher) => matcher.label === '__name__' && matcher.op === '=');
    const metric = identifier ? text(identifier) : nameMatcher?.value;
    if (!metric) throw new Error(`selector without a metric name in: ${expr}`);
    selectors.push({
      metric,
      labels: unique(matchers.filter((matcher) => matcher.label !== '__name__').map((matcher) => matcher.label)),
      matchers: matchers.filter((matcher) => matcher.label !== '__name__'),
      byLabels: unique(groupingLabelsAbove(node, text)),
    });
  } while (cursor.next());
  return selectors;
}

function matcherOf(label: string, matcher: SyntaxNode, text: (node: SyntaxNode) => string): LabelMatcher {
  const op = text(matcher.getChild('MatchOp')!) as LabelMatcher['op'];
  const literals = matcher.getChildren('StringLiteral');
  return { label, op, value: unquote(text(literals[literals.length - 1]!)) };
}

function groupingLabelsAbove(selector: SyntaxNode, text: (node: SyntaxNode) => string): string[] {
  const labels: string[] = [];
  let child: SyntaxNode = selector;
  for (let parent = selector.parent; parent; child = parent, parent = parent.parent) {
    if (parent.name === 'AggregateExpr') {
      const modifier = parent.getChild('AggregateModifier');
      if (modifier) labels.push(...labelNames(modifier.getChild('GroupingLabels'), text));
    } else if (parent.name === 'BinaryExpr') {
      const clause = parent.getChild('MatchingModifierClause');
      if (!clause) continue;
      const groupings = clause.getChildren('GroupingLabels');
      if (clause.getChild('On') || clause.getChild('Ignoring')) labels.push(...labelNames(groupings[0] ?? null, text));
      // group_left(l): l is copied from the right-hand ("one") side; group_right(l) from the left.
      const copied = groupings[1] ?? null;
      const isLeftOperand = child.to <= clause.from;
      if (copied && ((clause.getChild('GroupLeft') && !isLeftOperand) || (clause.getChild('GroupRight') && isLeftOperand))) {
        labels.push(...labelNames(copied, text));
      }
    }
  }
  return labels;
}

function labelNames(grouping: SyntaxNode | null, text: (node: SyntaxNode) => string): string[] {
  if (!grouping) return [];
  return [...grouping.getChildren('LabelName').map(text), ...grouping.getChildren('QuotedLabelName').map((node) => unquote(text(node)))];
}

function unquote(literal: string): string {
  const quote = literal[0];
  if (quote === '`') return literal.slice(1, -1);
  if (quote === '"' || quote === "'") return JSON.parse(`"${literal.slice(1, -1).replace(/\\'/g, "'").replace(/(?<!\\)"/g, '\\"')}"`) as string;
  return literal;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

interface GrafanaPanel {
  title?: string;
  type?: string;
  targets?: { refId?: string; expr?: string }[];
  panels?: GrafanaPanel[];
}

interface GrafanaVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
}

/** Every query of the Grafana dashboard: panel targets (rows included) and query variables. */
export function dashboardQueries(file = DASHBOARD_FILE): MonitoringQuery[] {
  const dashboard = JSON.parse(readFileSync(file, 'utf8')) as { panels?: GrafanaPanel[]; templating?: { list?: GrafanaVariable[] } };
  const shown = relative(REPO_ROOT, file);
  const queries: MonitoringQuery[] = [];
  const visit = (panels: GrafanaPanel[] | undefined) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (!target.expr) continue;
        queries.push({
          source: { kind: 'dashboard', file: shown, panel: panel.title ?? '(untitled)', refId: target.refId ?? '?' },
          expr: target.expr,
          promql: substituteGrafanaVariables(target.expr),
        });
      }
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    if (!query) continue;
    const promql = labelValuesToPromql(query) ?? query;
    queries.push({ source: { kind: 'dashboard-variable', file: shown, variable: variable.name }, expr: query, promql: substituteGrafanaVariables(promql) });
  }
  return queries;
}

/** Every alert and recording rule expression of the Prometheus rule file. */
export function alertQueries(file = ALERTS_FILE): MonitoringQuery[] {
  const rules = parseYaml(readFileSync(file, 'utf8')) as { groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[] };
  const shown = relative(REPO_ROOT, file);
  return rules.groups.flatMap((group) =>
    group.rules.map((rule) => ({
      source: { kind: 'alert' as const, file: shown, group: group.name, alert: rule.alert ?? rule.record ?? '?' },
      expr: rule.expr,
      promql: rule.expr,
    })),
  );
}

/** The Prometheus queries of every KEDA ScaledObject in the manifests under deploy/k8s (read from the files, no kubectl). */
export function kedaQueries(dir = K8S_DIR): MonitoringQuery[] {
  const queries: MonitoringQuery[] = [];
  for (const file of yamlFilesUnder(dir)) {
    for (const document of parseAllDocuments(readFileSync(file, 'utf8'))) {
      const object = document.toJS() as { kind?: string; metadata?: { name?: string }; spec?: { triggers?: { type?: string; metadata?: { query?: string } }[] } } | null;
      if (object?.kind !== 'ScaledObject') continue;
      (object.spec?.triggers ?? []).forEach((trigger, index) => {
        if (trigger.type !== 'prometheus' || !trigger.metadata?.query) return;
        queries.push({
          source: { kind: 'keda', file: relative(REPO_ROOT, file), scaledObject: object.metadata?.name ?? '?', trigger: index },
          expr: trigger.metadata.query,
          promql: trigger.metadata.query,
        });
      });
    }
  }
  return queries;
}

/** Every PromQL expression of the dashboard, the alert rules and the KEDA ScaledObjects, with where it came from. */
export function collectMonitoringQueries(): MonitoringQuery[] {
  return [...dashboardQueries(), ...alertQueries(), ...kedaQueries()];
}

/** A one-line description of where a query lives, for test messages. */
export function describeSource(source: MonitoringSource): string {
  switch (source.kind) {
    case 'dashboard':
      return `${source.file} panel "${source.panel}" ${source.refId}`;
    case 'dashboard-variable':
      return `${source.file} variable $${source.variable}`;
    case 'alert':
      return `${source.file} ${source.group}/${source.alert}`;
    case 'keda':
      return `${source.file} ScaledObject ${source.scaledObject} trigger ${source.trigger}`;
  }
}

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return yamlFilesUnder(path);
      return /\.ya?ml$/.test(name) ? [path] : [];
    });
}
