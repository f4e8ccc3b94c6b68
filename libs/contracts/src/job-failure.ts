import { z } from 'zod';
import { EXPERT_ERROR_CODES, type ExpertErrorCode } from './tasks';

/**
 * Why an expert job failed for good, as its BullMQ failure reason (`failedReason`: reported to the router's
 * inbox, and what the aggregator reads back from the job): a JSON object `{"errorCode": ..., "message": ...}` written by
 * formatExpertJobFailure, so the code travels typed instead of being parsed back out of text.
 */
export interface ExpertJobFailure {
  /** Absent for a reason in plain text (experts before the code, or an error BullMQ wrote itself). */
  errorCode?: ExpertErrorCode;
  /** Human-readable detail. */
  message: string;
}

const failureSchema = z.object({ errorCode: z.enum(EXPERT_ERROR_CODES), message: z.string() });

/** The failure reason to throw (e.g. `new UnrecoverableError(formatExpertJobFailure(...))`). */
export function formatExpertJobFailure(failure: { errorCode: ExpertErrorCode; message: string }): string {
  return JSON.stringify({ errorCode: failure.errorCode, message: failure.message });
}

/** Reads a failure reason: one written by formatExpertJobFailure gives its code; any other text is the message alone. */
export function parseExpertJobFailure(reason: string): ExpertJobFailure {
  if (reason.startsWith('{')) {
    try {
      const parsed = failureSchema.safeParse(JSON.parse(reason));
      if (parsed.success) return parsed.data;
    } catch {
      // not JSON: plain text below
    }
  }
  return { message: reason };
}
