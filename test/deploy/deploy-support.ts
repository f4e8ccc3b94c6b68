import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { parseAllDocuments, parse as parseYaml, stringify } from 'yaml';
import * as apps from 'kubernetes-models/apps/v1';
import * as core from 'kubernetes-models/v1';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as keda from '@kubernetes-models/keda/keda.sh/v1alpha1';
import * as monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { ALERTS_FILE, REPO_ROOT } from '../support/promql';

/** Helpers of the deployment tests: kustomize rendering, offline schema validation, the generated PrometheusRule. */

export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');
export const PROMETHEUS_RULE_FILE = join(DEPLOY_DIR, 'prometheus/prometheusrule.yaml');
export const OVERLAYS = ['gpu', 'cpu-dev'] as const;
export type Overlay = (typeof OVERLAYS)[number];

/** A rendered Kubernetes object, loosely typed: tests read it by path. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  spec?: any;
  data?: Record<string, string>;
}

/** kubectl from $KUBECTL or PATH; a clear error (never a skip) when there is none. */
export function kubectlBinary(): string {
  const configured = process.env.KUBECTL;
  if (configured) {
    if (!existsSync(configured)) throw new Error(`KUBECTL=${configured} does not exist`);
    return configured;
  }
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'kubectl'))) return join(dir, 'kubectl');
  }
  throw new Error(
    'kubectl is needed to render the kustomize overlays and is not on PATH (nor given by $KUBECTL). ' +
      'Install it (Debian: apt-get install kubernetes-client; .ci/run does this) and run the tests again.',
  );
}

/** `kubectl kustomize <dir>`, parsed into objects. */
export function renderKustomization(relativeDir: string): K8sObject[] {
  const result = spawnSync(kubectlBinary(), ['kustomize', join(REPO_ROOT, relativeDir)], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) {
    throw new Error(`kubectl kustomize ${relativeDir} failed (status ${result.status}):\n${result.stderr}${result.error ? String(result.error) : ''}`);
  }
  return parseAllDocuments(result.stdout)
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`kubectl kustomize ${relativeDir} printed invalid YAML: ${document.errors[0]!.message}`);
      return document.toJS() as K8sObject | null;
    })
    .filter((object): object is K8sObject => object !== null);
}

export function kubectlVersion(): string {
  return execFileSync(kubectlBinary(), ['version', '--client'], { encoding: 'utf8' }).trim();
}

interface ModelClass {
  apiVersion: string;
  kind: string;
  new (data: never): { validate(): void };
}

/**
 * The kinds the manifests may contain, each with its offline schema (kubernetes-models: the Kubernetes OpenAPI
 * schemas; @kubernetes-models/* for the prometheus-operator and KEDA CRDs). A kind missing here fails validation.
 */
const MODELS: readonly ModelClass[] = [
  apps.Deployment,
  apps.StatefulSet,
  core.Service,
  core.ConfigMap,
  core.Secret,
  core.ServiceAccount,
  core.PersistentVolumeClaim,
  networking.NetworkPolicy,
  networking.Ingress,
  policy.PodDisruptionBudget,
  keda.ScaledObject,
  keda.TriggerAuthentication,
  monitoring.ServiceMonitor,
  monitoring.PodMonitor,
  monitoring.PrometheusRule,
] as unknown as ModelClass[];

const MODEL_BY_TYPE = new Map(MODELS.map((model) => [`${model.apiVersion}/${model.kind}`, model]));

/** Validates one object against its schema; throws with the object's identity and the schema errors. */
export function validateObject(object: K8sObject): void {
  const model = MODEL_BY_TYPE.get(`${object.apiVersion}/${object.kind}`);
  const id = `${object.apiVersion} ${object.kind} ${object.metadata?.name}`;
  if (!model) throw new Error(`${id}: no schema for this apiVersion/kind (known: ${[...MODEL_BY_TYPE.keys()].join(', ')})`);
  try {
    new model(object as never).validate();
  } catch (error) {
    throw new Error(`${id}: ${(error as Error).message}`);
  }
}

/** The expert ids of a pack manifest. */
export function packExpertIds(packDir: string): string[] {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, packDir, 'pack.json'), 'utf8')) as { experts: { id: string }[] };
  return manifest.experts.map((expert) => expert.id);
}

/**
 * Experts of models/demo (what the manifests, compose and prometheus.yml name) that the tiny test pack
 * (models/fixtures/tiny-pack, the monitoring e2e suites' mesh) does not have: their series cannot exist there.
 */
export function demoOnlyExpertIds(): string[] {
  const tiny = packExpertIds('models/fixtures/tiny-pack');
  return packExpertIds('models/demo').filter((id) => !tiny.includes(id));
}

export const PROMETHEUS_RULE_HEADER =
  '# GENERATED from deploy/prometheus/alerts.yml (the one source of the alert rules): do not edit.\n' +
  '# Regenerate with: node --import tsx test/deploy/generate-prometheusrule.ts (test/deploy checks it is current).\n';

/** The PrometheusRule for the Prometheus operator, made from the rule groups of alerts.yml. */
export function prometheusRuleFromAlerts(alertsYaml = readFileSync(ALERTS_FILE, 'utf8')): string {
  const rules = parseYaml(alertsYaml) as { groups: unknown[] };
  const object = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'rsmoe-mesh',
      labels: { 'app.kubernetes.io/name': 'rsmoe-mesh', 'app.kubernetes.io/component': 'monitoring' },
    },
    spec: { groups: rules.groups },
  };
  return PROMETHEUS_RULE_HEADER + stringify(object, { lineWidth: 0 });
}
