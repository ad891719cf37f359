"""RocksDB storage (rocksdict): one database per table partition, offset in the same write batch."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch, WriteBufferManager

from pygoka.errors import StorageError
from pygoka.storage.base import Storage, Update

log = logging.getLogger("pygoka.storage")

_META = "pygoka-meta"
_OFFSET_KEY = b"table-offset"
_OFFSET = struct.Struct(">q")


class RocksDBStorage:
    """RocksDBStorage stores a partition's data in the default column family and its offset in another.

    Keeping the offset in a separate column family means no user key can collide with it and
    iteration never sees it, while one WriteBatch still covers both (B30).
    """

    def __init__(self, path: Path, options: Options) -> None:
        self.path = path
        self._options = options
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._owner = _lock_owner(path)
        except OSError as exc:
            # An unusable state directory is a storage failure (exit code 4 of `pygoka run`), not a crash.
            raise StorageError(f"cannot create RocksDB storage at {path}: {exc}") from exc
        try:
            self._db = _open_or_rebuild(path, options)
        except BaseException:
            os.close(self._owner)
            raise
        self._meta = self._db.get_column_family_handle(_META)
        self._meta_view = self._db.get_column_family(_META)
        self._closed = False
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def has(self, key: bytes) -> bool:
        return self._db.get(key) is not None

    def write(self, updates: Iterable[Update], offset: int | None) -> None:
        self._check_open()
        batch = WriteBatch(raw_mode=True)
        for key, value in updates:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        if offset is not None:
            batch.set_default_column_family(self._meta)
            batch.put(_OFFSET_KEY, _OFFSET.pack(offset))
        with self._lock:
            self._check_open()
            self._db.write(batch)

    def offset(self) -> int | None:
        raw = self._meta_view.get(_OFFSET_KEY)
        if raw is None:
            return None
        offset: int = _OFFSET.unpack(raw)[0]
        return offset

    def size_estimate(self) -> int:
        """size_estimate is RocksDB's estimate of the number of keys, for monitoring (0 once closed)."""
        if self._closed:
            return 0
        estimate: int | None = self._db.property_int_value("rocksdb.estimate-num-keys")
        return estimate or 0

    def iterate(self, start: bytes | None = None, end: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        items: Any = self._db.items(from_key=start) if start is not None else self._db.items()
        for key, value in items:
            if end is not None and key >= end:
                break
            yield key, value

    def clear(self) -> None:
        with self._lock:
            self._check_open()
            # The lock file stays held: the store remains ours, emptied and open, as MemoryStorage does.
            self._meta_view.close()
            self._db.close()
            del self._meta  # the column family handle keeps the database's files locked
            Rdict.destroy(str(self.path), _raw_options())
            self._db = Rdict(str(self.path), self._options, column_families={_META: _raw_options()})
            self._meta = self._db.get_column_family_handle(_META)
            self._meta_view = self._db.get_column_family(_META)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._close_db()

    def _close_db(self) -> None:
        self._meta_view.close()
        self._db.close()
        del self._meta
        self._closed = True
        os.close(self._owner)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"RocksDB storage at {self.path} is closed")


def _lock_owner(path: Path) -> int:
    """_lock_owner takes an exclusive lock beside the database, so that a failure to open it can only
    mean the files are damaged, never that another process or storage has it open."""
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise StorageError(f"RocksDB storage at {path} is in use by another storage or process") from exc
    return fd


def _open_or_rebuild(path: Path, options: Options) -> Rdict:
    try:
        return Rdict(str(path), options, column_families={_META: _raw_options()})
    except Exception as exc:  # noqa: BLE001 - rocksdict raises plain Exception for damaged stores
        # We hold the lock, so the files are damaged. The table topic is the source of truth:
        # start empty and let recovery rebuild the partition from it.
        log.warning("RocksDB storage at %s cannot be opened (%s); rebuilding it from the table topic", path, exc)
        shutil.rmtree(path, ignore_errors=True)
        try:
            return Rdict(str(path), options, column_families={_META: _raw_options()})
        except Exception as again:
            raise StorageError(f"cannot open RocksDB storage at {path}: {again}") from again


def _raw_options() -> Options:
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    return options


class RocksDBStorageBuilder:
    """RocksDBStorageBuilder opens '<state_dir>/<topic>/<partition>' with a block cache and memtable
    budget shared by every partition it opens, so memory stays bounded however many partitions a
    process holds."""

    def __init__(self, state_dir: str | os.PathLike[str], *, cache_bytes: int = 64 << 20,
                 write_buffer_bytes: int = 64 << 20) -> None:
        self.state_dir = Path(state_dir)
        self._cache = Cache(cache_bytes)
        self._write_buffers = WriteBufferManager.new_write_buffer_manager_with_cache(
            write_buffer_bytes, False, self._cache
        )

    def options(self) -> Options:
        """options are the RocksDB options of one partition's database."""
        options = _raw_options()
        table = BlockBasedOptions()
        table.set_block_cache(self._cache)
        table.set_bloom_filter(10, False)
        table.set_cache_index_and_filter_blocks(True)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self._write_buffers)
        options.set_write_buffer_size(8 << 20)
        options.set_max_write_buffer_number(2)
        options.set_keep_log_file_num(2)
        return options

    def path(self, topic: str, partition: int) -> Path:
        """path is the directory of a partition's database."""
        return self.state_dir / topic / str(partition)

    def __call__(self, topic: str, partition: int) -> Storage:
        return RocksDBStorage(self.path(topic, partition), self.options())
