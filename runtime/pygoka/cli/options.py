"""The ProcessorOptions of `pygoka run`: one flag and one PYGOKA_* variable per field, from its OptionSpec.

A flag wins over its variable; a variable left empty counts as unset. Map options (consumer_config, ...) take
repeated KEY=VALUE flags over a JSON object in the variable, over the Kafka settings of $PYGOKA_KAFKA_CONFIG_DIR.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from pygoka.cli.loading import UsageError
from pygoka.option_spec import OptionSpec
from pygoka.options import OPTIONS

#: CLI_OPTIONS are the options with a flag and a variable: all but those holding Python objects.
CLI_OPTIONS = tuple(spec for spec in OPTIONS if spec.place != "python")
#: KAFKA_MAPS are the options the Kafka settings of $PYGOKA_KAFKA_CONFIG_DIR apply to (admin clients take theirs
#: from the consumer's).
KAFKA_MAPS = ("consumer_config", "producer_config")


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """add_option_flags adds one flag per option (its OptionSpec's flag), each defaulting to its variable."""
    group = parser.add_argument_group("processor options", "ProcessorOptions fields (see docs/processor-options.md)")
    for spec in CLI_OPTIONS:
        help_text = f"{spec.help} (${spec.env})"
        if spec.kind == "bool":
            group.add_argument(spec.flag, dest=spec.field, action=argparse.BooleanOptionalAction, default=None,
                               help=help_text)
        elif spec.kind == "map":
            group.add_argument(spec.flag, dest=spec.field, action="append", default=[], metavar="KEY=VALUE",
                               help=f"{help_text}; repeatable")
        else:
            metavar = "{" + ",".join(spec.choices) + "}" if spec.choices else spec.kind.upper() if spec.kind else None
            group.add_argument(spec.flag, dest=spec.field, default=None, metavar=metavar, help=help_text)


def resolve_options(args: argparse.Namespace, environ: Mapping[str, str],
                    kafka: Mapping[str, str]) -> dict[str, Any]:
    """resolve_options are the ProcessorOptions keyword arguments of args and environ; unset ones are left out."""
    options: dict[str, Any] = {}
    try:
        for spec in CLI_OPTIONS:
            value = _value(spec, getattr(args, spec.field), environ, kafka)
            if value is not None:
                options[spec.field] = value
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return options


def _value(spec: OptionSpec, given: Any, environ: Mapping[str, str], kafka: Mapping[str, str]) -> Any:
    raw = environ.get(spec.env, "").strip()
    if spec.kind == "map":
        base = dict(kafka) if spec.field in KAFKA_MAPS else {}
        from_env = spec.parse(raw, f"${spec.env}") if raw else {}
        merged = {**base, **from_env, **parse_pairs(given, spec.flag)}
        return merged or None
    if given is not None:
        return given if isinstance(given, bool) else spec.parse(str(given), spec.flag)
    return spec.parse(raw, f"${spec.env}") if raw else None


def parse_pairs(pairs: list[str], flag: str) -> dict[str, str]:
    """parse_pairs turns repeated KEY=VALUE flags into a settings dictionary."""
    config: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} expects KEY=VALUE, not '{pair}'")
        config[key.strip()] = value
    return config
