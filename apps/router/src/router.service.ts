import {
  IMAGES_PER_REQUEST_LIMIT,
  REFUSAL_REASONS,
  computeDeadline,
  expertQueueName,
  isLongTask,
  isCorrelationId,
  isRequestId,
  isSha256Hex,
  type AggregateJobData,
  type Deadline,
  type DeadlinePolicy,
  type ExpertJobData,
  type ExpertOutputJson,
  type GenerationParams,
  type ChangeOutput,
  type ImageRefJson,
  type InferenceResultJson,
  type PercentBoxJson,
  type PackManifest,
  type RefusalReason,
  type RequestPriority,
  type Task,
} from '@rsmoe/contracts';
import { buildResult, type ChildOutcomes } from '@rsmoe/results';
import { InstructionRouter, InvalidRoutingRequestError, NoExpertForTaskError, type RoutingDecision } from '@rsmoe/routing';
import type { AdmissionDecision } from './expert-capacity.service';
import { CompletionTimeoutError } from './router-inbox.adapter';

/** Why a request cannot be served; the gRPC edge maps each kind to one status code. */
export class RouterRequestError extends Error {
  override readonly name = 'RouterRequestError';
  constructor(
    readonly kind: 'invalid_argument' | 'not_found' | 'deadline_exceeded' | 'failed_precondition' | 'unavailable' | 'resource_exhausted' | 'cancelled',
    message: string,
    /** For `resource_exhausted`: when a retry may succeed, in ms (sent as trailing metadata `retry-after-ms`). */
    readonly retryAfterMs?: number,
    /** Which refusal of its kind this is (sent as trailing metadata `reason`), so clients need not parse the message. */
    readonly reason?: RefusalReason,
  ) {
    super(message);
  }
}

export interface InferenceRequest {
  requestId: string;
  task: Task;
  /** The images, in prompt order: at least one, at most `limits.maxImages`. */
  images: ImageRefJson[];
  question?: string;
  params: GenerationParams;
  /** Absolute deadline (Unix ms); 0 or absent means the default budget. */
  deadlineUnixMs?: number;
  /** The client's own id (CORRELATION_ID_PATTERN), echoed in the result; never a key. */
  correlationId?: string;
  /** W3C trace context from the gRPC metadata, carried in every job. */
  traceparent?: string;
  /** Grounding and segmentation: the phrase. */
  query?: string;
  /** Referring: the region, in percent of the image. */
  box?: PercentBoxJson;
  /** Segmentation: the class names to segment. */
  classes?: string[];
  /** Change: which outputs (default both). */
  changeOutput?: ChangeOutput;
  /** `bulk` (a scene's tiles, gRPC metadata `x-rsmoe-priority`): low BullMQ priority, its own admission budget. Default interactive. */
  priority?: RequestPriority;
}

/** How a task's experts are combined: RS-MoE's caption and answer fusion, or one expert per output. */
const TASK_OUTPUT_FUSION = 'task-output';

/** Images each task takes: a change compares exactly two. */
function imageCountProblem(task: Task, count: number): string | undefined {
  if (task === 'change' && count !== 2) return `images: a change request compares exactly two images (before, after); got ${count}`;
  return undefined;
}

export interface RouterServiceDeps {
  manifest: PackManifest;
  router: InstructionRouter;
  dispatcher: {
    /** Adds one job per dispatched expert (each carries the request's envelope and `replyTo`); bulk jobs at low priority. */
    dispatch(jobs: readonly ExpertJobData[], options?: { priority?: RequestPriority }): Promise<void>;
    /** Has the aggregator finalize the request at its fuse point, whoever is still missing. */
    armDeadline(parent: AggregateJobData): Promise<void>;
    /**
     * Withdraws a cancelled request: its expert jobs not yet picked up and its deadline job (JobDispatcher
     * removes them from their queues). Resolves with the number of jobs a worker held, left to run.
     */
    withdraw(requestId: string, expertIds: readonly string[]): Promise<number>;
  };
  /** This router's inbox (RouterInbox in production): where its jobs' reports and results arrive. */
  completions: {
    /** The inbox channel, sent in every job as `replyTo`. */
    readonly channel: string;
    listen(requestId: string, timeoutMs: number, onReport?: (report: ExpertReport) => void): { result: Promise<InferenceResultJson>; cancel: () => void };
  };
  images: { has(sha256: string): Promise<boolean>; get(sha256: string): Promise<{ bytes: Uint8Array } | undefined> };
  /**
   * Stored results: read for idempotency, written (write-once, like the aggregator's) when the router
   * fuses. A lost write race means the aggregator stored first; its result arrives on the inbox.
   */
  results: { get(requestId: string): Promise<InferenceResultJson | undefined>; store(result: InferenceResultJson): Promise<boolean> };
  /** Told every result this router fused and stored (for the fused-results metric). */
  onFused?: (result: InferenceResultJson) => void;
  /** Most images one request may carry (MAX_IMAGES_PER_REQUEST); at most IMAGES_PER_REQUEST_LIMIT. */
  maxImages: number;
  deadlines: DeadlinePolicy & {
    /**
     * How long a request may stay open before the aggregator's deadline job is armed, in ms. Most requests
     * are answered sooner and never need one. Budgets shorter than this get theirs at dispatch.
     */
    deadlineJobGraceMs: number;
    /** Default and longest budgets of LONG_TASKS (segmentation, change); absent: the ones above. */
    longTask?: { defaultMs: number; maxMs: number };
  };
  /** Told when arming a deadline job failed (a missing expert then holds the request until its deadline). */
  onArmFailed?: (requestId: string, error: unknown) => void;
  /** Told when a cancelled request was withdrawn (jobs removed), or withdrawing it failed. */
  onWithdrawn?: (requestId: string, outcome: { runningJobs: number } | { error: unknown }) => void;
  /**
   * Which routed experts have live workers and room in their queues (ExpertCapacityService in production:
   * a cached background poll, never a Redis call per request). Absent: every expert counts as live.
   */
  capacity?: { admit(expertIds: readonly string[], request: { remainingMs: number; priority?: RequestPriority }): AdmissionDecision };
  /** Told every routing decision (for the experts-chosen metrics). */
  onRouted?: (task: Task, expertIds: readonly string[]) => void;
  now?: () => number;
}

/**
 * The router's core: validate, route (which experts, which prompts, why), dispatch one job per expert and
 * fuse their pushed reports, or take the aggregator's result when the fuse point came first. Plain
 * TypeScript: the gRPC handlers and the adapters are its only edges.
 */
export class RouterService {
  private readonly now: () => number;

  constructor(private readonly deps: RouterServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  get manifest(): PackManifest {
    return this.deps.manifest;
  }

  /**
   * Serves one request. `signal` is the caller's: once it fires (the gRPC call was cancelled, or its deadline
   * passed) nothing more is dispatched, nobody waits for the result any more, and the request is withdrawn:
   * its jobs no worker has picked up and its deadline job are removed before the promise rejects, so a
   * cancelled request leaves no queued work and no result is stored for it.
   */
  async infer(request: InferenceRequest, onPartial?: (output: ExpertOutputJson) => void, signal?: AbortSignal): Promise<InferenceResultJson> {
    const receivedAt = this.now();
    if (!isRequestId(request.requestId)) throw new RouterRequestError('invalid_argument', 'request_id must be 1-128 of [A-Za-z0-9_-]');
    if (request.correlationId !== undefined && !isCorrelationId(request.correlationId)) {
      throw new RouterRequestError('invalid_argument', 'correlation_id must be 1-128 printable characters without spaces');
    }
    this.checkImages(request.images);
    const countProblem = imageCountProblem(request.task, request.images.length);
    if (countProblem) throw new RouterRequestError('invalid_argument', countProblem);
    const deadline = this.deadline(request.deadlineUnixMs, receivedAt, request.task);
    // Idempotent: the same request id answered before gets its stored result.
    // With a router model the image itself is needed (its scene fills {scene}); otherwise only its presence.
    // One scene hint cannot describe several images: a several-image prompt gets none (the question type
    // is still the model's).
    const { router, images } = this.deps;
    const sceneImage = router.hasModel && request.images.length === 1 ? request.images[0].sha256 : undefined;
    const [previous, present] = await Promise.all([
      this.deps.results.get(request.requestId),
      Promise.all(
        request.images.map((ref) =>
          ref.sha256 === sceneImage ? images.get(ref.sha256).then((blob) => blob?.bytes) : images.has(ref.sha256),
        ),
      ),
    ]);
    if (previous) return previous;
    const missing = request.images.filter((_, index) => !present[index]).map((ref) => ref.sha256);
    if (missing.length > 0) {
      throw new RouterRequestError(
        'not_found',
        `image${missing.length > 1 ? 's' : ''} ${[...new Set(missing)].join(', ')} ${missing.length > 1 ? 'are' : 'is'} not in the blob store (expired or never stored)`,
        undefined,
        REFUSAL_REASONS.imageMissing,
      );
    }
    const sceneBytes = present.find((entry): entry is Uint8Array => entry instanceof Uint8Array);
    let decision;
    try {
      const routing = {
        task: request.task,
        question: request.question,
        query: request.query,
        box: request.box,
        classes: request.classes,
        changeOutput: request.changeOutput,
      };
      decision = router.hasModel ? await router.routeWithModel(routing, sceneBytes) : router.route(routing);
    } catch (error) {
      if (error instanceof InvalidRoutingRequestError) throw new RouterRequestError('invalid_argument', error.message);
      if (error instanceof NoExpertForTaskError) throw new RouterRequestError('failed_precondition', error.message, undefined, REFUSAL_REASONS.taskNotSupported);
      throw error;
    }
    const routedIds = decision.experts.map((assignment) => assignment.expertId);
    this.deps.onRouted?.(request.task, routedIds);
    const admitted = this.admit(routedIds, deadline, request.task, request.priority);
    try {
      return await this.serveAdmitted(request, decision, deadline, receivedAt, admitted, onPartial, signal);
    } finally {
      admitted.release?.();
    }
  }

  /** Dispatches an admitted request's expert jobs and waits for its fused result (or its withdrawal). */
  private async serveAdmitted(
    request: InferenceRequest,
    decision: RoutingDecision,
    deadline: Deadline,
    receivedAt: number,
    { live, unavailable }: { live: string[]; unavailable: string[] },
    onPartial: ((output: ExpertOutputJson) => void) | undefined,
    signal: AbortSignal | undefined,
  ): Promise<InferenceResultJson> {
    const { manifest } = this.deps;
    const envelope = {
      ...(request.correlationId !== undefined ? { correlationId: request.correlationId } : {}),
      ...(request.traceparent !== undefined ? { traceparent: request.traceparent } : {}),
      deadlineUnixMs: deadline.deadlineUnixMs,
      fuseAtUnixMs: deadline.fuseAtUnixMs,
    };
    // What fusing needs; the aggregator's deadline job carries it too.
    const parent: AggregateJobData = {
      requestId: request.requestId,
      ...envelope,
      task: request.task,
      ...(decision.question !== undefined ? { question: decision.question } : {}),
      ...(decision.questionType !== undefined ? { questionType: decision.questionType } : {}),
      routed: decision.experts,
      ...(unavailable.length > 0 ? { unavailableExperts: unavailable } : {}),
      ...decision.inputs,
      receivedAtUnixMs: receivedAt,
      pack: { name: manifest.name, version: manifest.version },
      fusionStrategy: request.task === 'caption' ? manifest.fusion.caption : request.task === 'vqa' ? manifest.fusion.vqa : TASK_OUTPUT_FUSION,
      replyTo: this.deps.completions.channel,
    };
    const enqueuedAt = this.now();
    // Experts with no live worker get no job: the result lists them as unavailable at once.
    const children: ExpertJobData[] = decision.experts
      .filter((assignment) => live.includes(assignment.expertId))
      .map((assignment) => {
        const expert = manifest.experts.find((candidate) => candidate.id === assignment.expertId);
        return {
          requestId: request.requestId,
          ...envelope,
          task: request.task,
          expertId: assignment.expertId,
          prompt: assignment.prompt,
          images: request.images,
          // Read by experts from before image lists (a rolling update); they can serve a lone image only.
          ...(request.images.length === 1 ? { image: request.images[0] } : {}),
          generation: { ...expert?.generation, ...request.params },
          // A classification's expert also scores each label as the whole answer.
          ...(assignment.task === 'classification' && decision.inputs?.labels?.length ? { candidates: decision.inputs.labels } : {}),
          enqueuedAtUnixMs: enqueuedAt,
          replyTo: this.deps.completions.channel,
        };
      });
    const collector = new ReportCollector(parent, children.map((child) => child.expertId), this.now);
    const onReport = (report: ExpertReport): void => {
      if (report.kind === 'partial') onPartial?.(report.output);
      collector.offer(report);
    };
    // Waiting starts before dispatching: a report may arrive before the dispatch call returns.
    if (signal?.aborted) throw cancelled();
    const { result, cancel } = this.deps.completions.listen(request.requestId, Math.max(1, deadline.deadlineUnixMs - this.now()), onReport);
    try {
      await this.deps.dispatcher.dispatch(children, request.priority === 'bulk' ? { priority: 'bulk' } : undefined);
    } catch (error) {
      cancel();
      throw error;
    }
    const fused = collector.complete.then((complete) => this.storeFused(complete));
    const deadlineJob = this.armDeadlineLater(parent);
    // The caller going away ends the wait and withdraws the jobs not yet picked up.
    let onAbort: () => void = () => undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(cancelled());
      // Aborted while dispatching: the event has fired already.
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    let outcome: InferenceResultJson;
    try {
      const first = await Promise.race([
        result.then((value) => ({ value, fusedHere: false })),
        // Never settles when another writer stored first: that result arrives on `result`.
        fused.then((value) => ({ value, fusedHere: true })),
        ...(signal ? [aborted] : []),
      ]);
      outcome = first.value;
      if (first.fusedHere) cancel();
    } catch (error) {
      cancel();
      if (error instanceof CompletionTimeoutError) throw new RouterRequestError('deadline_exceeded', error.message);
      if (signal?.aborted) {
        deadlineJob.disarm();
        await this.withdraw(request.requestId, children.map((child) => child.expertId), deadlineJob.arming);
      }
      throw error;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      deadlineJob.disarm();
    }
    // When every expert that ran refused the image itself, the request is bad input, not a degraded answer.
    const ran = outcome.experts.filter((expert) => expert.errorCode !== 'expert_unavailable');
    if (ran.length > 0 && ran.every((expert) => expert.errorCode === 'invalid_image')) {
      throw new RouterRequestError('invalid_argument', `the image cannot be used: ${ran[0].error ?? 'invalid image'}`);
    }
    if (ran.length > 0 && ran.every((expert) => expert.errorCode === 'image_missing')) {
      throw new RouterRequestError('not_found', `the image is no longer in the blob store: ${ran[0].error ?? 'image missing'}`, undefined, REFUSAL_REASONS.imageMissing);
    }
    return outcome;
  }

  /**
   * Stores the result the router fused; resolves with it only when this store was the first (a lost race
   * or a failed write leaves the answer to the aggregator's deadline job, whose result is published to us).
   * Counted here: our own inbox may deliver a result before this resolves.
   */
  private storeFused(result: InferenceResultJson): Promise<InferenceResultJson> {
    return this.deps.results.store(result).then(
      (stored) => {
        if (!stored) return new Promise<never>(() => undefined);
        this.deps.onFused?.(result);
        return result;
      },
      () => new Promise<never>(() => undefined),
    );
  }

  /**
   * Admission, before anything is stored or queued: experts with no live worker are routed around; none
   * alive is UNAVAILABLE naming them; a queue over its limit, or too slow for the budget, refuses the request.
   */
  private admit(expertIds: string[], deadline: Deadline, task: Task, priority?: RequestPriority): { live: string[]; unavailable: string[]; release?: () => void } {
    const remainingMs = deadline.fuseAtUnixMs - this.now();
    const decision = this.deps.capacity?.admit(expertIds, priority === 'bulk' ? { remainingMs, priority } : { remainingMs }) ?? { kind: 'admit', live: expertIds, unavailable: [] };
    switch (decision.kind) {
      case 'admit':
        return decision;
      case 'unavailable':
        throw new RouterRequestError(
          'unavailable',
          `no live worker for ${task} expert${decision.down.length > 1 ? 's' : ''} ${decision.down.join(', ')} (queue${decision.down.length > 1 ? 's' : ''} ${decision.down.map(expertQueueName).join(', ')})`,
          undefined,
          REFUSAL_REASONS.expertsUnavailable,
        );
      case 'overloaded':
        throw new RouterRequestError('resource_exhausted', decision.message, decision.retryAfterMs);
    }
  }

  /**
   * Arms the aggregator's deadline job once the request has been open for the grace period (at once when
   * its experts' deadline comes sooner). Returns the cancel for a request answered before that, and the
   * arming under way (a withdrawal waits for it, so it removes the job it added). A router that dies within
   * the grace period leaves a request with a missing expert unstored; its caller already got an error from
   * the dead router.
   */
  private armDeadlineLater(parent: AggregateJobData): { disarm: () => void; readonly arming: Promise<void> | undefined } {
    let arming: Promise<void> | undefined;
    const arm = (): void => {
      arming = this.deps.dispatcher.armDeadline(parent).catch((error: unknown) => this.deps.onArmFailed?.(parent.requestId, error));
    };
    const grace = this.deps.deadlines.deadlineJobGraceMs;
    if ((parent.fuseAtUnixMs ?? parent.deadlineUnixMs) - this.now() <= grace) {
      arm();
      return { disarm: () => undefined, arming };
    }
    const timer = setTimeout(arm, grace);
    return {
      disarm: () => clearTimeout(timer),
      get arming() {
        return arming;
      },
    };
  }

  /** Removes a cancelled request's jobs not yet picked up and its deadline job; never throws (it is told). */
  private async withdraw(requestId: string, expertIds: string[], arming: Promise<void> | undefined): Promise<void> {
    try {
      await arming;
      const runningJobs = await this.deps.dispatcher.withdraw(requestId, expertIds);
      this.deps.onWithdrawn?.(requestId, { runningJobs });
    } catch (error) {
      this.deps.onWithdrawn?.(requestId, { error });
    }
  }

  private checkImages(images: readonly ImageRefJson[]): void {
    const limit = Math.min(this.deps.maxImages, IMAGES_PER_REQUEST_LIMIT);
    if (images.length === 0) throw new RouterRequestError('invalid_argument', 'images: at least one image is required');
    if (images.length > limit) throw new RouterRequestError('invalid_argument', `images: ${images.length} images; at most ${limit} per request`);
    const bad = images.flatMap((ref, index) => (isSha256Hex(ref.sha256) ? [] : [`images[${index}].sha256`]));
    if (bad.length > 0) throw new RouterRequestError('invalid_argument', `${bad.join(', ')}: must be 64 lower-case hex characters`);
  }

  /** The request's one Deadline, computed here and nowhere else (every job carries it). */
  private deadline(requested: number | undefined, now: number, task: Task): Deadline {
    if (requested && requested <= now) throw new RouterRequestError('deadline_exceeded', `the deadline passed ${now - requested} ms before the router got the request`);
    const { longTask, ...policy } = this.deps.deadlines;
    return computeDeadline(now, requested, isLongTask(task) && longTask ? { ...policy, ...longTask } : policy);
  }
}

function cancelled(): RouterRequestError {
  return new RouterRequestError('cancelled', 'the caller cancelled the request');
}

/** What an expert reports to the router's inbox about its job: its output, or the job's final failure. */
export type ExpertReport = { kind: 'partial'; output: ExpertOutputJson } | { kind: 'failure'; expertId: string; reason: string };

/**
 * Collects one request's reports and, once every dispatched expert has reported (an output of any status,
 * or a final failure), builds the result with the same buildResult as the aggregator (experts routed
 * around are listed as unavailable). `complete` never settles for a request some expert never reports on:
 * the aggregator's deadline job fuses that one.
 */
class ReportCollector {
  private readonly outcomes: ChildOutcomes = { outputs: new Map(), failures: new Map() };
  private resolveComplete: (result: InferenceResultJson) => void = () => undefined;
  readonly complete = new Promise<InferenceResultJson>((resolve) => (this.resolveComplete = resolve));

  constructor(
    private readonly parent: AggregateJobData,
    private readonly dispatched: readonly string[],
    private readonly now: () => number,
  ) {
    if (dispatched.length === 0) this.finish();
  }

  offer(report: ExpertReport): void {
    const expertId = report.kind === 'partial' ? report.output.expertId : report.expertId;
    if (!this.dispatched.includes(expertId)) return;
    if (report.kind === 'partial') this.outcomes.outputs.set(expertId, report.output);
    else this.outcomes.failures.set(expertId, report.reason);
    if (this.dispatched.every((id) => this.outcomes.outputs.has(id) || this.outcomes.failures.has(id))) this.finish();
  }

  private finish(): void {
    this.resolveComplete(buildResult(this.parent, this.outcomes, this.now()));
  }
}
