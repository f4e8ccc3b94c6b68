import { describe, expect, it } from 'vitest';
import {
  AGGREGATE_QUEUE,
  aggregateJobId,
  ASPECT_ORDER,
  ASPECTS,
  createRedisKeys,
  expertIdOfQueue,
  expertJobId,
  expertQueueName,
  isExpertId,
  isRequestId,
  isSha256Hex,
  JOB_NAMES,
  QUEUE_NAMES,
} from './index';

// BullMQ 6 refuses custom job ids that parse as integers or contain ':' (unless split in exactly 3 parts).
function bullmqAcceptsJobId(id: string): boolean {
  if (`${parseInt(id, 10)}` === id) return false;
  return !id.includes(':') || id.split(':').length === 3;
}

describe('queue names and job ids', () => {
  it('names the aggregate queue and one queue per expert', () => {
    expect(AGGREGATE_QUEUE).toBe('aggregate');
    expect(QUEUE_NAMES.aggregate).toBe('aggregate');
    expect(expertQueueName('theme')).toBe('expert.theme');
    expect(QUEUE_NAMES.expert('object')).toBe('expert.object');
    expect(expertIdOfQueue('expert.relation')).toBe('relation');
    expect(expertIdOfQueue('aggregate')).toBeUndefined();
    expect(JOB_NAMES).toMatchObject({ expertGenerate: 'generate', aggregate: 'fuse' });
    expect(new Set(Object.values(JOB_NAMES)).size).toBe(Object.keys(JOB_NAMES).length);
  });

  it('derives deterministic job ids that BullMQ accepts, even for numeric request ids', () => {
    expect(expertJobId('req-1', 'theme')).toBe('req-1.theme');
    expect(aggregateJobId('req-1')).toBe('req-1.aggregate');
    for (const requestId of ['123', '0b5f6c1e-2d4b-4f8e-9c1d-3a2b1c0d9e8f', 'A_b-9']) {
      expect(bullmqAcceptsJobId(expertJobId(requestId, 'theme'))).toBe(true);
      expect(bullmqAcceptsJobId(aggregateJobId(requestId))).toBe(true);
    }
  });

  it('names the demo aspects in caption order', () => {
    expect(ASPECTS).toEqual({ THEME: 'theme', OBJECT: 'object', RELATION: 'relation' });
    expect(ASPECT_ORDER).toEqual(['theme', 'object', 'relation']);
  });

  it('validates ids and digests', () => {
    expect(isExpertId('theme')).toBe(true);
    expect(isExpertId('Theme')).toBe(false);
    expect(isExpertId('a.b')).toBe(false);
    expect(isExpertId('a:b')).toBe(false);
    expect(isRequestId('0b5f6c1e-2d4b-4f8e-9c1d-3a2b1c0d9e8f')).toBe(true);
    expect(isRequestId('a.b')).toBe(false);
    expect(isRequestId('a:b')).toBe(false);
    expect(isRequestId('')).toBe(false);
    expect(isRequestId('x'.repeat(129))).toBe(false);
    expect(isSha256Hex('0'.repeat(64))).toBe(true);
    expect(isSha256Hex('A'.repeat(64))).toBe(false);
    expect(isSha256Hex('0'.repeat(63))).toBe(false);
  });
});

describe('Redis keys', () => {
  it('puts every key and channel under the prefix', () => {
    const keys = createRedisKeys('t1');
    expect(keys.resultKey('r')).toBe('t1:result:r');
    expect(keys.routerInbox('r')).toBe('t1:inbox:r');
    expect(keys.featureCacheKey('abc', 'e'.repeat(64), 'anyres')).toBe(`t1:features:${'e'.repeat(64)}:anyres:abc`);
    expect(keys.featureCacheKey('abc', 'enc', 'anyres')).not.toBe(keys.featureCacheKey('abc', 'enc', 'single-crop'));
    expect(keys.blobKey('abc')).toBe('t1:blob:abc');
    expect(createRedisKeys().resultKey('r')).toBe('rsmoe:result:r');
  });

  it('keeps the kinds apart for the same id', () => {
    const keys = createRedisKeys('p');
    const all = [keys.resultKey('x'), keys.routerInbox('x'), keys.featureCacheKey('x', 'e', 'single-crop'), keys.blobKey('x')];
    expect(new Set(all).size).toBe(all.length);
  });

  it('rejects an empty or spaced prefix', () => {
    expect(() => createRedisKeys('')).toThrow(/prefix/);
    expect(() => createRedisKeys('a b')).toThrow(/prefix/);
  });
});
