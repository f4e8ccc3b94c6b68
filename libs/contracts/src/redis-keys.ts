/** Default prefix of every Redis key and channel the mesh writes outside BullMQ. */
export const DEFAULT_KEY_PREFIX = 'rsmoe';

const PREFIX_PATTERN = /^[A-Za-z0-9_.:{}-]{1,64}$/;

/** Redis keys and pub/sub channels of the mesh, all under one prefix (`<prefix>:<kind>:...`). */
export interface RedisKeys {
  readonly prefix: string;
  /** String key holding a request's InferenceResultJson (set with the result TTL). */
  resultKey(requestId: string): string;
  /**
   * The gateway's answer to a request submitted asynchronously (`Prefer: respond-async`): pending, then the
   * HTTP status and body it would have answered (GET /v1/requests/{id} serves it).
   */
  asyncAnswerKey(requestId: string): string;
  /**
   * A router instance's inbox: the channel it subscribes to once, at start. Its jobs carry it as `replyTo`;
   * experts publish their partials there and the aggregator the stored result (RouterInboxMessage).
   */
  routerInbox(routerInstanceId: string): string;
  /**
   * Key of cached image features for one image, one vision encoder (the runtime's `encoderId`: sha256 of
   * the encoder graph, its weights and its preprocessing) and one packing (`anyres` or `single-crop`: a
   * LLaVA-OneVision prompt's only image and each image of a several-image prompt give other features).
   */
  featureCacheKey(imageSha256: string, encoderId: string, packing: string): string;
  /** Hash holding an image's bytes and media type (libs/blobstore). */
  blobKey(sha256: string): string;
  /** Hash of one API key's settings (ApiKeyRecord fields), by the key's id (sha256 of the secret; see api-keys.ts). */
  apiKeyKey(keyId: string): string;
  /** Hash of every API key: name → key id (names are unique; `rsmoe keys list` reads it). */
  apiKeyIndexKey(): string;
  /** Hash holding one key's token bucket (`tokens`, `atUnixMs`), shared by every gateway replica. */
  rateBucketKey(keyId: string): string;
  /** Counter of the images a key had processed on one UTC day (`YYYY-MM-DD`). */
  dailyUsageKey(keyId: string, utcDay: string): string;
  /** The id of the API key that made a request (GET /v1/requests/{id} answers only to it); kept as long as its result. */
  requestOwnerKey(requestId: string): string;
  /** An `Idempotency-Key`'s record: `scope` is the API key id (or `anonymous` with the body hash in `keyHash`). */
  idempotencyKey(scope: string, keyHash: string): string;
  /** The images (sha256s) a request stored, so that DELETE /v1/requests/{id} can erase them. */
  requestImagesKey(requestId: string): string;
  /** SCAN pattern of every cached feature entry of one image (any encoder, any packing). */
  featureCachePattern(imageSha256: string): string;
  /** Hash of one whole-scene job (libs/scenes SceneStateStore): its spec, status, counters and summary. */
  /** Pub/sub channel on which a router names the cancelled requests whose jobs an expert already runs. */
  requestCancelChannel(): string;
  sceneKey(sceneId: string): string;
  /** Hash of a scene's finished tiles: tile index → the tile's outputs (JSON), so a restart loses none. */
  sceneTilesKey(sceneId: string): string;
  /** Set of a scene's tile request ids now at the router, so a cancel (or a restarted driver) can remove their queued jobs. */
  sceneInflightKey(sceneId: string): string;
}

/**
 * Builds the key helpers for one prefix (default `rsmoe`). Tests pass a random prefix so that runs
 * never share keys. The prefix may not contain whitespace.
 */
export function createRedisKeys(prefix: string = DEFAULT_KEY_PREFIX): RedisKeys {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new RangeError(`invalid Redis key prefix ${JSON.stringify(prefix)}: 1-64 of [A-Za-z0-9_.:{}-]`);
  }
  return Object.freeze({
    prefix,
    resultKey: (requestId: string) => `${prefix}:result:${requestId}`,
    asyncAnswerKey: (requestId: string) => `${prefix}:answer:${requestId}`,
    routerInbox: (routerInstanceId: string) => `${prefix}:inbox:${routerInstanceId}`,
    requestCancelChannel: () => `${prefix}:cancelled-requests`,
    featureCacheKey: (imageSha256: string, encoderId: string, packing: string) => `${prefix}:features:${encoderId}:${packing}:${imageSha256}`,
    blobKey: (sha256: string) => `${prefix}:blob:${sha256}`,
    apiKeyKey: (keyId: string) => `${prefix}:apikey:${keyId}`,
    apiKeyIndexKey: () => `${prefix}:apikeys`,
    rateBucketKey: (keyId: string) => `${prefix}:ratelimit:${keyId}`,
    dailyUsageKey: (keyId: string, utcDay: string) => `${prefix}:usage:${keyId}:${utcDay}`,
    requestOwnerKey: (requestId: string) => `${prefix}:owner:${requestId}`,
    requestImagesKey: (requestId: string) => `${prefix}:request-images:${requestId}`,
    idempotencyKey: (scope: string, keyHash: string) => `${prefix}:idem:${scope}:${keyHash}`,
    featureCachePattern: (imageSha256: string) => `${prefix}:features:*:${imageSha256}`,
    sceneKey: (sceneId: string) => `${prefix}:scene:${sceneId}`,
    sceneTilesKey: (sceneId: string) => `${prefix}:scene-tiles:${sceneId}`,
    sceneInflightKey: (sceneId: string) => `${prefix}:scene-inflight:${sceneId}`,
  });
}

