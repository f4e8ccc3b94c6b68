/** Redis (blob store or result store) could not be reached or failed: 503 storage_unavailable. */
export class StorageUnavailableError extends Error {
  override readonly name = 'StorageUnavailableError';
}
