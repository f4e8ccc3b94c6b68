/** The request cannot be routed as given (e.g. a vqa request with an empty question): a permanent input error. */
export class InvalidRoutingRequestError extends Error {
  override readonly name = 'InvalidRoutingRequestError';
}

/** The pack has no expert for the task (no expert has a prompt for it): a configuration error. */
export class NoExpertForTaskError extends Error {
  override readonly name = 'NoExpertForTaskError';
  constructor(
    message: string,
    /** The tasks the pack does serve (request tasks), for the client's error. */
    readonly servedTasks: readonly string[] = [],
  ) {
    super(message);
  }
}
