"""ProcessorOptions' one definition: every field's flag, PYGOKA_* variable and ProcessorGroup key come from it,
and so do the checks made by ProcessorOptions, `pygoka run` and (through the CRD schema) the API server."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from option_samples import sample
from pygoka.cli import build_parser
from pygoka.cli.loading import RunConfig, UsageError, load_target
from pygoka.cli.options import CLI_OPTIONS, resolve_options
from pygoka.option_spec import OptionSpec
from pygoka.options import OPTIONS, ProcessorOptions

ROOT = Path(__file__).resolve().parents[2]


def invalid(spec: OptionSpec) -> list[tuple[str, Any]]:
    """invalid are texts a flag or variable of spec must refuse, each with the Python value ProcessorOptions must
    refuse too (None: the text is no value of the option's type at all)."""
    texts: list[tuple[str, Any]] = [(text, None) for text in {
        "bool": ["maybe"], "int": ["twelve", "1.5"], "float": ["fast"], "map": ["a=b", "[1]"]}.get(spec.kind or "", [])]
    if spec.choices:
        texts.append(("not_a_choice", "not_a_choice"))
    if spec.minimum is not None:
        bound = int(spec.minimum) if spec.exclusive else int(spec.minimum) - 1
        texts.append((str(bound), bound))
    return texts


def run_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", "m:g", *argv])


def test_every_field_has_one_spec_and_unique_names() -> None:
    fields = [field.name for field in dataclasses.fields(ProcessorOptions)]
    assert [spec.field for spec in OPTIONS] == fields
    for attribute in ("flag", "env", "key"):
        names = [getattr(spec, attribute) for spec in OPTIONS]
        assert len(set(names)) == len(names), attribute
    for spec in OPTIONS:
        assert (spec.kind is None) == (spec.place == "python"), spec.field
        assert spec.help.endswith("."), spec.field


@pytest.mark.parametrize("spec", CLI_OPTIONS, ids=[spec.field for spec in CLI_OPTIONS])
def test_variable_and_flag_set_the_option(spec: OptionSpec) -> None:
    value = sample(spec)
    from_env = resolve_options(run_args(), {spec.env: spec.format(value)}, {})
    assert from_env == {spec.field: value}
    if spec.kind == "bool":
        argv = [spec.flag]
    elif spec.kind == "map":
        argv = [arg for key, item in value.items() for arg in (spec.flag, f"{key}={item}")]
    else:
        argv = [spec.flag, str(value)]
    # The flag wins over the variable.
    assert resolve_options(run_args(*argv), {spec.env: spec.format(sample_other(spec))}, {}) == {spec.field: value}
    assert ProcessorOptions(**from_env) is not None


def sample_other(spec: OptionSpec) -> Any:
    if spec.kind == "bool":
        return False
    if spec.kind == "map":
        return {}
    if spec.choices:
        return spec.choices[0]
    return sample(spec) * 2 if spec.kind in ("int", "float") else "other"


INVALID = [(spec, text, value) for spec in CLI_OPTIONS for text, value in invalid(spec)]


@pytest.mark.parametrize(("spec", "text", "value"), INVALID, ids=[f"{spec.field}={text}" for spec, text, _ in INVALID])
def test_invalid_values_are_refused_naming_the_variable_or_field(spec: OptionSpec, text: str, value: Any) -> None:
    with pytest.raises(UsageError, match=re.escape(f"${spec.env} must be")):
        resolve_options(run_args(), {spec.env: text}, {})
    if value is not None:
        with pytest.raises(ValueError, match=f"^{spec.field} must be"):
            ProcessorOptions(**{spec.field: value})


def test_unset_options_keep_their_defaults_and_kafka_settings_reach_both_clients() -> None:
    kafka = {"security.protocol": "SASL_SSL"}
    options = resolve_options(run_args("--consumer-config", "security.protocol=SSL"), {"PYGOKA_PRODUCER_CONFIG": ""},
                              kafka)
    assert options == {"consumer_config": {"security.protocol": "SSL"}, "producer_config": kafka}


def factory(config: RunConfig) -> Any:
    from pygoka import codec, define_group
    from pygoka.graph import Input, Persist

    graph = define_group("factory-group", Input("in", codec.String(), lambda ctx, msg: None), Persist(codec.Int64()))
    return config.processor(graph, batch_size=7)


def test_a_factory_receives_the_resolved_options() -> None:
    """A MODULE:ATTR callable of one argument gets the RunConfig; its processor() keeps brokers and options."""
    config = RunConfig("kafka:9092", {"group_instance_id": "pod-1", "guarantee": "exactly_once",
                                      "consumer_config": {"sasl.username": "u"}}, {"sasl.username": "u"})
    processor = load_target(f"{__name__}:factory", config)
    assert processor.brokers == "kafka:9092"
    assert processor.options.group_instance_id == "pod-1" and processor.options.exactly_once
    assert processor.options.consumer_config == {"sasl.username": "u"} and processor.options.batch_size == 7


def two_arguments(a: Any, b: Any) -> Any:
    return None


def test_a_callable_of_two_arguments_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=re.escape("with one (a pygoka.cli.RunConfig)")):
        load_target(f"{__name__}:two_arguments")


def test_docs_name_every_option() -> None:
    """docs/processor-options.md's table of names has a row per field giving its flag, variable and spec key."""
    text = (ROOT / "docs" / "processor-options.md").read_text()
    table = text[text.index("## Names outside Python"):]
    for spec in OPTIONS:
        row = next((line for line in table.splitlines() if line.startswith(f"| `{spec.field}` |")), None)
        assert row is not None, spec.field
        if spec.place != "python":
            assert f"`{spec.flag}`" in row and f"`{spec.env}`" in row, row
        if spec.place in ("options", "topics"):
            prefix = "spec.options." if spec.place == "options" else "spec."
            assert f"`{prefix}{spec.key}`" in row, row


def test_pygoka_run_hands_a_factory_what_the_operator_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pod's variables and mounted Kafka Secret reach a factory's processor through `pygoka run`'s build."""
    from pygoka.cli import run

    secret = tmp_path / "kafka"
    secret.mkdir()
    (secret / "sasl.username").write_text("alice\n")
    for name, value in {"PYGOKA_BROKERS": "kafka:9092", "PYGOKA_INSTANCE_ID": "clicks-2",
                        "PYGOKA_GUARANTEE": "exactly_once", "PYGOKA_KAFKA_CONFIG_DIR": str(secret)}.items():
        monkeypatch.setenv(name, value)
    processor = run.build(build_parser().parse_args(["run", f"{__name__}:factory"]))
    assert processor.brokers == "kafka:9092"
    assert processor.options.group_instance_id == "clicks-2" and processor.options.exactly_once
    assert processor.options.consumer_config == processor.options.producer_config == {"sasl.username": "alice"}
