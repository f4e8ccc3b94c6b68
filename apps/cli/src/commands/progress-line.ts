/** Progress on stderr: a redrawn bar on a TTY, otherwise a plain line every 10 % (never on stdout). */
export class ProgressLine {
  private done = 0;
  private failed = 0;
  private lastDecile = -1;

  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly label = 'eval',
  ) {}

  tick(ok: boolean): void {
    this.done++;
    if (!ok) this.failed++;
    this.render();
  }

  start(skipped: number): void {
    this.stream.write(`${this.label}: ${this.total} to run${skipped > 0 ? `, ${skipped} already done (skipped)` : ''}\n`);
    this.render();
  }

  finish(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }

  private render(): void {
    const fraction = this.total === 0 ? 1 : this.done / this.total;
    const text = `${this.label} ${this.done}/${this.total} (${Math.round(fraction * 100)}%)${this.failed > 0 ? `, ${this.failed} failed` : ''}`;
    if (this.stream.isTTY) {
      const width = 30;
      const filled = Math.round(fraction * width);
      this.stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`);
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile !== this.lastDecile) {
      this.lastDecile = decile;
      this.stream.write(`${text}\n`);
    }
  }
}
