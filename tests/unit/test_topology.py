"""Topology: what a group's code reads and writes, compared with what a ProcessorGroup declares; `pygoka graph
--crd` prints a ProcessorGroup declaring it; `pygoka run` refuses code contradicting PYGOKA_EXPECTED_TOPOLOGY."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pygoka import Input, Join, Lookup, Loop, Output, Persist, codec, define_group
from pygoka.cli import build_parser, main
from pygoka.cli.loading import UsageError
from pygoka.topology import Difference, Topology, differences

GRAPH = define_group("clicks", Input("user-clicks", codec.String(), lambda ctx, msg: None),
                     Input("admin-clicks", codec.String(), lambda ctx, msg: None), Join("users-table", codec.Json()),
                     Lookup("config-table", codec.Json()), Output("alerts", codec.String()),
                     Loop(codec.String(), lambda ctx, msg: None), Persist(codec.Int64()))


def test_the_topology_of_a_graph_and_its_status_round_trip() -> None:
    topology = Topology.from_graph(GRAPH)
    assert topology == Topology("clicks", ("user-clicks", "admin-clicks"), ("users-table",), ("config-table",),
                                ("alerts",), loop=True, persist=True, table_codec="Int64")
    assert Topology.from_status(json.loads(json.dumps(topology.to_status()))) == topology
    with pytest.raises(ValueError, match="not a group graph description"):
        Topology.from_description({"group": "g", "inputs": []})


def test_differences_name_the_field_and_both_values() -> None:
    topology = Topology.from_graph(GRAPH)
    # Order and repetition of topic names mean nothing; fields not declared are not compared.
    assert differences({"inputs": ["admin-clicks", "user-clicks", "user-clicks"], "loop": True}, topology) == []
    found = differences({"group": "click-count", "inputs": ["user-clicks"], "persist": False, "outputs": []},
                        topology)
    assert found == [Difference("group", "click-count", "clicks"),
                     Difference("inputs", ["user-clicks"], ["user-clicks", "admin-clicks"]),
                     Difference("outputs", [], ["alerts"]), Difference("persist", False, True)]
    assert [d.message("spec", "the code") for d in found] == [
        "spec.group is 'click-count' but the code has 'clicks'",
        "spec.inputs is [user-clicks] but the code has [user-clicks, admin-clicks]",
        "spec.outputs is [] but the code has [alerts]",
        "spec.persist is false but the code has true",
    ]


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "topology_app.py").write_text(textwrap.dedent("""
        from pygoka import Input, Join, Persist, codec, define_group
        graph = define_group("Click_Count", Input("user-clicks", codec.String(), lambda ctx, msg: None),
                             Join("users-table", codec.Json()), Persist(codec.Int64()))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield "topology_app:graph"
    sys.modules.pop("topology_app", None)


def test_graph_crd_prints_a_processor_group_declaring_the_code(module: str, capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    assert main(["graph", module, "--crd", "--image", "registry.example/clicks:2"]) == 0
    resource = yaml.safe_load(capsys.readouterr().out)
    assert resource == {"apiVersion": "pygoka.io/v1alpha1", "kind": "ProcessorGroup",
                        "metadata": {"name": "click-count"},
                        "spec": {"image": "registry.example/clicks:2", "graph": module, "group": "Click_Count",
                                 "inputs": ["user-clicks"], "joins": ["users-table"], "lookups": [], "outputs": [],
                                 "loop": False, "persist": True}}
    topology = Topology.from_description(json.loads(_graph_json(module, tmp_path)))
    declared = {key: resource["spec"][key] for key in ("group", "inputs", "joins", "lookups", "outputs", "loop",
                                                        "persist")}
    assert differences(declared, topology) == []


def _graph_json(module: str, tmp_path: Path) -> str:
    out = tmp_path / "termination-log"
    assert main(["graph", module, "--json", "--output", str(out)]) == 0
    text = out.read_text()
    assert "\n" not in text and len(text) < 4096  # compact: a termination message holds at most 4096 bytes
    return text


def test_run_refuses_code_contradicting_the_expected_topology(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pygoka.cli import run

    monkeypatch.setenv("PYGOKA_BROKERS", "kafka:9092")
    monkeypatch.setenv("PYGOKA_EXPECTED_TOPOLOGY", json.dumps({"group": "Click_Count", "inputs": ["user-clicks"]}))
    assert run.build(build_parser().parse_args(["run", module])).graph.group == "Click_Count"
    monkeypatch.setenv("PYGOKA_EXPECTED_TOPOLOGY", json.dumps({"group": "click-count", "joins": []}))
    with pytest.raises(UsageError, match=r"contradicts its ProcessorGroup: spec.group is 'click-count' but the code "
                                         r"has 'Click_Count'; spec.joins is \[\] but the code has \[users-table\]"):
        run.build(build_parser().parse_args(["run", module]))
