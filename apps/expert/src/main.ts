import { drainOnSignals, runService } from '@rsmoe/observability';
import { createExpertApp } from './expert.app';
import { loadExpertConfig } from './expert.config';

async function main(): Promise<void> {
  const config = loadExpertConfig(process.env);
  const app = await createExpertApp(config);
  drainOnSignals({
    logger: app.logger,
    timeoutMs: config.DRAIN_TIMEOUT_MS,
    // close() stops fetching and waits for active jobs; jobs not yet started stay in the queue.
    drain: () => app.drain(),
    release: () => app.release(),
  });
}

runService('expert', main);
