import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as HealthProtoGrpcType } from './generated/health';
import type { ProtoGrpcType as RouterProtoGrpcType } from './generated/router';

/**
 * The nearest `protos/` folder holding rsmoe/v1/router.proto, looking upwards from `start`: found from the
 * sources (libs/contracts/src) and from a compiled copy inside the repository (e.g. apps/x/dist/...) alike.
 */
export function findProtoRoot(start: string = __dirname): string {
  for (let dir = resolve(start); ; dir = dirname(dir)) {
    const candidate = join(dir, 'protos');
    if (existsSync(join(candidate, 'rsmoe', 'v1', 'router.proto'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`no protos/rsmoe/v1/router.proto above ${start}`);
  }
}

/** Absolute path of the repository's `protos/` folder (the include root of every proto import). */
export const PROTO_ROOT = findProtoRoot();

/** `rsmoe.v1.Router` and its messages. */
export const ROUTER_PROTO_PATH = resolve(PROTO_ROOT, 'rsmoe/v1/router.proto');

/** The standard `grpc.health.v1.Health` service. */
export const HEALTH_PROTO_PATH = resolve(PROTO_ROOT, 'grpc/health/v1/health.proto');

/**
 * Options of every runtime proto load (grpc-js clients and servers, NestJS `loader`). The generated
 * types in `src/generated` are produced with exactly these (tools/generate-protos.ts derives its CLI
 * flags from this object), so what the loader returns is what the types say: camelCase fields,
 * 64-bit integers as decimal strings, enums as their names, defaults filled in, oneof names set.
 */
export const PROTO_LOADER_OPTIONS = Object.freeze({
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
}) satisfies protoLoader.Options;

function loadPackage<T>(protoPath: string): T {
  const definition = protoLoader.loadSync(protoPath, { ...PROTO_LOADER_OPTIONS, includeDirs: [...PROTO_LOADER_OPTIONS.includeDirs] });
  return grpc.loadPackageDefinition(definition) as unknown as T;
}

/** Loads router.proto: `pkg.rsmoe.v1.Router` is the client constructor, `.service` the server definition. */
export function loadRouterPackage(): RouterProtoGrpcType {
  return loadPackage<RouterProtoGrpcType>(ROUTER_PROTO_PATH);
}

/** Loads the standard health proto: `pkg.grpc.health.v1.Health`. */
export function loadHealthPackage(): HealthProtoGrpcType {
  return loadPackage<HealthProtoGrpcType>(HEALTH_PROTO_PATH);
}

/** Fully qualified service names, as used in grpc.health.v1 checks and gRPC method paths. */
export const ROUTER_SERVICE_NAME = 'rsmoe.v1.Router';
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';
