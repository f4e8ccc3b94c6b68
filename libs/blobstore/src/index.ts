export { RedisBlobStore } from './redis-blob-store.adapter';
export { InMemoryBlobStore } from './in-memory-blob-store';
export { BlobTooLargeError, InvalidBlobError, InvalidSha256Error, sha256Hex } from './blob-store';
export type { BlobStore, BlobStoreOptions, PutBlobResult, StoredBlob } from './blob-store';
