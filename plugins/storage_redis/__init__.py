"""storage_redis: Redis through redis.asyncio; other workers learn of changes by pub/sub."""
