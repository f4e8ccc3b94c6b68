import {
  API_KEY_NAME_PATTERN,
  apiKeyId,
  apiKeyRecordFields,
  generateApiKeySecret,
  parseApiKeyRecord,
  utcDay,
  type ApiKeyRecord,
  type RedisKeys,
} from '@rsmoe/contracts';
import type { Redis } from 'ioredis';

/** A key as `rsmoe keys list` shows it: settings and today's use, never the secret nor its hash. */
export interface ListedApiKey extends ApiKeyRecord {
  imagesToday: number;
}

/** A name already taken, or one that does not exist: the user's mistake, reported as such. */
export class ApiKeyNameError extends Error {
  override readonly name = 'ApiKeyNameError';
}

/**
 * Claims the name and stores the record in one step: two `keys create` of one name cannot both win.
 * KEYS: 1 index, 2 record. ARGV: 1 name, 2 key id, 3.. field, value pairs.
 */
const CREATE_SCRIPT = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1
`;

/** The API keys in Redis, as the gateway reads them (libs/contracts api-keys.ts): only each key's sha256 is kept. */
export class ApiKeyRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly now: () => number = Date.now,
  ) {}

  /** Stores a new key and returns its secret: the only time it exists outside the client's hands. */
  async create(settings: Omit<ApiKeyRecord, 'createdAtUnixMs'>): Promise<{ secret: string; record: ApiKeyRecord }> {
    if (!API_KEY_NAME_PATTERN.test(settings.name)) throw new ApiKeyNameError(`invalid key name ${JSON.stringify(settings.name)}: 1-64 of [A-Za-z0-9_.-], starting with a letter or digit`);
    const secret = generateApiKeySecret();
    const id = apiKeyId(secret);
    const record: ApiKeyRecord = { ...settings, createdAtUnixMs: this.now() };
    const fields = Object.entries(apiKeyRecordFields(record)).flat();
    const created = await this.redis.eval(CREATE_SCRIPT, 2, this.keys.apiKeyIndexKey(), this.keys.apiKeyKey(id), settings.name, id, ...fields);
    if (created !== 1) throw new ApiKeyNameError(`a key named "${settings.name}" exists (revoke it first)`);
    return { secret, record };
  }

  /** Every key, by name. */
  async list(): Promise<ListedApiKey[]> {
    const index = await this.redis.hgetall(this.keys.apiKeyIndexKey());
    const entries = Object.entries(index).sort(([a], [b]) => a.localeCompare(b));
    if (entries.length === 0) return [];
    const day = utcDay(this.now());
    const pipeline = this.redis.pipeline();
    for (const [, id] of entries) pipeline.hgetall(this.keys.apiKeyKey(id)).get(this.keys.dailyUsageKey(id, day));
    const replies = (await pipeline.exec()) ?? [];
    return entries.flatMap((_entry, i) => {
      const record = parseApiKeyRecord((replies[2 * i]?.[1] ?? {}) as Record<string, string>);
      return record ? [{ ...record, imagesToday: Number(replies[2 * i + 1]?.[1] ?? 0) }] : [];
    });
  }

  /** Deletes the key (the gateway answers 401 to it from the next request on), its bucket and today's usage. */
  async revoke(name: string): Promise<void> {
    const id = await this.redis.hget(this.keys.apiKeyIndexKey(), name);
    if (id === null) throw new ApiKeyNameError(`no key named "${name}"`);
    await this.redis
      .multi()
      .del(this.keys.apiKeyKey(id), this.keys.rateBucketKey(id), this.keys.dailyUsageKey(id, utcDay(this.now())))
      .hdel(this.keys.apiKeyIndexKey(), name)
      .exec();
  }
}
