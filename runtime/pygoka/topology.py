"""Topology: the topics a processor group's code reads and writes, and how a declaration contradicts it.

It is what the operator learns from an image (`pygoka graph --json` run there, the GroupGraph.describe() contract)
and what a ProcessorGroup's topic fields declare. differences() is the one comparison both sides use: the operator
refuses a ProcessorGroup whose fields contradict the code it learnt, and `pygoka run` refuses to start a group whose
code contradicts the topology the operator planned with (PYGOKA_EXPECTED_TOPOLOGY), e.g. an image tag pushed again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pygoka.graph import GroupGraph

#: FIELDS are the topology's fields, named as in a ProcessorGroup's spec.
FIELDS = ("group", "inputs", "joins", "lookups", "outputs", "loop", "persist")
#: LISTS are the fields holding topic names; their order means nothing.
LISTS = ("inputs", "joins", "lookups", "outputs")


@dataclass(frozen=True)
class Topology:
    """Topology is a group's name, its topics by role, whether it has a loop and a table, and the table's codec."""

    group: str
    inputs: tuple[str, ...] = ()
    joins: tuple[str, ...] = ()
    lookups: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    loop: bool = False
    persist: bool = True
    #: table_codec names the group table's codec (GroupGraph.describe()'s), when known.
    table_codec: str | None = None

    @classmethod
    def from_graph(cls, graph: GroupGraph) -> Topology:
        """from_graph is the topology of a group graph."""
        return cls.from_description(graph.describe())

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> Topology:
        """from_description reads GroupGraph.describe() (what `pygoka graph --json` prints), raising ValueError
        naming what is missing or malformed."""
        try:
            persist = description["persist"]
            return cls(
                group=str(description["group"]),
                inputs=tuple(str(edge["topic"]) for edge in description["inputs"]),
                joins=tuple(str(edge["topic"]) for edge in description["joins"]),
                lookups=tuple(str(edge["topic"]) for edge in description["lookups"]),
                outputs=tuple(str(edge["topic"]) for edge in description["outputs"]),
                loop=description["loop"] is not None,
                persist=persist is not None,
                table_codec=str(persist["codec"]) if persist is not None else None,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a group graph description (pygoka graph --json): missing or bad {exc}") from None

    def fields(self) -> dict[str, Any]:
        """fields are the topology as a ProcessorGroup spec would declare it (lists, booleans)."""
        return {"group": self.group, **{name: list(getattr(self, name)) for name in LISTS},
                "loop": self.loop, "persist": self.persist}

    def to_status(self) -> dict[str, Any]:
        """to_status is the topology as JSON data (a ProcessorGroup's status.graph, PYGOKA_EXPECTED_TOPOLOGY)."""
        data = self.fields()
        if self.table_codec is not None:
            data["tableCodec"] = self.table_codec
        return data

    @classmethod
    def from_status(cls, data: Mapping[str, Any]) -> Topology:
        """from_status reads to_status()'s data."""
        return cls(group=str(data["group"]), **{name: tuple(data.get(name) or ()) for name in LISTS},
                   loop=bool(data.get("loop")), persist=bool(data.get("persist")), table_codec=data.get("tableCodec"))


@dataclass(frozen=True)
class Difference:
    """Difference is one declared field whose value the code contradicts."""

    field: str
    declared: Any
    actual: Any

    def message(self, declared_in: str, actual_in: str) -> str:
        """message names the field and both values, e.g. "spec.inputs is ['a'] but the code has ['a', 'b']"."""
        return f"{declared_in}.{self.field} is {_show(self.declared)} but {actual_in} has {_show(self.actual)}"


def differences(declared: Mapping[str, Any], actual: Topology) -> list[Difference]:
    """differences are the fields of declared (a subset of FIELDS) whose values actual contradicts; topic lists
    are compared as sets, and a name declared twice counts once."""
    found = []
    values = actual.fields()
    for name in FIELDS:
        if name not in declared:
            continue
        want, have = declared[name], values[name]
        if name in LISTS:
            same = sorted(set(map(str, want or []))) == sorted(set(have))
        elif name == "group":
            same = str(want) == have
        else:
            same = bool(want) == have
        if not same:
            found.append(Difference(name, want, have))
    return found


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(str(item) for item in value) + "]"
    return repr(str(value))
