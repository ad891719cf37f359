"""Codecs turn values into the bytes stored in Kafka and back, byte-compatible with Go Goka."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Protocol, runtime_checkable

from pygoka.errors import CodecError


@runtime_checkable
class Codec(Protocol):
    """Codec encodes values to bytes and decodes bytes to values."""

    def encode(self, value: Any) -> bytes:
        """encode returns the bytes of value or raises CodecError."""
        ...

    def decode(self, data: bytes) -> Any:
        """decode returns the value of data or raises CodecError."""
        ...


def codec_name(codec: Codec) -> str:
    """codec_name is the name a codec is reported with in errors and graph descriptions."""
    return type(codec).__name__


def exact_type(codec: Codec) -> type | None:
    """exact_type is the immutable type whose values codec decodes back to equal values of that type, if any.

    A table of such a codec hands a value it was just given back without encoding and decoding it.
    """
    found: type | None = getattr(codec, "exact_type", None)
    return found


class Bytes:
    """Bytes passes raw bytes through unchanged (Goka's codec.Bytes)."""

    exact_type: ClassVar[type] = bytes

    def encode(self, value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise CodecError(f"Bytes codec cannot encode {type(value).__name__}: expected bytes")

    def decode(self, data: bytes) -> bytes:
        return bytes(data)


class String:
    """String encodes str as UTF-8 (Goka's codec.String)."""

    exact_type: ClassVar[type] = str

    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            return value.encode("utf-8")
        raise CodecError(f"String codec cannot encode {type(value).__name__}: expected str")

    def decode(self, data: bytes) -> str:
        try:
            return (data if type(data) is bytes else bytes(data)).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"String codec cannot decode {len(data)} bytes: not UTF-8 ({exc.reason})") from exc


class Int64:
    """Int64 encodes integers as ASCII decimal text, as Goka's codec.Int64 does."""

    exact_type: ClassVar[type] = int

    _MIN = -(2**63)
    _MAX = 2**63 - 1

    def encode(self, value: Any) -> bytes:
        # Fast path for a plain int (not bool, not a subclass with its own str) in range.
        if type(value) is int and self._MIN <= value <= self._MAX:
            return b"%d" % value
        if isinstance(value, bool) or not isinstance(value, int):
            raise CodecError(f"Int64 codec cannot encode {type(value).__name__}: expected int")
        if not self._MIN <= value <= self._MAX:
            raise CodecError(f"Int64 codec cannot encode {value}: outside the signed 64-bit range")
        return str(value).encode("ascii")

    def decode(self, data: bytes) -> int:
        # Fast path: up to 18 ASCII digits are always a valid, in-range non-negative int64.
        if type(data) is bytes and len(data) < 19 and data.isdigit():
            return int(data)
        text = bytes(data)
        # int() would also accept spaces, underscores and '+', which Go's strconv.ParseInt rejects.
        body = text[1:] if text[:1] == b"-" else text
        if not body or not body.isdigit():
            raise CodecError(f"Int64 codec cannot decode {text[:40]!r}: not an ASCII decimal integer")
        value = int(text)
        if not self._MIN <= value <= self._MAX:
            raise CodecError(f"Int64 codec cannot decode {text[:40]!r}: outside the signed 64-bit range")
        return value


class Json:
    """Json encodes JSON-serialisable values as compact UTF-8 JSON."""

    def encode(self, value: Any) -> bytes:
        try:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise CodecError(f"Json codec cannot encode {type(value).__name__}: {exc}") from exc

    def decode(self, data: bytes) -> Any:
        try:
            return json.loads(bytes(data))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CodecError(f"Json codec cannot decode {bytes(data)[:40]!r}: {exc}") from exc


def decode(codec: Codec, data: bytes) -> Any:
    """decode is codec.decode(data), any failure of it a CodecError naming the codec and the first bytes."""
    try:
        return codec.decode(data)
    except CodecError:
        raise
    except Exception as exc:
        raise decode_error(codec, data, exc) from exc


def decode_error(codec: Codec, data: bytes, exc: Exception) -> CodecError:
    """decode_error is the CodecError of codec failing to decode data with exc."""
    return CodecError(f"codec {codec_name(codec)} cannot decode {bytes(data)[:40]!r}: {exc}")
