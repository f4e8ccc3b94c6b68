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
  resolve: (value: Out) => void;
  reject: (error: unknown) => void;
}

/**
 * Collects items submitted close together and hands them to `runBatch` as one array, up to `maxBatchSize`
 * or after `maxWaitMs`. One run at a time: while a batch computes, new items gather for the next one.
 * If a batch fails as a whole, its items are retried one by one so that one bad item fails alone.
 */
export class MicroBatcher<In, Out> {
  private queue: Pending<In, Out>[] = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private running = false;

  constructor(
    private readonly runBatch: (items: In[]) => Promise<Out[]>,
    private readonly options: MicroBatcherOptions,
  ) {}

  submit(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
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
