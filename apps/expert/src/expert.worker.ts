import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { EXPERT_QUEUE_JOBS, JOB_NAMES, expertQueueName, formatExpertJobFailure } from '@rsmoe/contracts';
import { PermanentJobFailure, startTypedWorker, type TypedWorker } from '@rsmoe/jobs';
import type { Logger, RedisOutageLog } from '@rsmoe/observability';
import type { ExpertMetrics } from './expert-metrics';
import { PermanentJobError, type ExpertJobProcessor } from './expert-job.processor';
import type { RequestCancellations } from './request-cancellations';

/**
 * The BullMQ edge of an expert: one typed worker (libs/jobs) on `expert.<id>` with one handler per job name
 * of EXPERT_QUEUE_JOBS, checked at start-up. The job's signal (fired at its fuse point, or when the worker
 * closes without waiting) reaches the processor. Permanent errors become UnrecoverableError (no retry);
 * anything else is retried with the job's backoff. Either way the failure reason is formatExpertJobFailure's
 * JSON, so its errorCode travels typed (`invalid_params` for data that does not parse, `internal` for the rest).
 *
 * The job lock: BullMQ renews it every lockDuration / 2 from a timer, which runs because every onnxruntime
 * session run starts from setImmediate and image decoding is bounded by the image limits. A worker that
 * dies loses its jobs' locks after lockDuration; they are then redelivered once (maxStalledCount) and
 * dropped at pick-up when past their fuse point.
 */
export function startExpertWorker(options: {
  expertId: string;
  connection: Redis;
  queuePrefix: string;
  concurrency: number;
  processor: ExpertJobProcessor;
  /** Cancels of requests by their callers, published by routers: a running job of one stops. */
  cancellations?: RequestCancellations;
  metrics: ExpertMetrics;
  logger: Logger;
  /** How long a job's lock lasts without renewal, in ms (BullMQ's lockDuration; default 30 000). */
  lockDurationMs?: number;
  /** Where the worker's connection errors go (one log line per outage); default: each one logged. */
  outages?: RedisOutageLog;
  /**
   * Tells the dispatching router (the job's `replyTo`) that the job failed for good, with its failure
   * reason, so the router fuses without waiting for the fuse point.
   */
  reportFailure: (replyTo: string, requestId: string, reason: string) => Promise<void>;
}): TypedWorker {
  const { metrics, logger } = options;
  const typed = startTypedWorker({
    queueName: expertQueueName(options.expertId),
    catalogue: EXPERT_QUEUE_JOBS,
    handlers: {
      [JOB_NAMES.expertGenerate]: async (data, { job, signal }) => {
        metrics.jobStarted();
        const cancel = options.cancellations?.track(data.requestId);
        try {
          logger.debug('job picked up', { requestId: data.requestId, jobId: job.id });
          const output = await options.processor.process(data, cancel ? [signal, cancel.signal] : [signal]);
          logger.debug('job done', { requestId: data.requestId, status: output.status, errorCode: output.errorCode });
          metrics.output(output, data.task);
          return output;
        } catch (error) {
          metrics.error();
          if (error instanceof PermanentJobError) {
            throw new PermanentJobFailure(error.message, formatExpertJobFailure({ errorCode: error.errorCode, message: error.message }));
          }
          logger.warn('expert job error (retried with backoff)', { jobId: job.id, requestId: data.requestId, error });
          throw new Error(formatExpertJobFailure({ errorCode: 'internal', message: error instanceof Error ? error.message : String(error) }), { cause: error });
        } finally {
          cancel?.release();
          metrics.jobSettled();
        }
      },
    },
    invalidDataReason: (error) => formatExpertJobFailure({ errorCode: 'invalid_params', message: error.message }),
    connection: options.connection,
    prefix: options.queuePrefix,
    concurrency: options.concurrency,
    lockDuration: options.lockDurationMs ?? 30_000,
    maxStalledCount: 1,
    onFailed: (job: Job | undefined, error: Error) => {
      const { requestId, replyTo } = (job?.data ?? {}) as { requestId?: unknown; replyTo?: unknown };
      logger.warn('expert job failed', { jobId: job?.id, requestId, error: error.message });
      // BullMQ sets finishedOn only when the job will not be retried.
      if (!job?.finishedOn || typeof requestId !== 'string' || typeof replyTo !== 'string') return;
      options.reportFailure(replyTo, requestId, job.failedReason ?? error.message).catch((reportError: unknown) =>
        logger.warn('reporting a failed job to its router failed (the deadline job fuses it)', { requestId, error: (reportError as Error).message }),
      );
    },
    onError: options.outages ? () => undefined : (error) => logger.error('worker error', { error }),
  });
  options.outages?.watchEmitter(typed.worker, 'bullmq-worker');
  return typed;
}

