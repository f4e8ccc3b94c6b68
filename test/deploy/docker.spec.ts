import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ALERTS_FILE, DASHBOARD_FILE, REPO_ROOT } from '../support/promql';
import { packExpertIds } from './deploy-support';

/**
 * deploy/docker checked statically (no Docker daemon needed): the compose file parses, every service runs an
 * entrypoint the image has, and Prometheus and Grafana mount the one source files of the rules and dashboard.
 */

const DOCKER_DIR = join(REPO_ROOT, 'deploy/docker');
const SERVICES = ['gateway', 'router', 'expert', 'aggregator'];

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  read_only?: boolean;
}

const compose = parseYaml(readFileSync(join(DOCKER_DIR, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
const dockerfile = readFileSync(join(DOCKER_DIR, 'Dockerfile'), 'utf8');
const entrypoint = readFileSync(join(DOCKER_DIR, 'entrypoint.sh'), 'utf8');

describe('deploy/docker', () => {
  it('has an entrypoint for every service, running a main.ts that exists', () => {
    expect(statSync(join(DOCKER_DIR, 'entrypoint.sh')).mode & 0o111).not.toBe(0);
    expect(entrypoint).toContain('gateway|router|expert|aggregator)');
    expect(entrypoint).toContain('exec node --import tsx "apps/$service/src/main.ts"');
    for (const service of SERVICES) expect(existsSync(join(REPO_ROOT, 'apps', service, 'src/main.ts')), service).toBe(true);
  });

  it('runs tsx in production, so tsx must be a runtime dependency', () => {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(manifest.dependencies.tsx).toBeTruthy();
    expect(dockerfile).toMatch(/npm install --omit=dev/);
  });

  it('builds a CPU image by default and a CUDA target that installs the onnxruntime-node CUDA provider', () => {
    const stages = [...dockerfile.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((match) => match[1]);
    expect(stages[stages.length - 1]).toBe('runtime');
    expect(stages).toContain('runtime-cuda');
    expect(dockerfile).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js');
    expect(dockerfile).toMatch(/^USER 1000:1000$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["\/usr\/local\/bin\/entrypoint.sh"\]$/m);
    for (const copied of [...dockerfile.matchAll(/^COPY (?!--from)(\S+) /gm)].map((match) => match[1]!)) {
      if (copied !== '.') expect(existsSync(join(REPO_ROOT, copied)), copied).toBe(true);
    }
  });

  it('runs the whole mesh in compose: Redis with noeviction and AOF, each service from the image, one container per expert', () => {
    const services = compose.services;
    expect(services.redis?.image).toMatch(/^redis:7/);
    const redisCommand = (services.redis?.command ?? []).join(' ');
    expect(redisCommand).toContain('--maxmemory-policy noeviction');
    expect(redisCommand).toContain('--appendonly yes');
    const meshServices = Object.entries(services).filter(([, service]) => service.image?.startsWith('rsmoe/mesh'));
    for (const [name, service] of meshServices) {
      expect(service.build?.dockerfile, name).toBe('deploy/docker/Dockerfile');
      expect(existsSync(join(resolve(DOCKER_DIR, service.build!.context), service.build!.dockerfile)), name).toBe(true);
      expect(SERVICES, `${name} command`).toContain(service.command?.[0]);
      expect(service.read_only, name).toBe(true);
    }
    const experts = meshServices.filter(([, service]) => service.command?.[0] === 'expert').map(([, service]) => service.environment?.EXPERT_ID);
    expect(experts.sort()).toEqual(packExpertIds('models/fixtures/tiny-pack').sort());
    expect(services.router?.environment?.GRPC_HOST).toBe('0.0.0.0');
    expect(services.gateway?.environment?.ROUTER_URL).toBe('router:50051');
  });

  it('mounts the one source files of the alert rules and the dashboard into Prometheus and Grafana', () => {
    const mountSources = (name: string) => (compose.services[name]?.volumes ?? []).map((volume) => resolve(DOCKER_DIR, volume.split(':')[0]!));
    expect(mountSources('prometheus')).toContain(ALERTS_FILE);
    expect(mountSources('prometheus')).toContain(join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'));
    expect(mountSources('grafana')).toContain(resolve(DASHBOARD_FILE, '..'));
    expect(mountSources('grafana')).toContain(join(REPO_ROOT, 'deploy/grafana/provisioning'));

    const prometheus = parseYaml(readFileSync(join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { static_configs: { targets: string[] }[] }[];
    };
    expect(prometheus.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const targets = prometheus.scrape_configs.flatMap((config) => config.static_configs.flatMap((group) => group.targets));
    for (const [name, service] of Object.entries(compose.services).filter(([, s]) => s.image?.startsWith('rsmoe/mesh'))) {
      expect(targets, `${name} is scraped`).toContain(`${name}:${service.environment?.METRICS_PORT ?? '9464'}`);
    }

    const provider = parseYaml(readFileSync(join(REPO_ROOT, 'deploy/grafana/provisioning/dashboards/rsmoe.yml'), 'utf8')) as { providers: { options: { path: string } }[] };
    const grafanaMount = (compose.services.grafana?.volumes ?? []).find((volume) => volume.startsWith('../grafana/dashboards:'));
    expect(grafanaMount?.split(':')[1]).toBe(provider.providers[0]!.options.path);
    const datasources = parseYaml(readFileSync(join(REPO_ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: { type: string; url: string }[] };
    expect(datasources.datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090' });
  });

  it('keeps node_modules and VCS data out of the build context', () => {
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toContain('**/node_modules');
    expect(ignored).toContain('.git');
  });
});
