"""Group graph definition and validation (B1, B2)."""

from __future__ import annotations

from typing import Any

import pytest
from pygoka import (
    Context,
    GraphError,
    Input,
    Inputs,
    Join,
    Lookup,
    Loop,
    Output,
    Persist,
    Visitor,
    codec,
    define_group,
    group_table,
    loop_stream,
)
from pygoka.graph import Edge


def noop(ctx: Context, msg: Any) -> None:
    """noop is a callback that does nothing."""


def other(ctx: Context, msg: Any) -> None:
    """other is a second callback, distinguishable from noop."""


def graph_error(*edges: Edge, group: str = "g") -> str:
    """graph_error defines a group expected to be invalid and returns the GraphError message."""
    with pytest.raises(GraphError) as info:
        define_group(group, *edges)
    return str(info.value)


# -- B1: validation ------------------------------------------------------------------------------


def test_no_input_is_rejected() -> None:
    assert "no input" in graph_error(Persist(codec.Int64()))


def test_no_edges_at_all_is_rejected() -> None:
    assert "no input" in graph_error()


def test_only_a_loop_is_not_an_input() -> None:
    assert "no input" in graph_error(Loop(codec.String(), noop))


def test_two_loops_are_rejected() -> None:
    message = graph_error(Input("in", codec.String(), noop), Loop(codec.String(), noop), Loop(codec.Int64(), other))
    assert "more than one Loop" in message
    assert "'g'" in message


def test_two_persists_are_rejected() -> None:
    message = graph_error(Input("in", codec.String(), noop), Persist(codec.Int64()), Persist(codec.Int64()))
    assert "more than one Persist" in message


@pytest.mark.parametrize(
    ("edge", "kind", "topic"),
    [
        (Input("g-table", codec.String(), noop), "Input", "g-table"),
        (Input("g-loop", codec.String(), noop), "Input", "g-loop"),
        (Output("g-table", codec.String()), "Output", "g-table"),
        (Output("g-loop", codec.String()), "Output", "g-loop"),
        (Join("g-table", codec.String()), "Join", "g-table"),
        (Lookup("g-table", codec.String()), "Lookup", "g-table"),
        (Lookup("g-loop", codec.String()), "Lookup", "g-loop"),
    ],
)
def test_edges_naming_own_table_or_loop_are_rejected(edge: Edge, kind: str, topic: str) -> None:
    message = graph_error(Input("in", codec.String(), noop), edge)
    assert f"{kind} edge names '{topic}' directly" in message


def test_inputs_naming_own_table_is_rejected() -> None:
    message = graph_error(Inputs(["in", "g-table"], codec.String(), noop))
    assert "names 'g-table' directly" in message


def test_another_groups_table_is_allowed() -> None:
    graph = define_group("g", Input("in", codec.String(), noop), Join("h-table", codec.Int64()),
                         Input("h-loop", codec.String(), other))
    assert [j.table for j in graph.joins] == ["h-table"]
    assert [e.topic for e in graph.inputs] == ["in", "h-loop"]


def test_visitor_without_persist_is_rejected() -> None:
    message = graph_error(Input("in", codec.String(), noop), Visitor("reset", noop))
    assert "Visitor" in message
    assert "no Persist" in message


def test_visitor_with_persist_is_accepted() -> None:
    graph = define_group("g", Input("in", codec.String(), noop), Persist(codec.Int64()), Visitor("reset", noop))
    assert graph.visitor("reset").callback is noop


def test_unknown_visitor_is_a_graph_error() -> None:
    graph = define_group("g", Input("in", codec.String(), noop), Persist(codec.Int64()), Visitor("reset", noop))
    with pytest.raises(GraphError, match="no visitor named 'missing'"):
        graph.visitor("missing")


@pytest.mark.parametrize(
    ("edges", "kind"),
    [
        ((Input("", codec.String(), noop),), "Input"),
        ((Inputs(["a", ""], codec.String(), noop),), "Input"),
        ((Input("in", codec.String(), noop), Output("", codec.String())), "Output"),
        ((Input("in", codec.String(), noop), Join("", codec.String())), "Join"),
        ((Input("in", codec.String(), noop), Lookup("", codec.String())), "Lookup"),
    ],
)
def test_empty_topic_names_are_rejected(edges: tuple[Edge, ...], kind: str) -> None:
    assert f"{kind} edge has an empty topic name" in graph_error(*edges)


def test_same_input_twice_is_rejected() -> None:
    message = graph_error(Input("in", codec.String(), noop), Input("in", codec.Int64(), other))
    assert "input topic 'in' is declared twice" in message


def test_same_input_twice_through_inputs_is_rejected() -> None:
    message = graph_error(Inputs(["a", "b"], codec.String(), noop), Input("b", codec.String(), noop))
    assert "input topic 'b' is declared twice" in message


def test_duplicate_output_is_rejected() -> None:
    message = graph_error(Input("in", codec.String(), noop), Output("o", codec.String()), Output("o", codec.Int64()))
    assert "output topic 'o' is declared twice" in message


def test_empty_group_name_is_rejected() -> None:
    assert "group name" in graph_error(Input("in", codec.String(), noop), group="")


def test_non_edge_is_rejected() -> None:
    message = graph_error(Input("in", codec.String(), noop), "not an edge")  # type: ignore[arg-type]
    assert "is not an edge" in message


def test_graph_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        define_group("g")


# -- B2: edges and names -------------------------------------------------------------------------


def test_inputs_expands_to_one_edge_per_topic_sharing_the_callback() -> None:
    shared = codec.Json()
    graph = define_group("g", Inputs(["a", "b", "c"], shared, noop))
    assert [edge.topic for edge in graph.inputs] == ["a", "b", "c"]
    assert all(edge.callback is noop for edge in graph.inputs)
    assert all(edge.codec is shared for edge in graph.inputs)
    assert graph.inputs == Inputs(["a", "b", "c"], shared, noop).edges()


def test_inputs_accepts_any_iterable() -> None:
    edge = Inputs((t for t in ["x", "y"]), codec.String(), noop)
    assert edge.topics == ("x", "y")


def test_group_table_and_loop_stream_names() -> None:
    assert group_table("g") == "g-table"
    assert loop_stream("g") == "g-loop"
    graph = define_group("clicks", Input("in", codec.String(), noop))
    assert graph.table_topic() == "clicks-table"
    assert graph.loop_topic() == "clicks-loop"


def test_consumed_topics_include_the_loop_and_callbacks_map_them() -> None:
    graph = define_group("g", Inputs(["a", "b"], codec.String(), noop), Loop(codec.Int64(), other))
    assert graph.consumed_topics() == ["a", "b", "g-loop"]
    callbacks = graph.callbacks()
    assert callbacks["a"][1] is noop
    assert callbacks["b"][1] is noop
    assert callbacks["g-loop"][1] is other
    assert isinstance(callbacks["g-loop"][0], codec.Int64)


def test_copartitioned_topics_cover_inputs_loop_joins_and_table_but_not_lookups() -> None:
    graph = define_group("g", Input("a", codec.String(), noop), Loop(codec.String(), other),
                         Join("j-table", codec.Int64()), Lookup("l-table", codec.Int64()), Persist(codec.Int64()))
    assert graph.copartitioned_topics() == ["a", "g-loop", "j-table", "g-table"]


def test_describe_full_graph() -> None:
    graph = define_group(
        "g",
        Inputs(["a", "b"], codec.String(), noop),
        Loop(codec.Json(), other),
        Join("j-table", codec.Int64()),
        Lookup("l-table", codec.Bytes()),
        Output("out", codec.Json()),
        Persist(codec.Int64()),
        Visitor("reset", noop),
    )
    assert graph.describe() == {
        "group": "g",
        "inputs": [{"topic": "a", "codec": "String"}, {"topic": "b", "codec": "String"}],
        "loop": {"topic": "g-loop", "codec": "Json"},
        "joins": [{"topic": "j-table", "codec": "Int64"}],
        "lookups": [{"topic": "l-table", "codec": "Bytes"}],
        "outputs": [{"topic": "out", "codec": "Json"}],
        "persist": {"topic": "g-table", "codec": "Int64"},
        "visitors": ["reset"],
    }


def test_describe_minimal_graph() -> None:
    graph = define_group("g", Input("a", codec.Bytes(), noop))
    assert graph.describe() == {
        "group": "g",
        "inputs": [{"topic": "a", "codec": "Bytes"}],
        "loop": None,
        "joins": [],
        "lookups": [],
        "outputs": [],
        "persist": None,
        "visitors": [],
    }
