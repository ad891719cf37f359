"""filter: drops messages of blocked senders, translates the rest and forwards them to their receiver.

It joins the blocker's table (co-partitioned with message_sent, both keyed by the sender) and looks
words up in the translator's table, which it holds completely because words are spread over every
partition.
"""

from __future__ import annotations

from pygoka import Context, GroupGraph, Input, Join, Lookup, Output, codec, define_group

from messaging import blocker, translator
from messaging.message import WORD_SEPARATOR, BlockValue, BlockValueCodec, Message, MessageCodec, Names

COMPONENT = "message_filter"


def define(names: Names) -> GroupGraph:
    """define is the filter's group graph."""
    blocked_table = names.table(blocker.COMPONENT)
    translations_table = names.table(translator.COMPONENT)

    def filter_message(ctx: Context, message: Message) -> None:
        state: BlockValue | None = ctx.join(blocked_table)
        if state is not None and state.blocked:
            print(f"filter: dropped a message of blocked {ctx.key} to {message.to}", flush=True)
            return
        words = [ctx.lookup(translations_table, word) or word for word in message.content.split(WORD_SEPARATOR)]
        translated = Message(message.sender, message.to, WORD_SEPARATOR.join(words))
        ctx.emit(names.received_stream, message.to, translated)

    return define_group(
        names.group(COMPONENT),
        Input(names.sent_stream, MessageCodec(), filter_message),
        Output(names.received_stream, MessageCodec()),
        Join(blocked_table, BlockValueCodec()),
        Lookup(translations_table, codec.String()),
    )
