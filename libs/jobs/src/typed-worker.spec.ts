import { randomBytes } from 'node:crypto';
import { Queue, UnrecoverableError, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { AGGREGATE_QUEUE_JOBS, EXPERT_QUEUE_JOBS, JOB_NAMES, expertQueueName, type ExpertJobResult } from '@rsmoe/contracts';
import { aggregateJobData, expertJobData, expertOutput } from '../../contracts/test-support/fixtures';
import { JobHandlerMismatchError, PermanentJobFailure, checkJobHandlers, createJobProcessor, startTypedWorker, type JobHandlers } from './index';

const fakeJob = (name: string, data: unknown) => ({ name, data }) as unknown as Job;

describe('checkJobHandlers', () => {
  it('accepts exactly one handler per job name', () => {
    expect(() => checkJobHandlers('aggregate', AGGREGATE_QUEUE_JOBS, { fuse: () => undefined, 'finalize-at-deadline': () => undefined })).not.toThrow();
  });

  it('fails start-up naming the job names without a handler and the handlers without a job name', () => {
    const check = () => checkJobHandlers('aggregate', AGGREGATE_QUEUE_JOBS, { fuse: () => undefined, 'finalise-at-deadline': () => undefined });
    expect(check).toThrow(JobHandlerMismatchError);
    expect(check).toThrow('queue aggregate: no handler for job name finalize-at-deadline handler for unknown job name finalise-at-deadline');
  });
});

describe('createJobProcessor', () => {
  it('refuses to build a processor whose handlers do not match the catalogue', () => {
    expect(() => createJobProcessor('expert.theme', EXPERT_QUEUE_JOBS, {} as JobHandlers<typeof EXPERT_QUEUE_JOBS>)).toThrow(/no handler for job name generate/);
  });

  it('hands the validated data to the handler of the job name and returns its result', async () => {
    const seen: unknown[] = [];
    const process = createJobProcessor('expert.theme', EXPERT_QUEUE_JOBS, {
      [JOB_NAMES.expertGenerate]: async (data, { signal }) => {
        seen.push(data.requestId, signal.aborted);
        return expertOutput();
      },
    });
    expect(await process(fakeJob('generate', expertJobData()))).toEqual(expertOutput());
    expect(seen).toEqual(['req-1', false]);
  });

  it('fails permanently (not retried) on an unknown job name, invalid data and a PermanentJobFailure', async () => {
    const process = createJobProcessor('expert.theme', EXPERT_QUEUE_JOBS, {
      generate: async (data) => {
        if (data.prompt === 'refuse') throw new PermanentJobFailure('bad image', '{"errorCode":"invalid_image","message":"bad image"}');
        if (data.prompt === 'flaky') throw new Error('connection reset');
        return expertOutput();
      },
    });
    await expect(process(fakeJob('fuse', expertJobData()))).rejects.toThrow(new UnrecoverableError('no handler for job name "fuse" on expert.theme'));
    await expect(process(fakeJob('generate', { ...expertJobData(), images: [] }))).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(process(fakeJob('generate', expertJobData({ prompt: 'refuse' })))).rejects.toThrow(new UnrecoverableError('{"errorCode":"invalid_image","message":"bad image"}'));
    // A transient error stays retryable.
    const transient = await process(fakeJob('generate', expertJobData({ prompt: 'flaky' }))).catch((error: unknown) => error);
    expect(transient).not.toBeInstanceOf(UnrecoverableError);
    expect(transient).toMatchObject({ message: 'connection reset' });
  });

  it('writes the failure reason of invalid data with invalidDataReason when given (a typed code for the aggregator)', async () => {
    const process = createJobProcessor('expert.theme', EXPERT_QUEUE_JOBS, { generate: async () => expertOutput() }, { invalidDataReason: (error) => `reason: ${error.subject}` });
    await expect(process(fakeJob('generate', { ...expertJobData(), images: [] }))).rejects.toThrow(new UnrecoverableError('reason: ExpertJobData'));
  });

  it('names the reason of a signal fired at the abort instant TimeoutError, and one fired by a closing worker otherwise', async () => {
    const reasons: unknown[] = [];
    const shutdown = new AbortController();
    const process = createJobProcessor(
      'expert.theme',
      EXPERT_QUEUE_JOBS,
      { generate: (_data, { signal }) => new Promise((resolve) => signal.addEventListener('abort', () => (reasons.push(signal.reason), resolve(expertOutput())), { once: true })) },
      { shutdown: shutdown.signal },
    );
    await process(fakeJob('generate', expertJobData({ deadlineUnixMs: Date.now() + 20 })));
    const closing = process(fakeJob('generate', expertJobData({ deadlineUnixMs: Date.now() + 60_000 })));
    shutdown.abort();
    await closing;
    expect(reasons.map((reason) => (reason as Error).name)).toEqual(['TimeoutError', 'Error']);
  });

  it("fires an expert job's signal at its fuse point, and never for an aggregate job", async () => {
    const now = Date.now();
    let signal: AbortSignal | undefined;
    const process = createJobProcessor('expert.theme', EXPERT_QUEUE_JOBS, {
      generate: async (_data, context) => {
        signal = context.signal;
        await new Promise((resolve) => context.signal.addEventListener('abort', resolve, { once: true }));
        return expertOutput({ status: 'timed_out', errorCode: 'deadline_exceeded', text: '' });
      },
    });
    const started = Date.now();
    const output = (await process(fakeJob('generate', expertJobData({ deadlineUnixMs: now + 5_000, fuseAtUnixMs: now + 60 })))) as ExpertJobResult;
    expect(signal?.aborted).toBe(true);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(output.errorCode).toBe('deadline_exceeded');
    // An old payload's single deadline is its fuse point: the signal fires there (else this never resolves).
    const old = createJobProcessor('expert.theme', EXPERT_QUEUE_JOBS, {
      generate: (_data, context) => new Promise((resolve) => context.signal.addEventListener('abort', () => resolve(expertOutput()), { once: true })),
    });
    await expect(old(fakeJob('generate', expertJobData({ deadlineUnixMs: Date.now() + 50 })))).resolves.toEqual(expertOutput());
    const aggregate = createJobProcessor('aggregate', AGGREGATE_QUEUE_JOBS, {
      fuse: async (_data, context) => (signal = context.signal, undefined),
      'finalize-at-deadline': async (_data, context) => (signal = context.signal, undefined),
    });
    await aggregate(fakeJob('finalize-at-deadline', aggregateJobData({ deadlineUnixMs: now - 10, fuseAtUnixMs: now - 20 })));
    expect(signal?.aborted).toBe(false);
  });

  it('fires every running job signal when the worker shuts down', async () => {
    const shutdown = new AbortController();
    const process = createJobProcessor('expert.theme', EXPERT_QUEUE_JOBS, { generate: (_data, { signal }) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(expertOutput()))) }, { shutdown: shutdown.signal });
    const running = process(fakeJob('generate', expertJobData({ deadlineUnixMs: Date.now() + 60_000 })));
    shutdown.abort();
    await expect(running).resolves.toEqual(expertOutput());
  });
});

describe('createJobProcessor: how a handler tells the deadline from a cancel, and typed failure reasons', () => {
  it('fails data that does not parse with the reason invalidDataReason writes', async () => {
    const process = createJobProcessor('expert.theme', EXPERT_QUEUE_JOBS, { generate: async () => expertOutput() }, { invalidDataReason: (error) => `{"errorCode":"invalid_params","message":${JSON.stringify(error.message)}}` });
    const error = await process(fakeJob('generate', { ...expertJobData(), images: [] })).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(JSON.parse((error as Error).message)).toMatchObject({ errorCode: 'invalid_params', message: expect.stringMatching(/images/) });
  });
});

/**
 * A theme-expert queue under a fresh prefix and a typed worker on it (real Redis), handed to `body`; the
 * worker, the queue's keys and both connections are gone afterwards.
 */
async function withThemeWorker(
  generate: JobHandlers<typeof EXPERT_QUEUE_JOBS>['generate'],
  concurrency: number,
  body: (queue: Queue) => Promise<void>,
): Promise<void> {
  const prefix = `jobs${randomBytes(5).toString('hex')}`;
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const queue = new Queue(expertQueueName('theme'), { connection: redis, prefix });
  const workerConnection = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
  const typed = startTypedWorker({ queueName: expertQueueName('theme'), catalogue: EXPERT_QUEUE_JOBS, handlers: { generate }, connection: workerConnection, prefix, concurrency });
  try {
    await body(queue);
  } finally {
    await typed.close();
    await queue.obliterate({ force: true });
    await queue.close();
    workerConnection.disconnect();
    redis.disconnect();
  }
}

describe('startTypedWorker (real Redis)', () => {
  it('runs handlers on a real queue; a permanent failure is tried once, a transient one retried', async () => {
    const tries = new Map<string, number>();
    const generate: JobHandlers<typeof EXPERT_QUEUE_JOBS>['generate'] = async (data) => {
      tries.set(data.requestId, (tries.get(data.requestId) ?? 0) + 1);
      if (data.requestId === 'bad') throw new PermanentJobFailure('no');
      if (data.requestId === 'flaky' && tries.get('flaky') === 1) throw new Error('transient');
      return expertOutput({ text: data.requestId });
    };
    await withThemeWorker(generate, 2, async (queue) => {
      const deadlineUnixMs = Date.now() + 60_000;
      const [good, bad, flaky] = await queue.addBulk(
        ['good', 'bad', 'flaky'].map((requestId) => ({ name: 'generate', data: expertJobData({ requestId, deadlineUnixMs }), opts: { attempts: 3, backoff: { type: 'fixed', delay: 10 } } })),
      );
      await expect.poll(async () => Promise.all([good, bad, flaky].map(async (job) => (await queue.getJob(job.id!))?.getState())), { timeout: 10_000 }).toEqual(['completed', 'failed', 'completed']);
      expect((await queue.getJob(good.id!))?.returnvalue.text).toBe('good');
      expect(Object.fromEntries(tries)).toEqual({ good: 1, bad: 1, flaky: 2 });
    });
  });

  it('a worker running 16 jobs at once raises no MaxListenersExceededWarning (each job listens on its shutdown signal)', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.name);
    process.on('warning', onWarning);
    let running = 0;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    const generate: JobHandlers<typeof EXPERT_QUEUE_JOBS>['generate'] = async (data) => {
      running += 1;
      await released;
      return expertOutput({ text: data.requestId });
    };
    try {
      await withThemeWorker(generate, 16, async (queue) => {
        try {
          const deadlineUnixMs = Date.now() + 60_000;
          await queue.addBulk(Array.from({ length: 16 }, (_, index) => ({ name: 'generate', data: expertJobData({ requestId: `r${index}`, deadlineUnixMs }) })));
          await expect.poll(() => running, { timeout: 10_000 }).toBe(16);
          release();
          await expect.poll(() => queue.getCompletedCount(), { timeout: 10_000 }).toBe(16);
          // A warning is emitted on the next tick of the process.
          await new Promise((resolve) => setImmediate(resolve));
          expect(warnings).not.toContain('MaxListenersExceededWarning');
        } finally {
          // Before the worker closes: close waits for the running jobs.
          release();
        }
      });
    } finally {
      process.off('warning', onWarning);
    }
  });
});
