"""Storage backends for table partitions: RocksDB (default) and in-memory."""

from pygoka.storage.base import Storage, StorageBuilder, Update
from pygoka.storage.memory import MemoryStorage, MemoryStorageBuilder
from pygoka.storage.rocksdb import RocksDBStorage, RocksDBStorageBuilder

__all__ = [
    "MemoryStorage",
    "MemoryStorageBuilder",
    "RocksDBStorage",
    "RocksDBStorageBuilder",
    "Storage",
    "StorageBuilder",
    "Update",
]
