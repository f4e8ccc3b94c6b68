import type { Logger } from './logger';

/** What the log needs of an ioredis client: its events and its status (`ready` when connected). */
export interface WatchedRedisClient {
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'ready', listener: () => void): unknown;
  readonly status: string;
}

/** Anything else that re-emits Redis errors: BullMQ's Worker, Queue, QueueEvents and FlowProducer. */
export interface RedisErrorEmitter {
  on(event: 'error', listener: (error: Error) => void): unknown;
}

export interface RedisOutageLogOptions {
  /**
   * After a reconnect, errors for this long are counted into the outage that just ended instead of opening
   * a new one (BullMQ's blocking connections report their broken commands late), in ms. Default 2000.
   */
  settleMs?: number;
  now?: () => number;
}

/**
 * One error handler for every Redis connection of a process (its own ioredis clients and BullMQ's), so an
 * outage is logged once, not once per retry of every client: a `warn` at the first error ("redis
 * unavailable", naming the connection and the error), then one `info` line "redis reconnected after N ms,
 * M errors" when every watched client is ready again. Without a handler, ioredis prints "Unhandled error
 * event" with a stack trace for each retry.
 */
export class RedisOutageLog {
  private readonly clients = new Map<string, WatchedRedisClient>();
  private outage: { since: number; errors: number } | undefined;
  private settledAt = -Infinity;
  private readonly settleMs: number;
  private readonly now: () => number;

  constructor(
    private readonly logger: Logger,
    options: RedisOutageLogOptions = {},
  ) {
    this.settleMs = options.settleMs ?? 2_000;
    this.now = options.now ?? Date.now;
  }

  /** Attaches the handler to an ioredis client (`name` appears in the log: `main`, `subscriber`, `bullmq`...). */
  watch<Client extends WatchedRedisClient>(client: Client, name: string): Client {
    this.clients.set(name, client);
    client.on('error', (error) => this.error(name, error));
    client.on('ready', () => this.ready());
    return client;
  }

  /** Attaches the handler to an emitter of Redis errors that is not itself a client (BullMQ's classes). */
  watchEmitter<Emitter extends RedisErrorEmitter>(emitter: Emitter, name: string): Emitter {
    emitter.on('error', (error) => this.error(name, error));
    return emitter;
  }

  /** True between the first error and the reconnect of every watched client. */
  get inOutage(): boolean {
    return this.outage !== undefined;
  }

  private error(connection: string, error: Error): void {
    if (this.outage) {
      this.outage.errors += 1;
      return;
    }
    if (this.now() - this.settledAt < this.settleMs) {
      this.logger.debug('redis error after the reconnect (counted with the outage that ended)', { connection, error: error.message });
      return;
    }
    this.outage = { since: this.now(), errors: 1 };
    this.logger.warn('redis unavailable', { connection, error: error.message });
  }

  private ready(): void {
    if (!this.outage) return;
    if ([...this.clients.values()].some((client) => client.status !== 'ready')) return;
    const afterMs = this.now() - this.outage.since;
    const { errors } = this.outage;
    this.outage = undefined;
    this.settledAt = this.now();
    this.logger.info(`redis reconnected after ${afterMs} ms, ${errors} errors`, { afterMs, errors });
  }
}
