/**
 * The one deadline of a request, computed once by the router and carried in every job: two instants named
 * apart, both Unix epoch milliseconds.
 */
export interface Deadline {
  /** The client's budget: after this instant nobody is waiting for the answer. */
  deadlineUnixMs: number;
  /**
   * The fuse point (≤ deadlineUnixMs): experts are waited for until here, the rest of the budget is for
   * fusing and answering. An expert job still unstarted at this instant is dropped.
   */
  fuseAtUnixMs: number;
}

/** How the router turns a request's deadline into a Deadline (the router's config; defaults there). */
export interface DeadlinePolicy {
  /** Budget of a request that names no deadline, in ms. */
  defaultMs: number;
  /** Longest budget a request may ask for, in ms. */
  maxMs: number;
  /** Fraction of the budget kept for fusing (e.g. 0.1). */
  reserveFraction: number;
  /** Bounds of that reserve, in ms. */
  reserveMinMs: number;
  reserveMaxMs: number;
}

/**
 * The Deadline of a request received at `receivedAtUnixMs` asking for `requestedUnixMs` (0 or absent: the
 * default budget; later than the maximum budget: clamped). A requested instant already past is returned
 * as is (the caller refuses it); the fuse point never precedes the receipt.
 */
export function computeDeadline(receivedAtUnixMs: number, requestedUnixMs: number | undefined, policy: DeadlinePolicy): Deadline {
  const deadlineUnixMs = !requestedUnixMs ? receivedAtUnixMs + policy.defaultMs : Math.min(requestedUnixMs, receivedAtUnixMs + policy.maxMs);
  const budget = deadlineUnixMs - receivedAtUnixMs;
  const reserve = Math.min(policy.reserveMaxMs, Math.max(policy.reserveMinMs, budget * policy.reserveFraction));
  return { deadlineUnixMs, fuseAtUnixMs: Math.max(receivedAtUnixMs, Math.round(deadlineUnixMs - reserve)) };
}

/**
 * The Deadline a job payload carries. Payloads of routers before the split have only `deadlineUnixMs`, and
 * it was the fuse point: then both instants are that one.
 */
export function deadlineOf(payload: { deadlineUnixMs: number; fuseAtUnixMs?: number }): Deadline {
  return { deadlineUnixMs: payload.deadlineUnixMs, fuseAtUnixMs: payload.fuseAtUnixMs ?? payload.deadlineUnixMs };
}

/** Milliseconds left until `instantUnixMs` (never negative). */
export function remainingMs(instantUnixMs: number, nowUnixMs: number): number {
  return Math.max(0, instantUnixMs - nowUnixMs);
}
