"""spec.options and the topic fields reach the pods as the PYGOKA_* variables `pygoka run` reads back, for every
ProcessorOptions field the spec may set; the CRD's schema of each is the OptionSpec's."""

from __future__ import annotations

from typing import Any

from option_samples import sample
from pygoka.cli import build_parser
from pygoka.cli.options import resolve_options
from pygoka.options import OPTIONS
from pygoka_operator.builders import processor_statefulset
from pygoka_operator.client_config import client_config_problems
from pygoka_operator.model import Owner, processor_spec
from pygoka_operator.schema import PROCESSOR_SPEC

OWNER = Owner("ProcessorGroup", "clicks", "apps", "uid-1")
SPEC_SET = [spec for spec in OPTIONS if spec.place in ("options", "topics")]


def pod_env(spec: dict[str, Any]) -> dict[str, str]:
    statefulset = processor_statefulset(OWNER, processor_spec(spec), "kafka:9092")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def test_every_option_the_spec_sets_reaches_pygoka_run_unchanged() -> None:
    values = {spec.field: sample(spec) for spec in SPEC_SET}
    resource: dict[str, Any] = {"image": "i", "graph": "m:g", "options": {}}
    for spec in SPEC_SET:
        (resource["options"] if spec.place == "options" else resource)[spec.key] = values[spec.field]
    env = pod_env(resource)
    resolved = resolve_options(build_parser().parse_args(["run", "m:g"]), env, {})
    assert {field: resolved[field] for field in values} == values


def test_the_schema_of_each_option_is_its_option_spec() -> None:
    props = PROCESSOR_SPEC["properties"]
    assert set(props["options"]["properties"]) == {spec.key for spec in OPTIONS if spec.place == "options"}
    for spec in SPEC_SET:
        schema = props["options"]["properties"][spec.key] if spec.place == "options" else props[spec.key]
        for key, value in spec.schema().items():
            if key != "description":
                assert schema[key] == value, (spec.key, key)
    # Per-pod and Python-only fields have no place in the spec.
    assert not {spec.key for spec in OPTIONS if spec.place in ("pod", "python")} & (set(props) | set(
        props["options"]["properties"]))


def test_librdkafka_refuses_a_misspelt_or_unparsable_setting_naming_the_map() -> None:
    """What the schema cannot tell (settings maps are strings) librdkafka checks; the message names the field."""
    problems = client_config_problems({"consumerConfig": {"session.timeout.msec": "10"},
                                       "producerConfig": {"batch.num.messages": "many"}})
    assert problems == ['spec.options.consumerConfig: No such configuration property: "session.timeout.msec"',
                        'spec.options.producerConfig: Invalid value for configuration property "batch.num.messages"']
    assert client_config_problems({"consumerConfig": {"session.timeout.ms": "10000"},
                                   "producerConfig": {"linger.ms": "20"}}) == []
