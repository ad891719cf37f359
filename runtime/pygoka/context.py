"""The context a callback receives: the message's metadata and the group's table, emits and commits."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pygoka.codec import Codec, codec_name
from pygoka.errors import CallbackError, CodecError
from pygoka.table import NOT_DECODED

if TYPE_CHECKING:
    from pygoka.partition import PartitionRun

#: Headers are the headers of a record: names to raw bytes (str values are UTF-8 encoded).
Headers = Mapping[str, bytes | str]
#: Done completes a deferred commit: done() commits the message, done(error) stops the processor.
Done = Callable[..., None]

_UNSET = object()
_DELETE = object()


class ContextHost(Protocol):
    """ContextHost is what a Context needs from the processor running it."""

    group: str
    table_topic: str
    loop_topic: str | None
    table_codec: Codec | None
    #: table_exact_type is codec.exact_type of the table codec: values of it are kept decoded until stored.
    table_exact_type: type | None
    output_codecs: dict[str, Codec]
    join_codecs: dict[str, Codec]
    #: producer is the processor's current producer (confluent_kafka.Producer's interface).
    producer: Any

    def lookup(self, table: str, key: str) -> Any:
        """lookup reads key from the lookup table."""
        ...

    def produce(self, topic: str, key: bytes, value: bytes | None, partition: int | None,
                headers: list[tuple[str, bytes]] | None) -> None:
        """produce sends a record; the processor checks its delivery before the next commit."""
        ...

    def defer(self, run: PartitionRun, topic: str, offset: int) -> Done:
        """defer holds back the commit of offset until the returned function is called."""
        ...


class Failure(Exception):
    """Failure carries the error given to Context.fail out of the callback."""

    def __init__(self, error: BaseException | str) -> None:
        self.error = error
        super().__init__(str(error))


class Context:
    """Context is the callback's view of the message being processed and of the group's table.

    Table updates, emits and loopbacks take effect when the callback returns: a callback that raises
    leaves no trace, and the message is processed again after a restart (B12, B15).
    """

    __slots__ = ("_effects", "_host", "_key", "_key_bytes", "_message", "_new_value", "_run")

    def __init__(self, host: ContextHost, run: PartitionRun, message: Any, key: str, key_bytes: bytes) -> None:
        self._host = host
        self._run = run
        self._message = message
        self._key = key
        self._key_bytes = key_bytes
        self._new_value: Any = _UNSET
        # Created by the first emit or loopback: most callbacks send nothing besides the table update.
        self._effects: list[tuple[str, bytes, bytes | None, int | None, list[tuple[str, bytes]] | None]] | None = None

    @property
    def key(self) -> str:
        """key is the key of the message (the empty string for a null key)."""
        return self._key

    @property
    def topic(self) -> str:
        """topic is the topic the message came from."""
        topic: str = self._message.topic()
        return topic

    @property
    def partition(self) -> int:
        """partition is the partition of the message, and of the group table the callback sees."""
        return self._run.partition

    @property
    def offset(self) -> int:
        """offset is the offset of the message."""
        offset: int = self._message.offset()
        return offset

    @property
    def timestamp(self) -> datetime.datetime:
        """timestamp is the message's timestamp in UTC."""
        _, millis = self._message.timestamp()
        return datetime.datetime.fromtimestamp(max(millis, 0) / 1000, tz=datetime.UTC)

    @property
    def headers(self) -> dict[str, bytes]:
        """headers are the message's headers (the last value of a repeated name)."""
        return {name: value or b"" for name, value in (self._message.headers() or [])}

    @property
    def group(self) -> str:
        """group is the name of the processor group."""
        return self._host.group

    def value(self) -> Any:
        """value is the table value of the current key, None if never set (B6)."""
        codec = self._host.table_codec
        if codec is None:
            raise CallbackError("cannot access state in stateless processor")
        new = self._new_value
        if new is not _UNSET:
            return None if new is _DELETE else new[1]
        table = self._run.table
        assert table is not None
        value = table.decoded.get(self._key_bytes, _UNSET)
        if value is not _UNSET:
            return value
        raw = table.get(self._key_bytes)
        return None if raw is None else codec.decode(raw)

    def set_value(self, value: Any, headers: Headers | None = None) -> None:
        """set_value stores value for the current key and writes it to the group table topic."""
        codec = self._host.table_codec
        if codec is None:
            raise CallbackError("cannot access state in stateless processor")
        if value is None:
            raise CallbackError("cannot set None as table value (use delete instead)")
        try:
            raw = codec.encode(value)
        except CodecError:
            raise
        except Exception as exc:
            raise _encode_error(codec, exc, "table", self._host.table_topic) from exc
        self._new_value = (raw, value, _headers(headers) if headers else None)

    def delete(self, headers: Headers | None = None) -> None:
        """delete removes the current key from the table and writes a tombstone to the table topic."""
        self._state_codec()
        self._new_value = _DELETE if headers is None else (None, None, _headers(headers))

    def emit(self, topic: str, key: str, value: Any, headers: Headers | None = None) -> None:
        """emit sends value with key to a declared Output topic (B3)."""
        host = self._host
        if not topic:
            raise CallbackError("cannot emit to empty topic")
        if topic == host.table_topic:
            raise CallbackError("cannot emit to table topic (use set_value instead)")
        if topic == host.loop_topic or topic == f"{host.group}-loop":
            raise CallbackError("cannot emit to loop topic (use loopback instead)")
        codec = host.output_codecs.get(topic)
        if codec is None:
            raise CallbackError(f"cannot emit to topic '{topic}': not declared as Output of group '{host.group}'")
        raw = None if value is None else _encode(codec, value, "topic", topic)
        self._effect((topic, _key_bytes(key), raw, None, _headers(headers)))

    def loopback(self, key: str, value: Any, headers: Headers | None = None) -> None:
        """loopback sends value with key to the group's loop topic, handled by the Loop callback (B9)."""
        host = self._host
        if host.loop_topic is None:
            raise CallbackError("no loop topic configured")
        codec = host.output_codecs[host.loop_topic]
        raw = _encode(codec, value, "loop topic", host.loop_topic)
        self._effect((host.loop_topic, _key_bytes(key), raw, None, _headers(headers)))

    def _effect(self, record: tuple[str, bytes, bytes | None, int | None, list[tuple[str, bytes]] | None]) -> None:
        if self._effects is None:
            self._effects = []
        self._effects.append(record)

    def join(self, table: str) -> Any:
        """join is the value of the current key in a co-partitioned Join table (B10)."""
        codec = self._host.join_codecs.get(table)
        if codec is None:
            raise CallbackError(f"table '{table}' is not declared as Join of group '{self._host.group}'")
        raw = self._run.joins[table].get(self._key_bytes)
        return None if raw is None else codec.decode(raw)

    def lookup(self, table: str, key: str) -> Any:
        """lookup is the value of any key in a Lookup table (B10)."""
        return self._host.lookup(table, key)

    def fail(self, error: BaseException | str) -> None:
        """fail stops the processor with error; nothing from this message on is committed."""
        raise Failure(error)

    def defer_commit(self) -> Done:
        """defer_commit holds the commit of this message until the returned done() is called (B8)."""
        return self._host.defer(self._run, self.topic, self.offset)

    def _state_codec(self) -> Codec:
        codec = self._host.table_codec
        if codec is None:
            raise CallbackError("cannot access state in stateless processor")
        return codec

    def finish(self) -> None:
        """finish applies the callback's table update and sends its records (called by the processor)."""
        host = self._host
        new = self._new_value
        if new is not _UNSET:
            table = self._run.table
            assert table is not None
            if new is _DELETE:
                raw, headers = None, None
                table.set(self._key_bytes, None)
            else:
                raw, value, headers = new
                table.set(self._key_bytes, raw, value if type(value) is host.table_exact_type else NOT_DECODED)
            # The producer is called directly (positional, no headers keyword unless there are headers): this
            # runs for every table update. A full queue (BufferError) is left to host.produce, which waits.
            try:
                if headers is None:
                    host.producer.produce(host.table_topic, raw, self._key_bytes, self._run.partition)
                else:
                    host.producer.produce(host.table_topic, raw, self._key_bytes, self._run.partition, headers=headers)
            except BufferError:
                host.produce(host.table_topic, self._key_bytes, raw, self._run.partition, headers)
        if self._effects:
            for topic, key, value, partition, headers in self._effects:
                host.produce(topic, key, value, partition, headers)


def _encode(codec: Codec, value: Any, kind: str, name: str) -> bytes:
    try:
        return codec.encode(value)
    except CodecError:
        raise
    except Exception as exc:
        raise _encode_error(codec, exc, kind, name) from exc


def _encode_error(codec: Codec, exc: Exception, kind: str, name: str) -> CodecError:
    # kind and name are formatted only on failure, since encoding runs for every table update.
    return CodecError(f"codec {codec_name(codec)} cannot encode value for {kind} '{name}': {exc}")


def _key_bytes(key: str | bytes) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    raise CallbackError(f"key must be str or bytes, got {type(key).__name__}")


def _headers(headers: Headers | None) -> list[tuple[str, bytes]] | None:
    if not headers:
        return None
    return [(name, value.encode("utf-8") if isinstance(value, str) else bytes(value))
            for name, value in headers.items()]
