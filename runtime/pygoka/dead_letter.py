"""Dead letters: messages a processor could not decode or process, kept unchanged with why."""

from __future__ import annotations

from typing import Any

from pygoka.codec import Codec, codec_name

#: DEAD_LETTER is the on_decode_error / on_callback_error mode that dead-letters instead of stopping.
DEAD_LETTER = "dead_letter"


def dead_letter_topic(group: str, configured: str | None) -> str:
    """dead_letter_topic is the configured topic, or '<group>-dead-letter'."""
    return configured or f"{group}-dead-letter"


def dead_letter_headers(message: Any, cause: str, codec: Codec | None) -> list[tuple[str, bytes]]:
    """dead_letter_headers are the message's own headers plus pygoka.* headers naming the failure."""
    return [
        *(message.headers() or []),
        ("pygoka.error", cause.encode("utf-8", "replace")),
        ("pygoka.topic", message.topic().encode("utf-8")),
        ("pygoka.partition", str(message.partition()).encode("ascii")),
        ("pygoka.offset", str(message.offset()).encode("ascii")),
        ("pygoka.codec", (codec_name(codec) if codec is not None else "").encode("utf-8")),
    ]
