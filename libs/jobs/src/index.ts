export {
  JobHandlerMismatchError,
  PermanentJobFailure,
  checkJobHandlers,
  createJobProcessor,
  startTypedWorker,
  type JobContext,
  type JobHandlers,
  type JobProcessorOptions,
  type TypedWorker,
  type TypedWorkerOptions,
} from './typed-worker';
