"""Message types, their codecs and the names of the example's topics and groups.

Values travel as JSON with Goka's field names ("From", "To", "Content", "Blocked", ...), so that the
Go example's components could read what these write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The translator replaces a word only if it is in its table; messages are split on single spaces, as in Goka.
WORD_SEPARATOR = " "


@dataclass(frozen=True)
class Names:
    """Names are the topics and groups of the example; prefix keeps concurrent runs (tests) apart."""

    prefix: str = ""

    def _name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def sent_stream(self) -> str:
        """sent_stream carries every message a user sends, keyed by the sender."""
        return self._name("message_sent")

    @property
    def received_stream(self) -> str:
        """received_stream carries the messages that passed the filter, keyed by the receiver."""
        return self._name("message_received")

    @property
    def block_stream(self) -> str:
        """block_stream carries block and unblock events, keyed by the user."""
        return self._name("block_user")

    @property
    def translate_stream(self) -> str:
        """translate_stream carries translations, keyed by the word they translate."""
        return self._name("translate-word")

    def group(self, component: str) -> str:
        """group is the processor group of a component (collector, blocker, message_filter, ...)."""
        return self._name(component)

    def table(self, component: str) -> str:
        """table is the group table topic of a component."""
        return f"{self.group(component)}-table"


@dataclass(frozen=True)
class Message:
    """Message is one message from sender to receiver."""

    sender: str
    to: str
    content: str

    def to_json(self) -> dict[str, str]:
        return {"From": self.sender, "To": self.to, "Content": self.content}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Message:
        return cls(sender=data.get("From", ""), to=data.get("To", ""), content=data.get("Content", ""))


@dataclass(frozen=True)
class BlockEvent:
    """BlockEvent blocks a user, or unblocks them."""

    unblock: bool = False


@dataclass(frozen=True)
class BlockValue:
    """BlockValue is the blocker's table entry of a user."""

    blocked: bool = False


@dataclass(frozen=True)
class Counters:
    """Counters is the detector's table entry of a user: messages sent and received."""

    sent: int = 0
    received: int = 0


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


class MessageCodec:
    """MessageCodec encodes a Message as JSON."""

    def encode(self, value: Message) -> bytes:
        return _dumps(value.to_json())

    def decode(self, data: bytes) -> Message:
        return Message.from_json(json.loads(data))


class MessageListCodec:
    """MessageListCodec encodes the collector's list of the latest messages as a JSON array."""

    def encode(self, value: list[Message]) -> bytes:
        return _dumps([message.to_json() for message in value])

    def decode(self, data: bytes) -> list[Message]:
        return [Message.from_json(item) for item in json.loads(data)]


class BlockEventCodec:
    """BlockEventCodec encodes a BlockEvent as {"Unblock": bool}."""

    def encode(self, value: BlockEvent) -> bytes:
        return _dumps({"Unblock": value.unblock})

    def decode(self, data: bytes) -> BlockEvent:
        return BlockEvent(unblock=bool(json.loads(data).get("Unblock", False)))


class BlockValueCodec:
    """BlockValueCodec encodes a BlockValue as {"Blocked": bool}."""

    def encode(self, value: BlockValue) -> bytes:
        return _dumps({"Blocked": value.blocked})

    def decode(self, data: bytes) -> BlockValue:
        return BlockValue(blocked=bool(json.loads(data).get("Blocked", False)))


class CountersCodec:
    """CountersCodec encodes Counters as {"Sent": n, "Received": m}."""

    def encode(self, value: Counters) -> bytes:
        return _dumps({"Sent": value.sent, "Received": value.received})

    def decode(self, data: bytes) -> Counters:
        raw = json.loads(data)
        return Counters(sent=int(raw.get("Sent", 0)), received=int(raw.get("Received", 0)))
