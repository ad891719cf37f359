"""blocker: keeps which users are blocked (Input block_user -> Persist), read by the filter as a Join."""

from __future__ import annotations

from pygoka import Context, GroupGraph, Input, Persist, define_group

from messaging.message import BlockEvent, BlockEventCodec, BlockValue, BlockValueCodec, Names

COMPONENT = "blocker"


def block(ctx: Context, event: BlockEvent) -> None:
    """block stores whether the event's key is blocked from now on."""
    ctx.set_value(BlockValue(blocked=not event.unblock))
    print(f"blocker: {ctx.key} {'unblocked' if event.unblock else 'blocked'}", flush=True)


def define(names: Names) -> GroupGraph:
    """define is the blocker's group graph."""
    return define_group(
        names.group(COMPONENT),
        Input(names.block_stream, BlockEventCodec(), block),
        Persist(BlockValueCodec()),
    )
