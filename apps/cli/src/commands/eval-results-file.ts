import { appendFile, readFile } from 'node:fs/promises';

/**
 * Reads a results file (JSONL) into a map; `keyOf` gives a record's key, or undefined to drop it. The last
 * record of a key wins, so a retried failure replaces the old row. A missing file is an empty map.
 */
export async function readJsonLines<T>(file: string, keyOf: (record: T) => string | undefined): Promise<Map<string, T>> {
  const records = new Map<string, T>();
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return records;
    throw error;
  }
  for (const line of text.split('\n')) {
    if (line.trim().length === 0) continue;
    let record: T;
    try {
      record = JSON.parse(line) as T;
    } catch {
      // A line cut short by an interrupted run: that sample is simply run again.
      continue;
    }
    const key = typeof record === 'object' && record !== null ? keyOf(record) : undefined;
    if (key !== undefined) records.set(key, record);
  }
  return records;
}

/** Appends one JSON line per record; appends are serialised so that concurrent workers never interleave lines. */
export class JsonLinesAppender {
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly file: string) {}

  append(record: unknown): Promise<void> {
    this.chain = this.chain.then(() => appendFile(this.file, `${JSON.stringify(record)}\n`));
    return this.chain;
  }
}

/** Runs `work` over `items` with at most `concurrency` calls in flight, in item order. */
export async function forEachConcurrently<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
