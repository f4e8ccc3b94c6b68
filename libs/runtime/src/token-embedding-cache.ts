/**
 * Embedding rows of recently generated tokens. `embed_tokens` is a pure lookup, so a row computed once is
 * exact forever; with every token of a decoding step cached, the step needs one session run (the decoder)
 * instead of two. Least-recently-used rows go first once `capacity` rows are held.
 */
export class TokenEmbeddingCache {
  private readonly rows = new Map<number, Float32Array>();

  constructor(
    /** Rows kept at most; 0 disables the cache. */
    readonly capacity: number,
    readonly hiddenSize: number,
  ) {}

  /** The [tokens.length, hiddenSize] embeddings when every token is cached, else undefined. */
  lookup(tokens: readonly number[]): Float32Array | undefined {
    if (this.capacity === 0) return undefined;
    const out = new Float32Array(tokens.length * this.hiddenSize);
    for (let i = 0; i < tokens.length; i++) {
      const row = this.rows.get(tokens[i]);
      if (!row) return undefined;
      out.set(row, i * this.hiddenSize);
      // Re-insert to mark as recently used (Map keeps insertion order).
      this.rows.delete(tokens[i]);
      this.rows.set(tokens[i], row);
    }
    return out;
  }

  /** Remembers the rows of `embeddings` ([tokens.length, hiddenSize]) computed by the embed session. */
  store(tokens: readonly number[], embeddings: Float32Array): void {
    if (this.capacity === 0) return;
    for (let i = 0; i < tokens.length; i++) {
      if (this.rows.has(tokens[i])) continue;
      if (this.rows.size >= this.capacity) this.rows.delete(this.rows.keys().next().value as number);
      this.rows.set(tokens[i], embeddings.slice(i * this.hiddenSize, (i + 1) * this.hiddenSize));
    }
  }
}
