"""Codecs: round trips, errors naming the codec, and Go Goka's byte formats (compatibility section)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pygoka import CodecError, codec
from pygoka.codec import Codec, codec_name

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


# -- byte formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "raw"),
    [(0, b"0"), (1, b"1"), (-42, b"-42"), (INT64_MAX, b"9223372036854775807"),
     (INT64_MIN, b"-9223372036854775808")],
)
def test_int64_is_ascii_decimal(value: int, raw: bytes) -> None:
    assert codec.Int64().encode(value) == raw
    assert codec.Int64().decode(raw) == value


def test_int64_accepts_leading_zeros_like_go_parseint() -> None:
    assert codec.Int64().decode(b"007") == 7
    assert codec.Int64().decode(b"-0") == 0


@pytest.mark.parametrize(
    "raw",
    [b"", b"-", b" 1", b"1 ", b"+1", b"1_0", b"1.0", b"0x10", b"abc", b"--1", b"1e3",
     "\u0661".encode(), b"9223372036854775808", b"-9223372036854775809"],
)
def test_int64_rejects_what_go_parseint_rejects(raw: bytes) -> None:
    with pytest.raises(CodecError, match="Int64 codec cannot decode"):
        codec.Int64().decode(raw)


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 2**100])
def test_int64_rejects_values_outside_64_bits(value: int) -> None:
    with pytest.raises(CodecError, match=r"Int64 codec cannot encode .*64-bit range"):
        codec.Int64().encode(value)


@pytest.mark.parametrize("value", [True, 1.0, "1", b"1", None])
def test_int64_rejects_non_integers(value: Any) -> None:
    with pytest.raises(CodecError, match="Int64 codec cannot encode"):
        codec.Int64().encode(value)


def test_string_is_utf8() -> None:
    assert codec.String().encode("grüß") == "grüß".encode()
    assert codec.String().decode(b"\xe2\x82\xac") == "€"


def test_bytes_is_raw() -> None:
    assert codec.Bytes().encode(b"\x00\xff") == b"\x00\xff"
    assert codec.Bytes().encode(bytearray(b"ab")) == b"ab"
    assert codec.Bytes().encode(memoryview(b"cd")) == b"cd"
    decoded = codec.Bytes().decode(b"\x01")
    assert decoded == b"\x01"
    assert type(decoded) is bytes


def test_json_is_compact_utf8() -> None:
    assert codec.Json().encode({"a": [1, "ü"]}) == '{"a":[1,"ü"]}'.encode()
    assert codec.Json().decode(b'{"a": [1, null]}') == {"a": [1, None]}


# -- errors name the codec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "value", "name"),
    [
        (codec.Bytes(), "text", "Bytes"),
        (codec.Bytes(), 1, "Bytes"),
        (codec.String(), b"raw", "String"),
        (codec.String(), 5, "String"),
        (codec.Json(), {1, 2}, "Json"),
        (codec.Json(), float("nan"), "Json"),
        (codec.Json(), object(), "Json"),
    ],
)
def test_encode_errors_name_the_codec(instance: Codec, value: Any, name: str) -> None:
    with pytest.raises(CodecError) as info:
        instance.encode(value)
    assert f"{name} codec cannot encode" in str(info.value)


@pytest.mark.parametrize(
    ("instance", "raw", "name"),
    [
        (codec.String(), b"\xff\xfe", "String"),
        (codec.Json(), b"{not json", "Json"),
        (codec.Json(), b"\xff", "Json"),
        (codec.Int64(), b"x", "Int64"),
    ],
)
def test_decode_errors_name_the_codec(instance: Codec, raw: bytes, name: str) -> None:
    with pytest.raises(CodecError) as info:
        instance.decode(raw)
    assert f"{name} codec cannot decode" in str(info.value)


def test_codec_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        codec.Int64().decode(b"x")


def test_codec_names() -> None:
    assert [codec_name(c) for c in (codec.Bytes(), codec.String(), codec.Int64(), codec.Json())] == [
        "Bytes", "String", "Int64", "Json"]


def test_builtin_codecs_satisfy_the_protocol() -> None:
    for instance in (codec.Bytes(), codec.String(), codec.Int64(), codec.Json()):
        assert isinstance(instance, Codec)


# -- properties -----------------------------------------------------------------------------------


@given(st.binary())
def test_bytes_round_trip(value: bytes) -> None:
    assert codec.Bytes().decode(codec.Bytes().encode(value)) == value


@given(st.text())
def test_string_round_trip(value: str) -> None:
    raw = codec.String().encode(value)
    assert raw == value.encode("utf-8")
    assert codec.String().decode(raw) == value


@given(st.integers(min_value=INT64_MIN, max_value=INT64_MAX))
def test_int64_round_trip_and_format(value: int) -> None:
    raw = codec.Int64().encode(value)
    assert raw == str(value).encode("ascii")
    assert codec.Int64().decode(raw) == value


@given(st.integers(min_value=INT64_MAX + 1) | st.integers(max_value=INT64_MIN - 1))
def test_int64_rejects_every_value_outside_64_bits(value: int) -> None:
    with pytest.raises(CodecError):
        codec.Int64().encode(value)
    with pytest.raises(CodecError):
        codec.Int64().decode(str(value).encode("ascii"))


@given(st.binary())
def test_int64_decode_accepts_only_canonical_decimal(raw: bytes) -> None:
    body = raw[1:] if raw.startswith(b"-") else raw
    expected_ok = bool(body) and all(0x30 <= b <= 0x39 for b in body) and INT64_MIN <= int(raw) <= INT64_MAX
    try:
        value = codec.Int64().decode(raw)
    except CodecError:
        assert not expected_ok
    else:
        assert expected_ok
        assert value == int(raw)


@given(json_values)
def test_json_round_trip(value: Any) -> None:
    assert codec.Json().decode(codec.Json().encode(value)) == value
