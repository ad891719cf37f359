"""The group graph: the edges that connect a processor group to its topics and tables."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pygoka.codec import Codec, codec_name
from pygoka.errors import GraphError

if TYPE_CHECKING:
    from pygoka.context import Context

#: ProcessCallback is the type of a callback: it receives the context and the decoded message.
ProcessCallback = Callable[["Context", Any], None]


def group_table(group: str) -> str:
    """group_table is the name of the group table topic of group."""
    return f"{group}-table"


def loop_stream(group: str) -> str:
    """loop_stream is the name of the loopback topic of group."""
    return f"{group}-loop"


@dataclass(frozen=True)
class Input:
    """Input consumes topic, decoding each message with codec and calling callback."""

    topic: str
    codec: Codec
    callback: ProcessCallback


@dataclass(frozen=True)
class Inputs:
    """Inputs is one Input edge per topic, all sharing one codec and callback."""

    topics: tuple[str, ...]
    codec: Codec
    callback: ProcessCallback

    def __init__(self, topics: Iterable[str], codec: Codec, callback: ProcessCallback) -> None:
        object.__setattr__(self, "topics", tuple(topics))
        object.__setattr__(self, "codec", codec)
        object.__setattr__(self, "callback", callback)

    def edges(self) -> list[Input]:
        """edges returns the single-topic Input edges this stands for."""
        return [Input(topic, self.codec, self.callback) for topic in self.topics]


@dataclass(frozen=True)
class Loop:
    """Loop consumes the group's loopback topic, fed by Context.loopback."""

    codec: Codec
    callback: ProcessCallback


@dataclass(frozen=True)
class Join:
    """Join reads a co-partitioned table with Context.join (the value of the current key)."""

    table: str
    codec: Codec


@dataclass(frozen=True)
class Lookup:
    """Lookup reads any key of a fully replicated table with Context.lookup."""

    table: str
    codec: Codec


@dataclass(frozen=True)
class Output:
    """Output declares a topic that callbacks may emit to with Context.emit."""

    topic: str
    codec: Codec


@dataclass(frozen=True)
class Persist:
    """Persist gives the group a table, stored in the compacted topic '<group>-table'."""

    codec: Codec


@dataclass(frozen=True)
class Visitor:
    """Visitor is a callback run over every key of the active partitions by Processor.visit_all."""

    name: str
    callback: ProcessCallback


Edge = Input | Inputs | Loop | Join | Lookup | Output | Persist | Visitor


@dataclass
class GroupGraph:
    """GroupGraph is a validated processor group definition, built by define_group."""

    group: str
    inputs: list[Input] = field(default_factory=list)
    loop: Loop | None = None
    joins: list[Join] = field(default_factory=list)
    lookups: list[Lookup] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    persist: Persist | None = None
    visitors: list[Visitor] = field(default_factory=list)

    def table_topic(self) -> str:
        """table_topic is the group table topic ('<group>-table')."""
        return group_table(self.group)

    def loop_topic(self) -> str:
        """loop_topic is the loopback topic ('<group>-loop')."""
        return loop_stream(self.group)

    def consumed_topics(self) -> list[str]:
        """consumed_topics are the topics the group's consumer subscribes to: inputs and the loop."""
        topics = [edge.topic for edge in self.inputs]
        if self.loop is not None:
            topics.append(self.loop_topic())
        return topics

    def copartitioned_topics(self) -> list[str]:
        """copartitioned_topics must all have the same partition count: inputs, loop, joins, table."""
        topics = self.consumed_topics() + [join.table for join in self.joins]
        if self.persist is not None:
            topics.append(self.table_topic())
        return topics

    def callbacks(self) -> dict[str, tuple[Codec, ProcessCallback]]:
        """callbacks maps each consumed topic to the codec and callback of its edge."""
        result = {edge.topic: (edge.codec, edge.callback) for edge in self.inputs}
        if self.loop is not None:
            result[self.loop_topic()] = (self.loop.codec, self.loop.callback)
        return result

    def output_codecs(self) -> dict[str, Codec]:
        """output_codecs maps each declared output topic to its codec."""
        return {edge.topic: edge.codec for edge in self.outputs}

    def visitor(self, name: str) -> Visitor:
        """visitor returns the Visitor edge called name or raises GraphError."""
        for edge in self.visitors:
            if edge.name == name:
                return edge
        raise GraphError(f"group '{self.group}' has no visitor named '{name}'")

    def describe(self) -> dict[str, Any]:
        """describe returns the graph's topics and codecs as plain data (the operator's contract)."""

        def topic(name: str, codec: Codec) -> dict[str, str]:
            return {"topic": name, "codec": codec_name(codec)}

        return {
            "group": self.group,
            "inputs": [topic(e.topic, e.codec) for e in self.inputs],
            "loop": topic(self.loop_topic(), self.loop.codec) if self.loop else None,
            "joins": [topic(e.table, e.codec) for e in self.joins],
            "lookups": [topic(e.table, e.codec) for e in self.lookups],
            "outputs": [topic(e.topic, e.codec) for e in self.outputs],
            "persist": topic(self.table_topic(), self.persist.codec) if self.persist else None,
            "visitors": [e.name for e in self.visitors],
        }


def define_group(group: str, *edges: Edge) -> GroupGraph:
    """define_group builds a GroupGraph from edges and validates it, raising GraphError (B1)."""
    if not isinstance(group, str) or not group:
        raise GraphError("group name must be a non-empty string")
    graph = GroupGraph(group)
    for edge in edges:
        if isinstance(edge, Inputs):
            graph.inputs.extend(edge.edges())
        elif isinstance(edge, Input):
            graph.inputs.append(edge)
        elif isinstance(edge, Loop):
            if graph.loop is not None:
                raise GraphError(f"group '{group}' has more than one Loop edge")
            graph.loop = edge
        elif isinstance(edge, Join):
            graph.joins.append(edge)
        elif isinstance(edge, Lookup):
            graph.lookups.append(edge)
        elif isinstance(edge, Output):
            graph.outputs.append(edge)
        elif isinstance(edge, Persist):
            if graph.persist is not None:
                raise GraphError(f"group '{group}' has more than one Persist edge")
            graph.persist = edge
        elif isinstance(edge, Visitor):
            graph.visitors.append(edge)
        else:
            raise GraphError(f"group '{group}': {edge!r} is not an edge")
    _validate(graph)
    return graph


def _validate(graph: GroupGraph) -> None:
    group = graph.group
    if not graph.inputs:
        raise GraphError(f"group '{group}' has no input")
    reserved = {graph.table_topic(), graph.loop_topic()}
    named: list[tuple[str, str]] = (
        [("Input", e.topic) for e in graph.inputs]
        + [("Join", e.table) for e in graph.joins]
        + [("Lookup", e.table) for e in graph.lookups]
        + [("Output", e.topic) for e in graph.outputs]
    )
    for kind, topic in named:
        if not isinstance(topic, str) or not topic:
            raise GraphError(f"group '{group}': {kind} edge has an empty topic name")
        if topic in reserved:
            raise GraphError(
                f"group '{group}': {kind} edge names '{topic}' directly; "
                "use Persist for the group table and Loop for the loop topic"
            )
    _reject_duplicates(group, "input topic", [e.topic for e in graph.inputs])
    _reject_duplicates(group, "joined table", [e.table for e in graph.joins])
    _reject_duplicates(group, "lookup table", [e.table for e in graph.lookups])
    _reject_duplicates(group, "output topic", [e.topic for e in graph.outputs])
    _reject_duplicates(group, "visitor", [e.name for e in graph.visitors])
    if graph.visitors and graph.persist is None:
        raise GraphError(f"group '{group}' has a Visitor but no Persist edge: visitors need a group table")
    for visitor in graph.visitors:
        if not visitor.name:
            raise GraphError(f"group '{group}': Visitor edge has an empty name")


def _reject_duplicates(group: str, what: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise GraphError(f"group '{group}': {what} '{name}' is declared twice")
        seen.add(name)
