import { z } from 'zod';

/**
 * The expert job schema of the last release before image lists and the envelope (git b35fba6,
 * libs/contracts/src/job-payloads.ts), frozen: what an expert of that release accepts. A rolling update
 * runs such experts next to a new router, so the new router's payloads must pass it. Do not edit.
 */
const imageRef = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  byteLength: z.number().int().positive(),
  mediaType: z.string().regex(/^[a-z]+\/[a-z0-9.+-]+$/i),
});

export const previousExpertJobDataSchema = z.object({
  requestId: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
  task: z.enum(['caption', 'vqa']),
  expertId: z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/),
  prompt: z.string().min(1),
  image: imageRef,
  generation: z.object({}).passthrough(),
  deadlineUnixMs: z.number().int().positive(),
  enqueuedAtUnixMs: z.number().int().positive(),
  replyTo: z.string().regex(/^[!-~]{1,256}$/),
});
