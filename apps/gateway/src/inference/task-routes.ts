import type { Task } from '@rsmoe/contracts';

/** The task each inference route runs (the `task` label of the HTTP metrics). */
const TASK_OF_ROUTE: Readonly<Record<string, Task>> = {
  '/v1/captions': 'caption',
  '/v1/vqa': 'vqa',
  '/v1/classify': 'classification',
  '/v1/grounding': 'grounding',
  '/v1/referring': 'referring',
  '/v1/segmentation': 'segmentation',
  '/v1/changes': 'change',
};

/** The task of a route template; `none` for routes that run no task (health, docs, requests, unknown). */
export function taskOfRoute(route: string): Task | 'none' {
  return TASK_OF_ROUTE[route] ?? 'none';
}

/**
 * The task of a request's URL path, matched as Express routes it (any case, trailing slash, query string
 * ignored); undefined for paths that run none.
 */
export function taskOfPath(url: string | undefined): Task | undefined {
  const path = (url ?? '').split('?')[0]!.toLowerCase().replace(/\/+$/, '');
  return TASK_OF_ROUTE[path];
}

/** Inference routes whose task is read from the body (the OpenAI-compatible chat completions). */
const BODY_TASK_ROUTES: ReadonlySet<string> = new Set(['/v1/chat/completions']);

/**
 * Whether a request's URL path runs an inference whose task only the body says: its API key's tasks are
 * checked by the handler, but its image is charged to the daily quota before the body is read, as for the
 * task routes.
 */
export function runsTaskFromBody(url: string | undefined): boolean {
  return BODY_TASK_ROUTES.has((url ?? '').split('?')[0]!.toLowerCase().replace(/\/+$/, ''));
}
