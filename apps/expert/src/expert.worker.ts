import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB_NAMES, expertQueueName, type ExpertJobResult } from '@rsmoe/contracts';
import type { Logger } from '@rsmoe/observability';
import type { ExpertMetrics } from './expert-metrics';
import { PermanentJobError, type ExpertJobProcessor } from './expert-job.processor';

/**
 * The BullMQ edge of an expert: one worker on `expert.<id>`, one handler per job name. Permanent errors
 * become UnrecoverableError (no retry); anything else is retried with the job's backoff.
 */
export function startExpertWorker(options: {
  expertId: string;
  connection: Redis;
  queuePrefix: string;
  concurrency: number;
  processor: ExpertJobProcessor;
  metrics: ExpertMetrics;
  logger: Logger;
}): Worker {
  const { metrics } = options;
  const handlers: Record<string, (job: Job) => Promise<ExpertJobResult>> = {
    [JOB_NAMES.expertGenerate]: (job) => options.processor.process(job.data),
  };
  const worker = new Worker(
    expertQueueName(options.expertId),
    async (job: Job) => {
      const handler = handlers[job.name];
      if (!handler) throw new UnrecoverableError(`no handler for job name "${job.name}" on ${job.queueName}`);
      metrics.jobStarted();
      try {
        options.logger.debug('job picked up', { requestId: job.data?.requestId, jobId: job.id });
        const output = await handler(job);
        options.logger.debug('job done', { requestId: job.data?.requestId, status: output.status });
        metrics.output(output);
        return output;
      } catch (error) {
        metrics.error();
        if (error instanceof PermanentJobError) throw new UnrecoverableError(error.message);
        throw error;
      } finally {
        metrics.jobSettled();
      }
    },
    { connection: options.connection, prefix: options.queuePrefix, concurrency: options.concurrency },
  );
  worker.on('failed', (job, error) =>
    options.logger.warn('expert job failed', { jobId: job?.id, requestId: job?.data?.requestId, error: error.message }),
  );
  worker.on('error', (error) => options.logger.error('worker error', { error }));
  return worker;
}
