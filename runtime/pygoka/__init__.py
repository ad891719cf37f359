"""pygoka: Goka's stateful stream processing on Kafka, in Python."""

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
    "codec",
    "define_group",
    "group_table",
    "loop_stream",
]
