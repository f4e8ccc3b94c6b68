import type { Logger } from './logger';

/**
 * Runs a service's start-up; a failure is logged as one JSON line (never a stack trace on the console)
 * and the process exits with status 1.
 */
export function runService(service: string, start: () => Promise<void>): void {
  start().catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'error', msg: 'start-up failed', service, error: message })}\n`);
    process.exit(1);
  });
}

/**
 * On SIGTERM or SIGINT (once): stop taking work and wait for in-flight work (`drain`), bounded by
 * `timeoutMs`, then release resources (`release`) and exit with status 0.
 */
export function drainOnSignals(options: {
  logger: Logger;
  timeoutMs: number;
  drain: () => Promise<void>;
  release: () => Promise<void> | void;
}): void {
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    options.logger.info('draining', { signal });
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.timeoutMs).unref());
    await Promise.race([options.drain(), timeout]);
    await options.release();
    options.logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
