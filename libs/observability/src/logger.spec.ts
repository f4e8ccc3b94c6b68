import { describe, expect, it } from 'vitest';
import { createLogger } from './logger';

describe('createLogger', () => {
  it('writes one JSON line per entry with service, child fields and errors by message', () => {
    const lines: string[] = [];
    const logger = createLogger('expert', { level: 'info', write: (line) => lines.push(line) });
    logger.debug('hidden');
    logger.child({ requestId: 'r1' }).warn('slow', { ms: 12, cause: new Error('boom') });
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]);
    expect(entry).toMatchObject({ level: 'warn', msg: 'slow', service: 'expert', requestId: 'r1', ms: 12, cause: { message: 'boom' } });
  });
});
