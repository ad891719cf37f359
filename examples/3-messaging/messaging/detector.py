"""detector: counts the messages each user sends and receives, and blocks users who mostly send (spammers).

A sent message counts for its sender here (message_sent is keyed by the sender); the detector then
loops it back keyed by the receiver, so that the receiver's counter is updated in the partition that
owns the receiver's entry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pygoka import Context, GroupGraph, Input, Loop, Output, Persist, define_group

from messaging.message import BlockEvent, BlockEventCodec, Counters, CountersCodec, Message, MessageCodec, Names

COMPONENT = "detector"


@dataclass(frozen=True)
class Limits:
    """Limits say when a user is a spammer: at least min_messages in all, of which max_rate or more sent."""

    min_messages: int = 200
    max_rate: float = 0.5

    def is_spammer(self, counters: Counters) -> bool:
        total = counters.sent + counters.received
        return total >= self.min_messages and counters.sent / total >= self.max_rate


def define(names: Names, limits: Limits | None = None) -> GroupGraph:
    """define is the detector's group graph."""
    limits = limits or Limits()

    def update(ctx: Context, counters: Counters) -> None:
        ctx.set_value(counters)
        if limits.is_spammer(counters):
            print(f"detector: {ctx.key} is a spammer (sent {counters.sent}, received {counters.received}); "
                  "blocking", flush=True)
            ctx.emit(names.block_stream, ctx.key, BlockEvent())

    def sent(ctx: Context, message: Message) -> None:
        counters: Counters = ctx.value() or Counters()
        update(ctx, replace(counters, sent=counters.sent + 1))
        ctx.loopback(message.to, message)

    def received(ctx: Context, message: Message) -> None:
        counters: Counters = ctx.value() or Counters()
        update(ctx, replace(counters, received=counters.received + 1))

    return define_group(
        names.group(COMPONENT),
        Input(names.sent_stream, MessageCodec(), sent),
        Loop(MessageCodec(), received),
        Output(names.block_stream, BlockEventCodec()),
        Persist(CountersCodec()),
    )
