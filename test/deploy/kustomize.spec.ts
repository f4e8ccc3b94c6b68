import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { METRIC_NAMES, METRICS_PORT_NAME } from '@rsmoe/observability';
import { loadGatewayConfig } from '../../apps/gateway/src/gateway.config';
import { loadSceneWorkerConfig } from '../../apps/scene-worker/src/scene-worker.config';
import { DEFAULT_SERVICE_NODE_FLAGS } from '../../apps/cli/src/mesh/mesh-launcher';
import { DASHBOARD_FILE, REPO_ROOT, extractMetricSelectors } from '../support/promql';
import {
  OVERLAYS,
  PROMETHEUS_RULE_FILE,
  packExpertIds,
  prometheusRuleFromAlerts,
  renderKustomization,
  validateObject,
  type K8sObject,
  type Overlay,
} from './deploy-support';

/**
 * The Kubernetes manifests as `kubectl kustomize` renders them (base and both overlays), validated offline
 * against the Kubernetes and CRD schemas and held to the deployment rules of the issue.
 */

const EXPERTS = packExpertIds('models/demo');
const EXPERT_LABEL = 'rsmoe.io/expert';
/** The services that are not experts, one Deployment each (the entrypoint's argument is the component). */
const CORE_SERVICES = ['gateway', 'router', 'aggregator', 'scene-worker'];
/** The PersistentVolumeClaim of the scene store (SCENE_STORE_DIR) that the gateway and the scene workers share. */
const SCENE_STORE_CLAIM = 'rsmoe-scenes';
const RENDERED: Record<string, K8sObject[]> = {};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type PodSpec = any;

function ofKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((object) => object.kind === kind);
}

function byName(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((object) => object.kind === kind && object.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the render (have: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')})`);
  return found;
}

function workloads(objects: K8sObject[]): K8sObject[] {
  return objects.filter((object) => object.kind === 'Deployment' || object.kind === 'StatefulSet');
}

function expertDeployments(objects: K8sObject[]): K8sObject[] {
  return ofKind(objects, 'Deployment').filter((object) => object.spec.template.metadata.labels['app.kubernetes.io/component'] === 'expert');
}

/** Kubernetes quantity (`50Gi`, `512Mi`, `1G`) in bytes. */
function quantityBytes(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)([KMGTE]i?)?$/.exec(quantity);
  if (!match) throw new Error(`not a quantity: ${quantity}`);
  const units: Record<string, number> = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Ei: 2 ** 60 };
  return Number(match[1]) * units[match[2] ?? '']!;
}

/** Where a workload's first container mounts the scene store's claim, or undefined. */
function sceneStoreMount(workload: K8sObject): string | undefined {
  const spec: PodSpec = workload.spec.template.spec;
  const volume = (spec.volumes ?? []).find((v: { persistentVolumeClaim?: { claimName: string } }) => v.persistentVolumeClaim?.claimName === SCENE_STORE_CLAIM);
  if (!volume) return undefined;
  return (spec.containers[0].volumeMounts ?? []).find((mount: { name: string }) => mount.name === volume.name)?.mountPath;
}

function matches(selector: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  return Object.entries(selector).every(([key, value]) => labels?.[key] === value);
}

describe('kustomize renders', { timeout: 60_000 }, () => {
  beforeAll(() => {
    RENDERED.base = renderKustomization('deploy/k8s/base');
    for (const overlay of OVERLAYS) RENDERED[overlay] = renderKustomization(`deploy/k8s/overlays/${overlay}`);
  });

  describe.each(['base', ...OVERLAYS])('%s', (name) => {
    const objects = () => RENDERED[name]!;

    it('renders objects, every one valid against its offline schema (unknown kinds fail)', () => {
      expect(objects().length).toBeGreaterThan(10);
      const errors: string[] = [];
      for (const object of objects()) {
        try {
          validateObject(object);
        } catch (error) {
          errors.push((error as Error).message);
        }
      }
      expect(errors).toEqual([]);
    });

    it('names every object rsmoe-* and labels it with name, part-of and component', () => {
      for (const object of objects()) {
        expect(object.metadata.name, `${object.kind} ${object.metadata.name}`).toMatch(/^rsmoe-/);
        expect(object.metadata.labels?.['app.kubernetes.io/part-of'], `${object.kind} ${object.metadata.name}`).toBe('rsmoe-mesh');
        expect(object.metadata.labels?.['app.kubernetes.io/name'], `${object.kind} ${object.metadata.name}`).toBeTruthy();
        expect(object.metadata.labels?.['app.kubernetes.io/component'], `${object.kind} ${object.metadata.name}`).toBeTruthy();
      }
    });

    it('has one expert Deployment per expert of the pack, its EXPERT_ID from its own label', () => {
      const experts = expertDeployments(objects());
      expect(experts.map((deployment) => deployment.metadata.name).sort()).toEqual(EXPERTS.map((id) => `rsmoe-expert-${id}`).sort());
      for (const deployment of experts) {
        const id = deployment.metadata.name.replace('rsmoe-expert-', '');
        expect(deployment.spec.selector.matchLabels[EXPERT_LABEL]).toBe(id);
        expect(deployment.spec.template.metadata.labels[EXPERT_LABEL]).toBe(id);
        const env = deployment.spec.template.spec.containers[0].env as { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
        expect(env.find((variable) => variable.name === 'EXPERT_ID')?.valueFrom?.fieldRef?.fieldPath).toBe(`metadata.labels['${EXPERT_LABEL}']`);
      }
    });

    it('has a Deployment for gateway, router, aggregator and scene worker, each running its entrypoint, and a Redis StatefulSet', () => {
      // The services entrypoint.sh runs: the alternatives of its case patterns (`gateway|router|…)`).
      const entrypoint = [...readFileSync(join(REPO_ROOT, 'deploy/docker/entrypoint.sh'), 'utf8').matchAll(/^\s*([a-z|-]+)\)\s*$/gm)].flatMap((match) => match[1]!.split('|'));
      for (const service of CORE_SERVICES) {
        const deployment = byName(objects(), 'Deployment', `rsmoe-${service}`);
        expect(deployment.spec.template.metadata.labels['app.kubernetes.io/component']).toBe(service);
        expect(deployment.spec.template.spec.containers[0].args, service).toEqual([service]);
        expect(entrypoint, `entrypoint.sh runs ${service}`).toContain(service);
      }
      byName(objects(), 'StatefulSet', 'rsmoe-redis');
    });

    it('gives the gateway and the scene workers one scene store: the same ReadWriteMany claim at SCENE_STORE_DIR, which both parse', () => {
      const claim = byName(objects(), 'PersistentVolumeClaim', SCENE_STORE_CLAIM);
      // cpu-dev: one node, whose default storage class gives ReadWriteOnce only (kind, minikube).
      expect(claim.spec.accessModes).toEqual([name === 'cpu-dev' ? 'ReadWriteOnce' : 'ReadWriteMany']);
      expect(claim.spec.storageClassName, 'the storage class is left to the operator (docs/deploy.md)').toBeUndefined();
      const config = byName(objects(), 'ConfigMap', 'rsmoe-config').data!;
      expect(quantityBytes(claim.spec.resources.requests.storage), 'the store holds at least a few of the largest uploads').toBeGreaterThanOrEqual(4 * Number(config.MAX_SCENE_BYTES));
      const mounting = workloads(objects()).filter((workload) => sceneStoreMount(workload) !== undefined);
      expect(mounting.map((workload) => workload.metadata.name).sort()).toEqual(['rsmoe-gateway', 'rsmoe-scene-worker']);
      for (const workload of mounting) {
        expect(sceneStoreMount(workload), workload.metadata.name).toBe(config.SCENE_STORE_DIR);
        expect(workload.spec.template.spec.securityContext.fsGroup, `${workload.metadata.name}: the volume is writable by the image's user`).toBe(1000);
      }
      // What each service reads from the ConfigMap, through its own configuration parser (the pod adds REDIS_URL, METRICS_HOST).
      const podEnv = { ...config, REDIS_URL: 'redis://:password@rsmoe-redis:6379', METRICS_HOST: '10.0.0.1' };
      const gateway = loadGatewayConfig(podEnv);
      const sceneWorker = loadSceneWorkerConfig(podEnv);
      expect(gateway.SCENE_STORE_DIR).toBe(config.SCENE_STORE_DIR);
      expect(sceneWorker.SCENE_STORE_DIR).toBe(gateway.SCENE_STORE_DIR);
      expect(sceneWorker.ROUTER_URL).toBe(gateway.ROUTER_URL);
      expect(sceneWorker.PACK_DIR).toBe(gateway.PACK_DIR);
      expect(sceneWorker.SCENE_RESULT_TTL_S).toBe(gateway.SCENE_RESULT_TTL_S);
      // The image's entrypoint runs every service with these flags: those `rsmoe start` and the benchmark use.
      expect(config.SERVICE_NODE_FLAGS).toBe(DEFAULT_SERVICE_NODE_FLAGS);
      // The largest scene arrives within the request deadline over a 20 Mbit/s link (a stalled one is still cut by BODY_IDLE_TIMEOUT_MS).
      expect(gateway.REQUEST_BODY_TIMEOUT_MS).toBeGreaterThanOrEqual(((gateway.MAX_SCENE_BYTES * 8) / 20e6) * 1000);
    });

    it('makes every Service select the pods of a Deployment or StatefulSet, on ports those pods name', () => {
      for (const service of ofKind(objects(), 'Service')) {
        const selector = service.spec.selector as Record<string, string> | undefined;
        expect(selector, `Service ${service.metadata.name} has a selector`).toBeTruthy();
        const targets = workloads(objects()).filter((workload) => matches(selector!, workload.spec.template.metadata.labels));
        expect(targets.map((target) => target.metadata.name), `Service ${service.metadata.name} selects a workload`).not.toEqual([]);
        for (const target of targets) {
          const named = (target.spec.template.spec.containers as { ports?: { name?: string }[] }[]).flatMap((container) => (container.ports ?? []).map((port) => port.name));
          for (const port of service.spec.ports as { name: string; targetPort: string | number }[]) {
            if (typeof port.targetPort === 'string') expect(named, `${service.metadata.name} → ${target.metadata.name} port ${port.targetPort}`).toContain(port.targetPort);
          }
        }
      }
    });

    it('makes every referenced ConfigMap and Secret exist (optional Secret keys excepted)', () => {
      const configMaps = new Set(ofKind(objects(), 'ConfigMap').map((object) => object.metadata.name));
      const secrets = new Set(ofKind(objects(), 'Secret').map((object) => object.metadata.name));
      const missing: string[] = [];
      for (const workload of workloads(objects())) {
        const spec: PodSpec = workload.spec.template.spec;
        const check = (kind: 'ConfigMap' | 'Secret', name: string, optional: boolean | undefined) => {
          if (!optional && !(kind === 'ConfigMap' ? configMaps : secrets).has(name)) missing.push(`${workload.metadata.name} → ${kind} ${name}`);
        };
        for (const container of [...spec.containers, ...(spec.initContainers ?? [])]) {
          for (const source of container.envFrom ?? []) {
            if (source.configMapRef) check('ConfigMap', source.configMapRef.name, source.configMapRef.optional);
            if (source.secretRef) check('Secret', source.secretRef.name, source.secretRef.optional);
          }
          for (const variable of container.env ?? []) {
            if (variable.valueFrom?.configMapKeyRef) check('ConfigMap', variable.valueFrom.configMapKeyRef.name, variable.valueFrom.configMapKeyRef.optional);
            if (variable.valueFrom?.secretKeyRef) check('Secret', variable.valueFrom.secretKeyRef.name, variable.valueFrom.secretKeyRef.optional);
          }
        }
        for (const volume of spec.volumes ?? []) {
          if (volume.configMap) check('ConfigMap', volume.configMap.name, volume.configMap.optional);
          if (volume.secret) check('Secret', volume.secret.secretName, volume.secret.optional);
        }
      }
      expect(missing).toEqual([]);
    });

    it('exposes only the gateway outside the cluster; the router is a ClusterIP Service with a grpc port', () => {
      const external = ofKind(objects(), 'Service').filter((service) => ['LoadBalancer', 'NodePort'].includes(service.spec.type));
      expect(external.map((service) => service.metadata.name)).toEqual(['rsmoe-gateway']);
      const ingresses = ofKind(objects(), 'Ingress').flatMap((ingress) => JSON.stringify(ingress.spec).match(/"name":"(rsmoe-[a-z-]+)"/g) ?? []);
      for (const backend of ingresses) expect(backend).toBe('"name":"rsmoe-gateway"');
      const router = byName(objects(), 'Service', 'rsmoe-router');
      expect(router.spec.type ?? 'ClusterIP').toBe('ClusterIP');
      expect(router.spec.ports.map((port: { name: string }) => port.name)).toContain('grpc');
    });

    it('lets only gateway and scene-worker pods reach the router gRPC port and only mesh pods reach Redis', () => {
      const policies = ofKind(objects(), 'NetworkPolicy');
      const routerPolicy = policies.find((policy) => policy.spec.podSelector.matchLabels?.['app.kubernetes.io/component'] === 'router');
      expect(routerPolicy, 'a NetworkPolicy for the router').toBeTruthy();
      expect(routerPolicy!.spec.policyTypes).toContain('Ingress');
      for (const rule of routerPolicy!.spec.ingress as { from?: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown }[]; ports?: { port: string | number }[] }[]) {
        const ports = (rule.ports ?? []).map((port) => port.port);
        if (ports.length > 0 && !ports.includes('grpc') && !ports.includes(50051)) continue; // e.g. metrics for Prometheus
        expect(rule.from, 'the rule that opens the grpc port names its sources').toBeTruthy();
        for (const peer of rule.from!) {
          expect(peer.namespaceSelector ?? peer.ipBlock).toBeUndefined();
          expect(['gateway', 'scene-worker']).toContain(peer.podSelector?.matchLabels?.['app.kubernetes.io/component']);
        }
      }
      // Both callers are let in: each one's pod labels match a peer of a rule that opens grpc.
      const grpcPeers = (routerPolicy!.spec.ingress as { from?: { podSelector?: { matchLabels?: Record<string, string> } }[]; ports?: { port: string | number }[] }[])
        .filter((rule) => (rule.ports ?? []).some((port) => port.port === 'grpc'))
        .flatMap((rule) => rule.from ?? []);
      for (const caller of ['rsmoe-gateway', 'rsmoe-scene-worker']) {
        const labels = byName(objects(), 'Deployment', caller).spec.template.metadata.labels;
        expect(grpcPeers.some((peer) => matches(peer.podSelector?.matchLabels ?? {}, labels)), `${caller} reaches the router`).toBe(true);
      }
      // The scene worker serves nothing but metrics.
      const scenePolicy = policies.find((policy) => policy.spec.podSelector.matchLabels?.['app.kubernetes.io/component'] === 'scene-worker');
      expect(scenePolicy?.spec.policyTypes).toEqual(['Ingress']);
      expect(scenePolicy?.spec.ingress).toEqual([{ ports: [{ port: METRICS_PORT_NAME, protocol: 'TCP' }] }]);
      const redisPolicy = policies.find((policy) => policy.spec.podSelector.matchLabels?.['app.kubernetes.io/component'] === 'redis');
      expect(redisPolicy, 'a NetworkPolicy for Redis').toBeTruthy();
      expect(redisPolicy!.spec.policyTypes).toContain('Ingress');
      for (const rule of redisPolicy!.spec.ingress as { from?: { podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown }[] }[]) {
        expect(rule.from, 'every Redis ingress rule names its sources').toBeTruthy();
        for (const peer of rule.from!) {
          expect(peer.namespaceSelector ?? peer.ipBlock).toBeUndefined();
          expect(peer.podSelector?.matchLabels?.['app.kubernetes.io/part-of']).toBe('rsmoe-mesh');
        }
      }
    });

    it('runs every container non-root with a read-only root filesystem, resource requests and all three probes', () => {
      for (const workload of workloads(objects())) {
        const spec: PodSpec = workload.spec.template.spec;
        for (const container of spec.containers) {
          const where = `${workload.metadata.name}/${container.name}`;
          expect(container.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot, `${where} runAsNonRoot`).toBe(true);
          expect(container.securityContext?.runAsUser ?? spec.securityContext?.runAsUser, `${where} runAsUser`).toBeGreaterThan(0);
          expect(container.securityContext?.readOnlyRootFilesystem, `${where} readOnlyRootFilesystem`).toBe(true);
          expect(container.securityContext?.allowPrivilegeEscalation, `${where} allowPrivilegeEscalation`).toBe(false);
          expect(container.resources?.requests?.cpu, `${where} cpu request`).toBeTruthy();
          expect(container.resources?.requests?.memory, `${where} memory request`).toBeTruthy();
          expect(container.livenessProbe, `${where} livenessProbe`).toBeTruthy();
          expect(container.readinessProbe, `${where} readinessProbe`).toBeTruthy();
          expect(container.startupProbe, `${where} startupProbe`).toBeTruthy();
        }
      }
    });

    it('probes the services where they answer, with a startup budget for model loading on the experts', () => {
      for (const deployment of ofKind(objects(), 'Deployment')) {
        const container = deployment.spec.template.spec.containers[0];
        const component = deployment.spec.template.metadata.labels['app.kubernetes.io/component'];
        const [live, ready, port] = component === 'gateway' ? ['/v2/health/live', '/v2/health/ready', 'http'] : ['/health/live', '/health/ready', METRICS_PORT_NAME];
        expect(container.livenessProbe.httpGet, deployment.metadata.name).toEqual({ path: live, port });
        expect(container.readinessProbe.httpGet, deployment.metadata.name).toEqual({ path: ready, port });
        expect(container.ports.map((p: { name: string }) => p.name)).toContain(METRICS_PORT_NAME);
        if (component === 'expert') {
          const budget = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold;
          expect(budget, 'seconds an expert may take to load its model').toBeGreaterThanOrEqual(300);
        }
      }
    });

    it('configures the in-cluster Redis with noeviction and AOF', () => {
      const redis = byName(objects(), 'StatefulSet', 'rsmoe-redis');
      const volume = (redis.spec.template.spec.volumes as { name: string; configMap?: { name: string } }[]).find((v) => v.configMap);
      const conf = byName(objects(), 'ConfigMap', volume!.configMap!.name).data!['redis.conf']!;
      expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
      expect(conf).toMatch(/^appendonly yes$/m);
      expect(redis.spec.template.spec.containers[0].command.join(' ')).toContain('/etc/redis/redis.conf');
    });

    it('runs Redis with a password from the Secret and protected mode on; every service gets REDIS_URL from that Secret', () => {
      const redis = byName(objects(), 'StatefulSet', 'rsmoe-redis');
      const container = redis.spec.template.spec.containers[0];
      const volume = (redis.spec.template.spec.volumes as { name: string; configMap?: { name: string } }[]).find((v) => v.configMap);
      const conf = byName(objects(), 'ConfigMap', volume!.configMap!.name).data!['redis.conf']!;
      expect(conf).toMatch(/^protected-mode yes$/m);
      expect(conf).not.toMatch(/requirepass/);
      expect(container.args).toEqual(['--requirepass', '$(REDIS_PASSWORD)']);
      type EnvVar = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } } };
      const fromSecret = (env: EnvVar[], name: string) => env.find((variable) => variable.name === name)?.valueFrom?.secretKeyRef;
      for (const name of ['REDIS_PASSWORD', 'REDISCLI_AUTH']) {
        expect(fromSecret(container.env, name), `redis ${name}`).toEqual({ name: 'rsmoe-redis', key: 'password' });
      }
      const secret = byName(objects(), 'Secret', 'rsmoe-redis');
      const data = ((secret as { stringData?: Record<string, string> }).stringData ?? {}) as Record<string, string>;
      expect(new URL(data.url!).password, 'the services connect with the password Redis requires').toBe(data.password);
      expect(new URL(data.url!).hostname).toBe('rsmoe-redis');
      expect(byName(objects(), 'ConfigMap', 'rsmoe-config').data!.REDIS_URL, 'no password-less REDIS_URL in the ConfigMap').toBeUndefined();
      const services = ofKind(objects(), 'Deployment');
      expect(services.length).toBe(CORE_SERVICES.length + EXPERTS.length);
      for (const deployment of services) {
        const env = deployment.spec.template.spec.containers[0].env as EnvVar[];
        expect(fromSecret(env, 'REDIS_URL'), `${deployment.metadata.name} REDIS_URL`).toEqual({ name: 'rsmoe-redis', key: 'url' });
      }
    });

    it('binds every service\'s metrics port to its pod IP (downward API), so Prometheus scrapes it and nothing listens on 0.0.0.0', () => {
      for (const deployment of ofKind(objects(), 'Deployment')) {
        const env = deployment.spec.template.spec.containers[0].env as { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
        expect(env.find((variable) => variable.name === 'METRICS_HOST')?.valueFrom?.fieldRef?.fieldPath, deployment.metadata.name).toBe('status.podIP');
      }
    });

    it('runs the router on 0.0.0.0 and points the gateway at the router Service', () => {
      const config = byName(objects(), 'ConfigMap', 'rsmoe-config').data!;
      expect(config.GRPC_HOST).toBe('0.0.0.0');
      expect(config.ROUTER_URL).toBe(`rsmoe-router:${config.GRPC_PORT}`);
      expect(config.METRICS_PORT).toBe('9464');
    });

    it('ships the dashboard ConfigMap for the Grafana sidecar from the one source file', () => {
      const dashboards = ofKind(objects(), 'ConfigMap').filter((object) => object.metadata.labels?.grafana_dashboard === '1');
      expect(dashboards).toHaveLength(1);
      expect(JSON.parse(dashboards[0]!.data!['rsmoe-mesh.json']!)).toEqual(JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')));
    });

    it('ships the PrometheusRule with exactly the groups of deploy/prometheus/alerts.yml, and a ServiceMonitor on the metrics port', () => {
      const rules = ofKind(objects(), 'PrometheusRule');
      expect(rules).toHaveLength(1);
      const alerts = parseYaml(readFileSync(join(REPO_ROOT, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: unknown };
      expect(rules[0]!.spec.groups).toEqual(alerts.groups);
      const monitors = ofKind(objects(), 'ServiceMonitor');
      expect(monitors.length).toBeGreaterThan(0);
      const scraped = ofKind(objects(), 'Service').filter((service) => monitors.some((monitor) => matches(monitor.spec.selector.matchLabels, service.metadata.labels)));
      expect(scraped.map((service) => service.metadata.name).sort()).toEqual(
        [...CORE_SERVICES.map((service) => `rsmoe-${service}`), ...EXPERTS.map((id) => `rsmoe-expert-${id}`)].sort(),
      );
      for (const monitor of monitors) {
        for (const endpoint of monitor.spec.endpoints) expect(endpoint.port).toBe(METRICS_PORT_NAME);
      }
    });
  });

  it('keeps the generated PrometheusRule file current with alerts.yml', () => {
    expect(readFileSync(PROMETHEUS_RULE_FILE, 'utf8'), 'run: node --import tsx test/deploy/generate-prometheusrule.ts').toBe(prometheusRuleFromAlerts());
  });

  describe('overlay gpu', () => {
    const objects = () => RENDERED.gpu!;

    it('gives every expert one nvidia.com/gpu, node affinity on nvidia.com/gpu.present and the nvidia.com/gpu toleration', () => {
      for (const deployment of expertDeployments(objects())) {
        const spec: PodSpec = deployment.spec.template.spec;
        const where = deployment.metadata.name;
        expect(spec.containers[0].resources.limits['nvidia.com/gpu'], where).toBe(1);
        const terms = spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms as { matchExpressions: { key: string; operator: string; values?: string[] }[] }[];
        expect(terms.length, where).toBeGreaterThan(0);
        for (const term of terms) expect(term.matchExpressions, where).toContainEqual({ key: 'nvidia.com/gpu.present', operator: 'In', values: ['true'] });
        expect(spec.tolerations, where).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
        expect(deployment.spec.replicas, `${where}: replicas belong to KEDA`).toBeUndefined();
      }
      expect(byName(objects(), 'ConfigMap', 'rsmoe-config').data!.EXECUTION_PROVIDER).toBe('cuda');
    });

    it('requests GPUs only for experts', () => {
      for (const workload of workloads(objects()).filter((w) => !expertDeployments(objects()).includes(w))) {
        for (const container of workload.spec.template.spec.containers) expect(container.resources?.limits?.['nvidia.com/gpu'], workload.metadata.name).toBeUndefined();
      }
    });

    it('leaves the scene workers (CPU only) off GPU nodes: no GPU, no node pinning, no GPU toleration', () => {
      const spec: PodSpec = byName(objects(), 'Deployment', 'rsmoe-scene-worker').spec.template.spec;
      expect(spec.containers[0].resources.limits?.['nvidia.com/gpu']).toBeUndefined();
      expect(spec.containers[0].resources.requests?.['nvidia.com/gpu']).toBeUndefined();
      expect(spec.affinity).toBeUndefined();
      expect(spec.nodeSelector).toBeUndefined();
      expect(spec.tolerations).toBeUndefined();
    });

    it('documents a way to pin a GPU product, which uncommented is a valid affinity expression', () => {
      const patchFile = join(REPO_ROOT, 'deploy/k8s/overlays/gpu/expert/gpu.yaml');
      const uncommented = readFileSync(patchFile, 'utf8').replace(/^(\s*)# (- key: nvidia\.com\/gpu\.product|  operator: In|  values: \[)/gm, '$1$2');
      const patch = parseYaml(uncommented) as { path: string; value: PodSpec }[];
      const affinity = patch.find((op) => op.path === '/spec/template/spec/affinity')!.value;
      const expressions = affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions as { key: string }[];
      expect(expressions.map((expression) => expression.key)).toEqual(['nvidia.com/gpu.present', 'nvidia.com/gpu.product']);
      expect(readFileSync(join(REPO_ROOT, 'docs/deploy.md'), 'utf8')).toContain('nvidia.com/gpu.product');
    });
  });

  describe('overlay cpu-dev', () => {
    it('requests no GPU and runs the experts on the CPU provider', () => {
      for (const workload of workloads(RENDERED['cpu-dev']!)) {
        for (const container of workload.spec.template.spec.containers) expect(container.resources?.limits?.['nvidia.com/gpu'], workload.metadata.name).toBeUndefined();
        expect(workload.spec.template.spec.tolerations, workload.metadata.name).toBeUndefined();
      }
      expect(byName(RENDERED['cpu-dev']!, 'ConfigMap', 'rsmoe-config').data!.EXECUTION_PROVIDER).toBe('cpu');
    });
  });

  describe.each(OVERLAYS)('autoscaling and disruption in overlay %s', (overlay: Overlay) => {
    const objects = () => RENDERED[overlay]!;

    it('has one KEDA ScaledObject per expert on rsmoe_queue_jobs{state="waiting"} of its own queue', () => {
      const scaled = ofKind(objects(), 'ScaledObject');
      expect(scaled.map((object) => object.spec.scaleTargetRef.name).sort()).toEqual(expertDeployments(objects()).map((d) => d.metadata.name).sort());
      for (const object of scaled) {
        const target = byName(objects(), 'Deployment', object.spec.scaleTargetRef.name);
        const expert = target.spec.template.metadata.labels[EXPERT_LABEL];
        expect(object.spec.minReplicaCount).toBeGreaterThanOrEqual(1);
        expect(object.spec.maxReplicaCount).toBeGreaterThan(object.spec.minReplicaCount);
        expect(object.spec.cooldownPeriod).toBeGreaterThan(0);
        expect(object.spec.triggers).toHaveLength(1);
        const trigger = object.spec.triggers[0];
        expect(trigger.type).toBe('prometheus');
        expect(Number(trigger.metadata.threshold)).toBeGreaterThan(0);
        const selectors = extractMetricSelectors(trigger.metadata.query);
        expect(selectors.map((selector) => selector.metric)).toEqual(['rsmoe_queue_jobs']);
        expect(METRIC_NAMES).toContain('rsmoe_queue_jobs');
        expect(selectors[0]!.matchers).toContainEqual({ label: 'state', op: '=', value: 'waiting' });
        expect(selectors[0]!.matchers).toContainEqual({ label: 'queue', op: '=', value: `expert.${expert}` });
      }
    });

    it('has a PodDisruptionBudget and a topology spread per expert', () => {
      const budgets = ofKind(objects(), 'PodDisruptionBudget');
      for (const deployment of expertDeployments(objects())) {
        const labels = deployment.spec.template.metadata.labels;
        const own = budgets.filter((budget) => matches(budget.spec.selector.matchLabels, labels));
        expect(own, deployment.metadata.name).toHaveLength(1);
        expect(own[0]!.spec.selector.matchLabels[EXPERT_LABEL]).toBe(labels[EXPERT_LABEL]);
        const spread = deployment.spec.template.spec.topologySpreadConstraints as { labelSelector: { matchLabels: Record<string, string> }; matchLabelKeys?: string[] }[];
        expect(spread?.length, deployment.metadata.name).toBeGreaterThan(0);
        // Per expert: the selector names the expert, or matchLabelKeys adds it (older kustomize leaves the selector alone).
        expect(spread[0]!.labelSelector.matchLabels[EXPERT_LABEL] === labels[EXPERT_LABEL] || spread[0]!.matchLabelKeys?.includes(EXPERT_LABEL)).toBe(true);
      }
    });
  });
});
