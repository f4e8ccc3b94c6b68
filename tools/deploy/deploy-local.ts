import { parseArgs } from 'node:util';
import { buildImages, imagePackExperts, MESH_IMAGE, PodmanMesh, probeContainerSupport, removeMesh } from './podman-mesh';

/**
 * `npm run deploy:local`: builds the image (deploy/docker/Dockerfile, from the Debian base of build-base.sh unless
 * --base-image names one) and runs Redis and every service of the pack as separate containers of that one image
 * with podman on the host network (the gateway and the scene worker share the podman volume <name>-scenes as their
 * scene store); prints the gateway's URL. `npm run deploy:local -- --down` removes every container and volume it
 * made. Options: --port (gateway, 8080), --router-port (50051), --metrics-port (9464: router, aggregator, experts in
 * pack order, gateway, scene worker), --redis-port (6380, a private Redis), --host (gateway listen
 * address, 127.0.0.1), --name (containers' prefix and label, rsmoe-local), --no-build (use the image as built).
 */

const USAGE = 'usage: npm run deploy:local -- [--down] [--port 8080] [--router-port 50051] [--metrics-port 9464] [--redis-port 6380] [--host 127.0.0.1] [--name rsmoe-local] [--base-image IMAGE] [--no-build]';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      down: { type: 'boolean', default: false },
      port: { type: 'string', default: '8080' },
      'router-port': { type: 'string', default: '50051' },
      'metrics-port': { type: 'string', default: '9464' },
      'redis-port': { type: 'string', default: '6380' },
      host: { type: 'string', default: '127.0.0.1' },
      name: { type: 'string', default: 'rsmoe-local' },
      'base-image': { type: 'string' },
      'no-build': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const support = await probeContainerSupport();
  if (!support.ok) throw new Error(`deploy:local cannot run containers here: ${support.reason}`);
  if (values.down) {
    const removed = await removeMesh(values.name);
    console.log(removed.length > 0 ? `removed ${removed.length} containers and volumes: ${removed.join(', ')}` : `no container of ${values.name} to remove`);
    return;
  }
  const port = (name: string, text: string) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1 || value > 65_535) throw new Error(`--${name} ${text}: not a port`);
    return value;
  };
  const ports = {
    gateway: port('port', values.port),
    router: port('router-port', values['router-port']),
    metricsBase: port('metrics-port', values['metrics-port']),
    redis: port('redis-port', values['redis-port']),
  };
  if (!values['no-build']) {
    console.log(`building ${MESH_IMAGE} (podman, deploy/docker/Dockerfile)…`);
    const build = await buildImages({ ...(values['base-image'] ? { baseImage: values['base-image'] } : {}) });
    console.log(
      `built ${build.meshImage} from ${build.baseImage}: ${(build.meshImageBytes / 1e6).toFixed(0)} MB` +
        ` (base ${build.baseSeconds.toFixed(0)} s, image ${build.buildSeconds.toFixed(0)} s)`,
    );
  }
  const pack = await imagePackExperts();
  const mesh = new PodmanMesh({ name: values.name, ports, gatewayHost: values.host }, pack.experts);
  console.log(`starting Redis and ${mesh.services.length} services as containers of ${values.name}…`);
  const { readyMs } = await mesh.start();
  const host = values.host === '0.0.0.0' ? '127.0.0.1' : values.host;
  console.log(`RS-MoE Mesh is up in containers: http://${host}:${ports.gateway} (pack ${pack.name}@${pack.version}; ready ${(readyMs / 1000).toFixed(1)} s after the first service started)`);
  console.log(`Containers: ${[mesh.containerName('redis'), ...mesh.services.map((service) => mesh.containerName(service.name))].join(', ')}`);
  console.log(`Scene store (gateway and scene worker): podman volume ${mesh.sceneStoreVolume} (removed by --down)`);
  console.log(`Metrics: ${Object.entries(mesh.metricsTargets()).map(([service, target]) => `${service} http://${target}/metrics`).join(', ')}`);
  console.log(`Try:  curl -s -F image=@docs/images/demo-scene.png http://${host}:${ports.gateway}/v1/captions`);
  console.log(`Stop: npm run deploy:local -- --down${values.name === 'rsmoe-local' ? '' : ` --name ${values.name}`}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
