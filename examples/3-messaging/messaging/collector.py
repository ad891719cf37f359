"""collector: keeps the latest messages each user received (Input message_received -> Persist)."""

from __future__ import annotations

from pygoka import Context, GroupGraph, Input, Persist, define_group

from messaging.message import Message, MessageCodec, MessageListCodec, Names

#: MAX_MESSAGES is how many of a user's latest messages the collector keeps.
MAX_MESSAGES = 5
COMPONENT = "collector"


def collect(ctx: Context, message: Message) -> None:
    """collect appends the message to the receiver's list, dropping the oldest beyond MAX_MESSAGES."""
    messages: list[Message] = ctx.value() or []
    ctx.set_value([*messages, message][-MAX_MESSAGES:])


def define(names: Names) -> GroupGraph:
    """define is the collector's group graph."""
    return define_group(
        names.group(COMPONENT),
        Input(names.received_stream, MessageCodec(), collect),
        Persist(MessageListCodec()),
    )
