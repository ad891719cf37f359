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
#: RocksDB's status text of checksum mismatches and other damaged files.
_CORRUPTION = "Corruption"


class RocksDBStorage:
    """RocksDBStorage stores a partition's data in the default column family and its offset in another.

    Keeping the offset in a separate column family means no user key can collide with it and
    iteration never sees it, while one WriteBatch still covers both (B30).

    A read or write that finds the files damaged (a checksum mismatch in a file that opened fine)
    raises StorageError naming the path, topic and partition, and marks the store: the next open
    deletes it and lets recovery rebuild it from the table topic, as for a store that cannot be opened.
    """

    def __init__(self, path: Path, options: Options, *, topic: str | None = None,
                 partition: int | None = None) -> None:
        self.path = path
        self._options = options
        self._where = f"RocksDB storage at {path}"
        if topic is not None:
            self._where += f" (topic '{topic}', partition {partition})"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._owner = _lock_owner(path)
        except OSError as exc:
            # An unusable state directory is a storage failure (exit code 4 of `pygoka run`), not a crash.
            raise StorageError(f"cannot create RocksDB storage at {path}: {exc}") from exc
        try:
            _remove_if_marked_damaged(path)
            self._db = _open_or_rebuild(path, options)
        except BaseException:
            os.close(self._owner)
            raise
        self._meta = self._db.get_column_family_handle(_META)
        self._meta_view = self._db.get_column_family(_META)
        self._closed = False
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes | None = self._db.get(key)
        except Exception as exc:  # rocksdict raises plain Exception for RocksDB errors
            raise self._failure("read", exc) from exc
        return value

    def has(self, key: bytes) -> bool:
        return self.get(key) is not None

    def write(self, updates: Iterable[Update], offset: int | None) -> None:
        self._check_open()
        batch = WriteBatch(raw_mode=True)
        put, delete = batch.put, batch.delete  # bound once: this loop runs for every record recovered
        for key, value in updates:
            if value is None:
                delete(key)
            else:
                put(key, value)
        if offset is not None:
            batch.set_default_column_family(self._meta)
            batch.put(_OFFSET_KEY, _OFFSET.pack(offset))
        with self._lock:
            self._check_open()
            try:
                self._db.write(batch)
            except Exception as exc:  # rocksdict raises plain Exception for RocksDB errors
                raise self._failure("write", exc) from exc

    def offset(self) -> int | None:
        try:
            raw = self._meta_view.get(_OFFSET_KEY)
        except Exception as exc:  # rocksdict raises plain Exception for RocksDB errors
            raise self._failure("read the offset of", exc) from exc
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
        # A raw iterator, not Rdict.items(): items() ends silently at a damaged block, which would show
        # a visitor or a view a partial table; the iterator's status tells an error from the end.
        try:
            cursor: Any = self._db.iter()
            if start is None:
                cursor.seek_to_first()
            else:
                cursor.seek(start)
        except Exception as exc:  # rocksdict raises plain Exception for RocksDB errors
            raise self._failure("iterate", exc) from exc
        while cursor.valid():
            key: bytes = cursor.key()
            if end is not None and key >= end:
                return
            value: bytes = cursor.value()
            yield key, value
            cursor.next()
        try:
            cursor.status()
        except Exception as exc:  # rocksdict raises plain Exception for RocksDB errors
            raise self._failure("iterate", exc) from exc

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
        # Flush the data before the offset (rocksdict's close flushes the offset's column family first).
        # Each flush is its own MANIFEST record, and the write-ahead log is deleted after both: should
        # the MANIFEST lose its tail, the store then holds data newer than its offset (harmless,
        # recovery re-applies the table records in order), never an offset newer than its data.
        try:
            self._db.flush(True)
            self._meta_view.flush(True)
        except Exception as exc:  # noqa: BLE001 - rocksdict raises plain Exception for RocksDB errors
            log.warning("%s: flush before closing failed: %s", self._where, exc)
        self._meta_view.close()
        self._db.close()
        del self._meta
        self._closed = True
        os.close(self._owner)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"RocksDB storage at {self.path} is closed")

    def _failure(self, action: str, exc: Exception) -> StorageError:
        """_failure is the StorageError for a failed RocksDB call; damaged files mark the store for rebuild."""
        if self._closed:
            return StorageError(f"{self._where} is closed")
        if str(exc).startswith(_CORRUPTION):
            _mark_damaged(self.path, str(exc))
            return StorageError(f"{self._where} is damaged ({exc}); it is deleted and rebuilt from the table "
                                "topic when it is opened again")
        return StorageError(f"cannot {action} {self._where}: {exc}")


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


def _damaged_marker(path: Path) -> Path:
    return path.with_name(f"{path.name}.damaged")


def _mark_damaged(path: Path, reason: str) -> None:
    """_mark_damaged leaves a file beside the database telling the next open to rebuild it."""
    try:
        _damaged_marker(path).write_text(reason + "\n")
    except OSError as exc:
        log.error("RocksDB storage at %s is damaged but cannot be marked for rebuilding: %s", path, exc)


def _remove_if_marked_damaged(path: Path) -> None:
    """_remove_if_marked_damaged deletes a database that an earlier read or write found damaged."""
    marker = _damaged_marker(path)
    if not marker.exists():
        return
    try:
        reason = marker.read_text(errors="replace").strip()
        log.warning("RocksDB storage at %s was found damaged (%s); rebuilding it from the table topic",
                    path, reason)
        shutil.rmtree(path, ignore_errors=True)
        # Only once the database is gone: a crash in between deletes the new, empty one again, nothing else.
        marker.unlink()
    except OSError as exc:
        raise StorageError(f"cannot remove the damaged RocksDB storage at {path}: {exc}") from exc


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
        return RocksDBStorage(self.path(topic, partition), self.options(), topic=topic, partition=partition)
