"""A valid, non-default value of each ProcessorOptions field, for the tests of its flag, variable and spec key."""

from __future__ import annotations

from typing import Any

from pygoka.option_spec import OptionSpec


def sample(spec: OptionSpec) -> Any:
    """sample is a valid value of spec other than its default."""
    if spec.kind == "bool":
        return True
    if spec.kind == "int":
        return int(spec.minimum or 0) + 3
    if spec.kind == "float":
        return 2.5
    if spec.kind == "map":
        return {"linger.ms": "20", "client.id": "a=b"}
    if spec.choices:
        return spec.choices[-1]
    return f"{spec.name}-value"
