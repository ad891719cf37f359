"""The click-count processor group of examples/k8s/click-count.yaml: counts clicks per user as int64.

Build an image FROM the pygoka runtime image with this file in /app and name it in the ProcessorGroup:

    FROM ghcr.io/pygoka/pygoka-runtime:0.1.0
    COPY examples/k8s/click_count.py /app/
    # spec.graph: click_count:graph
"""

from __future__ import annotations

from typing import Any

from pygoka.codec import Int64, String
from pygoka.context import Context
from pygoka.graph import Input, Persist, define_group


def count(ctx: Context, msg: Any) -> None:
    """count adds one to the user's click count in the group table."""
    ctx.set_value((ctx.value() or 0) + 1)


graph = define_group("click-count", Input("user-clicks", String(), count), Persist(Int64()))
