"""Resolving MODULE:ATTR into the processor group, processor or view the command line runs."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pygoka import codec
from pygoka.codec import Codec
from pygoka.graph import GroupGraph
from pygoka.processor import Processor
from pygoka.view import View


class UsageError(Exception):
    """UsageError is a command line or configuration mistake (exit code 2)."""


@dataclass(frozen=True)
class ViewSpec:
    """ViewSpec names a table to serve with a View; `pygoka run` adds brokers, state dir and consumer config."""

    table: str
    codec: Codec
    options: dict[str, Any] = field(default_factory=dict)


#: CODECS are the codecs `--codec` accepts.
CODECS: dict[str, Callable[[], Codec]] = {
    "int64": codec.Int64,
    "string": codec.String,
    "json": codec.Json,
    "bytes": codec.Bytes,
}

Target = GroupGraph | ViewSpec | Processor | View
#: VIEW_OPTIONS are the ProcessorOptions a View takes too.
VIEW_OPTIONS = ("state_dir", "consumer_config")


@dataclass(frozen=True)
class RunConfig:
    """RunConfig is what `pygoka run` resolved; a MODULE:ATTR callable taking one argument receives it.

    options are ProcessorOptions keyword arguments (instance id, guarantee, consumer and producer settings with
    the Kafka Secret's, ...): a factory passes them on with processor() or view(), overriding what it must.
    """

    brokers: str
    options: dict[str, Any] = field(default_factory=dict)
    #: kafka are the librdkafka settings of $PYGOKA_KAFKA_CONFIG_DIR (SASL, TLS), e.g. for the factory's own clients.
    kafka: dict[str, str] = field(default_factory=dict)

    def processor(self, graph: GroupGraph, **overrides: Any) -> Processor:
        """processor is a Processor of graph with the resolved brokers and options; overrides win."""
        return Processor(self.brokers, graph, **{**self.options, **overrides})

    def view(self, table: str, codec: Codec, **overrides: Any) -> View:
        """view is a View of table with the resolved brokers, state dir and consumer settings; overrides win."""
        options = {key: value for key, value in self.options.items() if key in VIEW_OPTIONS}
        return View(self.brokers, table, codec, **{**options, **overrides})


def codec_by_name(name: str) -> Codec:
    """codec_by_name is the codec called name (int64, string, json, bytes) or a UsageError."""
    try:
        return CODECS[name.lower()]()
    except KeyError:
        raise UsageError(f"unknown codec '{name}': choose one of {', '.join(CODECS)}") from None


def add_python_path(paths: list[str]) -> None:
    """add_python_path puts paths first on sys.path so that user modules import (default: the current dir)."""
    for path in reversed(paths or ["."]):
        resolved = str(Path(path).resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)


def load_attr(spec: str) -> Any:
    """load_attr imports MODULE and returns its attribute ATTR (dotted), raising UsageError naming the problem."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"'{spec}' is not MODULE:ATTR (e.g. myapp.counting:graph)")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import module '{module_name}': {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"module '{module_name}' has no attribute '{attr}'") from None
    return obj


def load_target(spec: str, config: RunConfig | None = None) -> Target:
    """load_target resolves spec to a GroupGraph, ViewSpec, Processor or View, calling a callable.

    A callable takes no argument, or one: the RunConfig (config, or one without brokers and options).
    """
    obj = load_attr(spec)
    if isinstance(obj, (GroupGraph, ViewSpec, Processor, View)):
        return obj
    if callable(obj):
        # A callable may raise pygoka's own errors (e.g. GraphError); those pass through to the exit codes.
        arguments = (config or RunConfig(""),) if _takes_config(obj, spec) else ()
        result = obj(*arguments)
        if isinstance(result, (GroupGraph, ViewSpec, Processor, View)):
            return result
        raise UsageError(f"'{spec}' returned {type(result).__name__}, not a GroupGraph, Processor, View or ViewSpec")
    raise UsageError(f"'{spec}' is a {type(obj).__name__}, not a GroupGraph, ViewSpec or a callable returning one")


def _takes_config(factory: Callable[..., Any], spec: str) -> bool:
    """_takes_config tells whether factory needs one positional argument (the RunConfig) or none."""
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return False  # a builtin without a signature: called without arguments
    needed = [p for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(needed) > 1 or any(p.default is p.empty and p.kind == p.KEYWORD_ONLY for p in parameters):
        raise UsageError(f"'{spec}' must be callable without arguments or with one (a pygoka.cli.RunConfig)")
    return len(needed) == 1


def load_graph(spec: str) -> GroupGraph:
    """load_graph resolves spec to the GroupGraph it names (directly, via a callable, or a Processor's graph)."""
    target = load_target(spec)
    if isinstance(target, GroupGraph):
        return target
    if isinstance(target, Processor):
        return target.graph
    raise UsageError(f"'{spec}' is a {type(target).__name__}, not a processor group")
