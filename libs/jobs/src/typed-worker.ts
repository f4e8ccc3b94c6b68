import { setMaxListeners } from 'node:events';
import { UnrecoverableError, Worker, type Job, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { ContractValidationError, type JobCatalogue, type JobDataOf, type JobResultOf } from '@rsmoe/contracts';

/** What a handler gets besides the job's validated data. */
export interface JobContext {
  /** The BullMQ job (id, attempts, flow parent reads such as getChildrenValues). */
  job: Job;
  /** Fires at the job definition's abort instant, or when the worker closes without waiting. */
  signal: AbortSignal;
}

/** One handler per job name of the catalogue, typed by it. */
export type JobHandlers<Catalogue extends JobCatalogue> = {
  [Name in keyof Catalogue]: (data: JobDataOf<Catalogue[Name]>, context: JobContext) => Promise<JobResultOf<Catalogue[Name]>>;
};

/** A job that can never succeed: failed at once, not retried (BullMQ UnrecoverableError with `reason`). */
export class PermanentJobFailure extends Error {
  override readonly name: string = 'PermanentJobFailure';

  constructor(
    message: string,
    /** The failure reason BullMQ keeps (e.g. formatExpertJobFailure's JSON); the message when absent. */
    readonly reason: string = message,
  ) {
    super(message);
  }
}

/** The handlers given do not match the queue's job names one to one. */
export class JobHandlerMismatchError extends Error {
  override readonly name: string = 'JobHandlerMismatchError';

  constructor(
    readonly queueName: string,
    readonly missing: readonly string[],
    readonly unexpected: readonly string[],
  ) {
    super(
      [
        `queue ${queueName}:`,
        missing.length > 0 ? `no handler for job name${missing.length > 1 ? 's' : ''} ${missing.join(', ')}` : '',
        unexpected.length > 0 ? `handler${unexpected.length > 1 ? 's' : ''} for unknown job name${unexpected.length > 1 ? 's' : ''} ${unexpected.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join(' '),
    );
  }
}

/** Throws JobHandlerMismatchError unless every job name has exactly one handler and every handler a job name. */
export function checkJobHandlers(queueName: string, catalogue: JobCatalogue, handlers: Readonly<Record<string, unknown>>): void {
  const names = Object.keys(catalogue);
  const missing = names.filter((name) => typeof handlers[name] !== 'function');
  const unexpected = Object.keys(handlers).filter((name) => !names.includes(name));
  if (missing.length > 0 || unexpected.length > 0) throw new JobHandlerMismatchError(queueName, missing, unexpected);
}

export interface JobProcessorOptions {
  now?: () => number;
  /** The failure reason of a job whose data does not parse (e.g. formatExpertJobFailure's JSON); default its message. */
  invalidDataReason?: (error: ContractValidationError) => string;
  /** Fires every job's signal when aborted (the worker closing without waiting). */
  shutdown?: AbortSignal;
}

/**
 * The processor function of a worker on `queueName`: checks the handlers first (throws at once when they do
 * not match the catalogue), then for each job picks its handler by name, validates the data, binds the
 * signal and maps permanent failures to UnrecoverableError. Plain: testable without Redis.
 */
export function createJobProcessor<Catalogue extends JobCatalogue>(
  queueName: string,
  catalogue: Catalogue,
  handlers: JobHandlers<Catalogue>,
  options: JobProcessorOptions = {},
): (job: Job) => Promise<unknown> {
  checkJobHandlers(queueName, catalogue, handlers);
  const now = options.now ?? Date.now;
  const table = handlers as unknown as Record<string, (data: unknown, context: JobContext) => Promise<unknown>>;
  return async (job) => {
    const definition = Object.hasOwn(catalogue, job.name) ? catalogue[job.name] : undefined;
    if (!definition) throw new UnrecoverableError(`no handler for job name "${job.name}" on ${queueName}`);
    let data: unknown;
    try {
      data = definition.parseData(job.data);
    } catch (error) {
      if (error instanceof ContractValidationError) throw new UnrecoverableError(options.invalidDataReason?.(error) ?? error.message);
      throw error;
    }
    const controller = new AbortController();
    const abortAt = (definition.abortAtUnixMs as ((data: unknown) => number) | undefined)?.(data);
    // Named TimeoutError, as AbortSignal.timeout() names its reason: a handler tells a deadline from a cancel.
    const pastAbortInstant = (): void => controller.abort(Object.assign(new Error('the job is past its abort instant'), { name: 'TimeoutError' }));
    const timer = abortAt === undefined ? undefined : setTimeout(pastAbortInstant, Math.max(0, abortAt - now()));
    const onShutdown = (): void => controller.abort(new Error('the worker is closing'));
    if (options.shutdown?.aborted) onShutdown();
    options.shutdown?.addEventListener('abort', onShutdown, { once: true });
    try {
      return await table[job.name](data, { job, signal: controller.signal });
    } catch (error) {
      if (error instanceof PermanentJobFailure) throw new UnrecoverableError(error.reason);
      throw error;
    } finally {
      clearTimeout(timer);
      options.shutdown?.removeEventListener('abort', onShutdown);
    }
  };
}

export interface TypedWorkerOptions<Catalogue extends JobCatalogue> {
  queueName: string;
  catalogue: Catalogue;
  handlers: JobHandlers<Catalogue>;
  /** A connection of the worker's own (BullMQ blocks on it). */
  connection: Redis;
  prefix: string;
  concurrency: number;
  /** Told each job that failed (it is retried unless permanent). */
  onFailed?: (job: Job | undefined, error: Error) => void;
  onError?: (error: Error) => void;
  now?: () => number;
  /** See JobProcessorOptions.invalidDataReason. */
  invalidDataReason?: (error: ContractValidationError) => string;
  /** BullMQ's lock and stalled-job settings (defaults: BullMQ's, a 30 s lock). */
  lockDuration?: WorkerOptions['lockDuration'];
  maxStalledCount?: WorkerOptions['maxStalledCount'];
  /** How often this worker looks for stalled jobs (a dead worker's), ms (default BullMQ's, 30 s). */
  stalledInterval?: WorkerOptions['stalledInterval'];
}

/** A BullMQ worker and how to close it: `close(true)` fires every running job's signal first. */
export interface TypedWorker {
  worker: Worker;
  close(force?: boolean): Promise<void>;
}

/** Starts one worker on a queue of the catalogue; throws JobHandlerMismatchError before connecting anything. */
export function startTypedWorker<Catalogue extends JobCatalogue>(options: TypedWorkerOptions<Catalogue>): TypedWorker {
  const shutdown = new AbortController();
  // Each running job listens on it until it ends: up to `concurrency` listeners, none left behind, and Node's
  // leak warning past 10 would be a false alarm in every log of a busy expert (CONCURRENCY is 16 by default).
  setMaxListeners(Math.max(10, options.concurrency ?? 1), shutdown.signal);
  const processor = createJobProcessor(options.queueName, options.catalogue, options.handlers, {
    now: options.now,
    shutdown: shutdown.signal,
    invalidDataReason: options.invalidDataReason,
  });
  const worker = new Worker(options.queueName, processor, {
    connection: options.connection,
    prefix: options.prefix,
    concurrency: options.concurrency,
    ...(options.lockDuration !== undefined ? { lockDuration: options.lockDuration } : {}),
    ...(options.maxStalledCount !== undefined ? { maxStalledCount: options.maxStalledCount } : {}),
    ...(options.stalledInterval !== undefined ? { stalledInterval: options.stalledInterval } : {}),
  });
  if (options.onFailed) worker.on('failed', options.onFailed);
  worker.on('error', options.onError ?? (() => undefined));
  return {
    worker,
    async close(force = false) {
      if (force) shutdown.abort();
      await worker.close(force);
    },
  };
}
