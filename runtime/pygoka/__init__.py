"""pygoka: Goka's stateful stream processing on Kafka, in Python."""

from importlib import metadata as _metadata

from pygoka import codec
from pygoka.context import Context
from pygoka.emitter import Delivery, Emitter
from pygoka.errors import (
    CallbackError,
    CodecError,
    EmitterClosedError,
    GraphError,
    NotRunningError,
    ProcessingError,
    PygokaError,
    StorageError,
    TopicError,
)
from pygoka.graph import (
    GroupGraph,
    Input,
    Inputs,
    Join,
    Lookup,
    Loop,
    Output,
    Persist,
    Visitor,
    define_group,
    group_table,
    loop_stream,
)
from pygoka.options import NilHandling, ProcessorOptions
from pygoka.processor import Processor
from pygoka.view import View

try:
    #: __version__ is the installed distribution's version (pyproject.toml's, the chart's appVersion).
    __version__ = _metadata.version("pygoka")
except _metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CallbackError",
    "CodecError",
    "Context",
    "Delivery",
    "Emitter",
    "EmitterClosedError",
    "GraphError",
    "GroupGraph",
    "Input",
    "Inputs",
    "Join",
    "Lookup",
    "Loop",
    "NilHandling",
    "NotRunningError",
    "Output",
    "Persist",
    "ProcessingError",
    "Processor",
    "ProcessorOptions",
    "PygokaError",
    "StorageError",
    "TopicError",
    "View",
    "Visitor",
    "__version__",
    "codec",
    "define_group",
    "group_table",
    "loop_stream",
]
