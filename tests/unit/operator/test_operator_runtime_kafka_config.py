"""The runtime side of the operator's Kafka Secret: `pygoka run` reads $PYGOKA_KAFKA_CONFIG_DIR files as settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygoka.cli import run
from pygoka.cli.loading import UsageError


def test_each_file_is_a_setting_and_secret_plumbing_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "sasl.username").write_text("alice\n")
    (tmp_path / "security.protocol").write_text("SASL_SSL")
    (tmp_path / "..data").mkdir()
    (tmp_path / "..2026_01_01").write_text("ignored")
    assert run.config_dir_settings(str(tmp_path)) == {"sasl.username": "alice", "security.protocol": "SASL_SSL"}


def test_unset_is_empty_and_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    assert run.config_dir_settings("") == {}
    with pytest.raises(UsageError, match="PYGOKA_KAFKA_CONFIG_DIR"):
        run.config_dir_settings(str(tmp_path / "missing"))


def test_settings_reach_consumer_and_producer_and_flags_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "client.id").write_text("from-secret")
    (tmp_path / "sasl.username").write_text("bob")
    monkeypatch.setenv("PYGOKA_KAFKA_CONFIG_DIR", str(tmp_path))
    parser = run.argparse.ArgumentParser()
    run.register(parser.add_subparsers())
    args = parser.parse_args(["run", "--view", "t-table", "--brokers", "127.0.0.1:1",
                              "--consumer-config", "client.id=from-flag"])
    view = run.build(args)
    consumer = view._consumer_config  # type: ignore[union-attr]
    assert consumer == {"client.id": "from-flag", "sasl.username": "bob"}


def test_processor_gets_the_settings_for_consumer_and_producer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sasl.password").write_text("s3cret")
    monkeypatch.setenv("PYGOKA_KAFKA_CONFIG_DIR", str(tmp_path))
    parser = run.argparse.ArgumentParser()
    run.register(parser.add_subparsers())
    examples = Path(__file__).resolve().parents[3] / "examples" / "k8s"
    args = parser.parse_args(["run", "click_count:graph", "--python-path", str(examples), "--brokers", "127.0.0.1:1"])
    processor = run.build(args)
    assert processor.options.consumer_config == {"sasl.password": "s3cret"}  # type: ignore[union-attr]
    assert processor.options.producer_config == {"sasl.password": "s3cret"}  # type: ignore[union-attr]
