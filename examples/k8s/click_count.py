"""The click-count processor group of examples/k8s/click-count.yaml: counts clicks per user as int64.

examples/k8s/Dockerfile builds its image FROM the pygoka runtime image with this file in /app; the
ProcessorGroup names it as `graph: click_count:graph`. CLICK_COUNT_GROUP and CLICK_COUNT_TOPIC (defaults
click-count and user-clicks) let one image serve several groups, as the end-to-end tests do.
"""

from __future__ import annotations

import os
from typing import Any

from pygoka.codec import Int64, String
from pygoka.context import Context
from pygoka.graph import Input, Persist, define_group


def count(ctx: Context, msg: Any) -> None:
    """count adds one to the user's click count in the group table."""
    ctx.set_value((ctx.value() or 0) + 1)


graph = define_group(os.environ.get("CLICK_COUNT_GROUP", "click-count"),
                     Input(os.environ.get("CLICK_COUNT_TOPIC", "user-clicks"), String(), count),
                     Persist(Int64()))
