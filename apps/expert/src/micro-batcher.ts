/** How the expert groups jobs that arrive together into one generation call. */
export interface MicroBatcherOptions {
  /** Most items in one call (≥ 1). */
  maxBatchSize: number;
  /** Longest an item waits for companions before its batch runs, in milliseconds (≥ 0). */
  maxWaitMs: number;
  /** Called with the size of every batch that runs (for the batch-size histogram). */
  onBatch?: (size: number) => void;
}

interface Pending<In, Out> {
  item: In;
  signal?: AbortSignal;
  resolve: (value: Out) => void;
  reject: (error: unknown) => void;
}

/** An item whose signal fired before its batch ran: it was dropped, never computed. `reason` is the signal's. */
export class BatchItemAbortedError extends Error {
  override readonly name = 'BatchItemAbortedError';
  constructor(readonly reason: unknown) {
    super(`dropped before computing: ${reason instanceof Error ? reason.message : String(reason)}`);
  }
}

/**
 * Collects items submitted close together and hands them to `runBatch` as one array, up to `maxBatchSize`
 * or after `maxWaitMs`. One run at a time: while a batch computes, new items gather for the next one.
 * If a batch fails as a whole, its items are retried one by one so that one bad item fails alone. An item
 * whose signal fires while it waits (its deadline, a cancel) leaves the queue at once and is never part of
 * a batch: its promise rejects with BatchItemAbortedError. Once in a running batch, the signal is the
 * runner's to honour (the runtime's stopping criteria).
 */
export class MicroBatcher<In, Out> {
  private queue: Pending<In, Out>[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private running = false;

  constructor(
    private readonly runBatch: (items: In[]) => Promise<Out[]>,
    private readonly options: MicroBatcherOptions,
  ) {}

  submit(item: In, signal?: AbortSignal): Promise<Out> {
    if (signal?.aborted) return Promise.reject(new BatchItemAbortedError(signal.reason));
    return new Promise<Out>((resolve, reject) => {
      const pending: Pending<In, Out> = { item, signal, resolve, reject };
      const onAbort = (): void => {
        const index = this.queue.indexOf(pending);
        if (index < 0) return;
        this.queue.splice(index, 1);
        reject(new BatchItemAbortedError(signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const settle =
        <T>(done: (value: T) => void) =>
        (value: T): void => {
          signal?.removeEventListener('abort', onAbort);
          done(value);
        };
      pending.resolve = settle(resolve);
      pending.reject = settle(reject);
      this.queue.push(pending);
      this.schedule();
    });
  }

  /** Items waiting or computing. */
  get pending(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.running) return;
    if (this.queue.length >= this.options.maxBatchSize) {
      this.flush();
    } else if (!this.timer) {
      // With no wait, still gather the items that arrive in the same turn of the event loop.
      this.timer = this.options.maxWaitMs === 0 ? setImmediate(() => this.flush()) : setTimeout(() => this.flush(), this.options.maxWaitMs);
    }
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
    }
    this.timer = undefined;
    // An aborted item still queued (a signal that fired without its event, e.g. a clock-based one) is dropped here.
    this.queue = this.queue.filter((pending) => {
      if (!pending.signal?.aborted) return true;
      pending.reject(new BatchItemAbortedError(pending.signal.reason));
      return false;
    });
    if (this.running || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.options.maxBatchSize);
    this.running = true;
    void this.run(batch).finally(() => {
      this.running = false;
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async run(batch: Pending<In, Out>[]): Promise<void> {
    this.options.onBatch?.(batch.length);
    try {
      const outputs = await this.runBatch(batch.map((pending) => pending.item));
      batch.forEach((pending, index) => pending.resolve(outputs[index]));
    } catch (error) {
      if (batch.length === 1) {
        batch[0].reject(error);
        return;
      }
      for (const pending of batch) {
        try {
          const [output] = await this.runBatch([pending.item]);
          pending.resolve(output);
        } catch (itemError) {
          pending.reject(itemError);
        }
      }
    }
  }
}
