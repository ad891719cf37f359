"""translator: keeps a translation per word (Input translate-word -> Persist), read by the filter as a Lookup."""

from __future__ import annotations

from pygoka import Context, GroupGraph, Input, Persist, codec, define_group

from messaging.message import Names

COMPONENT = "translator"


def translate(ctx: Context, translation: str) -> None:
    """translate stores the translation of the word that is the message's key."""
    ctx.set_value(translation)
    print(f"translator: {ctx.key} -> {translation}", flush=True)


def define(names: Names) -> GroupGraph:
    """define is the translator's group graph."""
    return define_group(
        names.group(COMPONENT),
        Input(names.translate_stream, codec.String(), translate),
        Persist(codec.String()),
    )
