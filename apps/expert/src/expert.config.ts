import { z } from 'zod';
import { env, parseEnv, sharedServiceEnv, type Env } from '@rsmoe/config';
import { ContractValidationError, parseDtypeSetting, type DtypeSetting } from '@rsmoe/contracts';

/** A dtype name (`fp16`) or per graph `vision_encoder=fp32,decoder_model_merged=q4f16`; unset: the pack's. */
const dtypeVariable = () =>
  z
    .string()
    .transform((text, ctx): DtypeSetting => {
      try {
        return parseDtypeSetting(text, 'MODEL_DTYPE');
      } catch (error) {
        if (!(error instanceof ContractValidationError)) throw error;
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: error.problems.join('; ') });
        return z.NEVER;
      }
    })
    .optional();

/** Every setting of an expert process, from its environment; defaults live here and only here. */
export function loadExpertConfig(source: Env) {
  return parseEnv(
    'expert',
    {
      ...sharedServiceEnv(),
      /** Which expert of the pack this process serves: picks its queue and its model. */
      EXPERT_ID: env.string('theme'),
      PACK_DIR: env.packDir(),
      /**
       * Jobs this process holds at once. Twice MAX_BATCH_SIZE: while one batch computes, the next one's jobs
       * are already picked up, so it starts full instead of with the first job that arrives.
       */
      CONCURRENCY: env.integer(16, 1, 1024),
      MAX_BATCH_SIZE: env.integer(8, 1, 256),
      /**
       * How long a job waits for companions before its batch runs, in ms. 0: run at once, and let the jobs
       * that arrive while a batch computes form the next batch (batching under load, no added latency idle).
       */
      MAX_BATCH_WAIT_MS: env.integer(0, 0, 1000),
      /** Lifetime of shared image features, in seconds. */
      FEATURE_CACHE_TTL_S: env.integer(600, 1),
      /** MiB of image features this process also keeps in memory, least recently used out first; 0: Redis only. */
      FEATURE_MEMORY_CACHE_MB: env.integer(64, 0, 65_536),
      /** Lifetime of image bytes in the blob store (refreshed on reads only by the gateway), in seconds. */
      BLOB_TTL_S: env.integer(900, 1),
      BLOB_MAX_BYTES: env.integer(32 * 1024 * 1024, 1),
      /** Most pixels (width × height, from the header) of an image the expert decodes. Default 64 000 000. */
      IMAGE_MAX_PIXELS: env.integer(64_000_000, 1),
      /** Longest side of an image the expert decodes, in pixels. Default 32 768. */
      IMAGE_MAX_SIDE: env.integer(32_768, 1),
      /**
       * MiB one image's decoding may allocate (source samples + 8-bit RGB), checked from the header before any
       * pixel is decoded, so decode time and memory stay bounded. Default 512.
       */
      IMAGE_MAX_DECODE_MB: env.integer(512, 1, 65_536),
      /**
       * How long a job's BullMQ lock lasts without renewal, in ms (renewed every half of it). A worker that dies
       * holds its jobs this long before they are redelivered. Default 30 000.
       */
      JOB_LOCK_MS: env.integer(30_000, 1_000, 600_000),
      EXECUTION_PROVIDER: env.oneOf(['cpu', 'cuda', 'auto'] as const, 'auto'),
      /**
       * Precision variant of the model's graphs, overriding the pack's `dtype` of this expert (`rsmoe start
       * --dtype`). Unset: the pack's, else fp32.
       */
      MODEL_DTYPE: dtypeVariable(),
      /** onnxruntime intra-op threads; 0 = all cores. */
      INTRA_OP_THREADS: env.integer(0, 0, 1024),
      /** How long a SIGTERM waits for in-flight jobs before exiting, in ms. */
      DRAIN_TIMEOUT_MS: env.integer(30_000, 0),
    },
    source,
  );
}

export type ExpertConfig = ReturnType<typeof loadExpertConfig>;
