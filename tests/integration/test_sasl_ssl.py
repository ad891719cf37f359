"""pygoka on a TLS + SASL/SCRAM-SHA-512 listener (scripts/kafka.sh PYGOKA_KAFKA_SASL_SSL_PORT), with the
client settings read from a directory (PYGOKA_KAFKA_CONFIG_DIR, how the operator mounts the Kafka Secret).

Emitter, processor, view, `pygoka run` / `pygoka topics` and the operator's topic and lag code connect only to
that listener; a wrong password and an untrusted certificate give errors naming the cause; the password never
shows in logs, errors, the CLI's output, /metrics or the monitor's /api/state.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from helpers import Names, Start, count, free_port, wait_until
from kafka_broker import started_broker
from pygoka import Emitter, Input, Persist, Processor, View, codec, define_group
from pygoka.cli.run import config_dir_settings
from pygoka.errors import AuthenticationError, AuthorizationError
from pygoka.graph import group_table
from pygoka.kafka.config import admin_config
from pygoka.lag import group_lag
from pygoka.lag_reader import LagReader
from pygoka.topic_manager import KafkaTopicManager
from pygoka_operator.kube import redact
from pygoka_operator.model import processor_spec
from pygoka_operator.topics import condition, consumed_topics, kafka_problem, reconcile_topics

pytestmark = pytest.mark.kafka


@dataclass(frozen=True)
class SecureBroker:
    """SecureBroker is a broker's SASL_SSL address and its client settings directory (user pygoka), and its
    PLAINTEXT address (principal ANONYMOUS, a super user of its authorizer)."""

    address: str
    config_dir: Path
    other_ca: Path
    plain: str

    def settings(self, **changes: str) -> dict[str, str]:
        """settings are the directory's librdkafka settings with changes (dots as underscores in the names)."""
        return {**config_dir_settings(str(self.config_dir)), **{k.replace("_", "."): v for k, v in changes.items()}}

    @property
    def password(self) -> str:
        return (self.config_dir / "sasl.password").read_text()


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    work = tmp_path_factory.mktemp("sasl-ssl")
    run, port = work / "run", free_port()
    # ACLs apply to user pygoka only where a test sets some (allow.everyone.if.no.acl.found).
    authorizer = work / "authorizer.properties"
    authorizer.write_text("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
                          "super.users=User:ANONYMOUS;User:admin\nallow.everyone.if.no.acl.found=true\n")
    with started_broker(run, {"PYGOKA_KAFKA_SASL_SSL_PORT": str(port),
                              "PYGOKA_KAFKA_EXTRA_PROPERTIES": str(authorizer)}) as (plain, _kafka):
        yield SecureBroker(f"127.0.0.1:{port}", run / "kafka" / "sasl-ssl" / "client",
                           run / "kafka" / "sasl-ssl" / "other-ca.pem", plain)


def test_the_script_makes_a_client_directory_of_librdkafka_settings(secure: SecureBroker) -> None:
    settings = secure.settings()
    assert {key: value for key, value in settings.items() if key != "sasl.password"} == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "pygoka",
        "ssl.ca.location": str(secure.config_dir.parent / "ca.pem")}
    assert len(secure.password) >= 16
    assert oct((secure.config_dir / "sasl.password").stat().st_mode & 0o777) == "0o600"


def test_emitter_processor_and_view_over_tls_and_scram(secure: SecureBroker, names: Names, tmp_path: Path,
                                                        start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = secure.settings()
    clicks, group = names("clicks"), names("secure")
    KafkaTopicManager(admin_config(secure.address, settings)).ensure_stream(clicks, 3)
    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()))
    proc = Processor(secure.address, graph, consumer_config=settings, producer_config=settings,
                     state_dir=tmp_path / "proc")
    running = start(proc)
    wait_until(proc.recovered, timeout=60, message="processor recovered over SASL_SSL")
    keys = [f"user-{n % 5}" for n in range(20)]
    with Emitter(secure.address, clicks, codec.String(), producer_config=settings) as emitter:
        for key in keys:
            emitter.emit_sync(key, "click")
    view = View(secure.address, group_table(group), codec.Int64(), consumer_config=settings,
                state_dir=tmp_path / "view")
    viewing = start(view)
    wait_until(lambda: view.recovered() and all(view.get(f"user-{n}") == 4 for n in range(5)), timeout=60,
               message="the view sees every count")
    viewing.stop()
    running.stop()
    assert secure.password not in caplog.text


GRAPH = """
from pygoka import Input, Persist, codec, define_group

def count(ctx, msg):
    ctx.set_value((ctx.value() or 0) + 1)

graph = define_group({group!r}, Input({topic!r}, codec.String(), count), Persist(codec.Int64()))
"""


def pygoka(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pygoka.cli", *args], cwd=cwd, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_cli_run_and_topics_read_the_settings_directory(secure: SecureBroker, names: Names, tmp_path: Path) -> None:
    clicks, group = names("clicks"), names("cli-secure")
    (tmp_path / "secure_graph.py").write_text(textwrap.dedent(GRAPH.format(group=group, topic=clicks)))
    settings = secure.settings()
    KafkaTopicManager(admin_config(secure.address, settings)).ensure_stream(clicks, 2)
    with Emitter(secure.address, clicks, codec.String(), producer_config=settings) as emitter:
        for n in range(6):
            emitter.emit_sync(f"user-{n}", "click")
    env = {"PYGOKA_KAFKA_CONFIG_DIR": str(secure.config_dir), "PYGOKA_BROKERS": secure.address}
    port = free_port()
    child = pygoka(["run", "secure_graph:graph", "--state-dir", str(tmp_path / "state"), "--http-port", str(port),
                    "--log-level", "debug"], tmp_path, env)
    try:
        def committed() -> bool:
            report = subprocess.run([sys.executable, "-m", "pygoka.cli", "topics", "secure_graph:graph", "--json"],
                                    cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True,
                                    timeout=120)
            assert report.returncode == 0, report.stderr
            assert secure.password not in report.stdout + report.stderr
            lags = {t["topic"]: t["lag"] for t in json.loads(report.stdout)["topics"]}
            return lags.get(clicks) == 0

        wait_until(committed, timeout=90, interval=1, message="the group committed everything (pygoka topics)")
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        assert "pygoka_" in metrics and secure.password not in metrics
        state = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=10).read().decode()
        assert group in state and secure.password not in state
    finally:
        child.terminate()
        _out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert "Kafka settings from" in err and secure.password not in err


def test_the_operator_s_topic_and_lag_code_over_tls_and_scram(secure: SecureBroker, names: Names) -> None:
    settings = secure.settings()
    clicks, group = names("clicks"), names("op-secure")
    spec = processor_spec({"image": "i", "graph": "m:g", "group": group, "inputs": [clicks], "partitions": 3})
    kafka = KafkaTopicManager(admin_config(secure.address, settings), timeout=15)
    check, observed, _plan, partitions = reconcile_topics(kafka, "pg", spec)
    assert condition(check)[:2] == ("True", "TopicsReady")
    assert (partitions, observed[group_table(group)].partitions) == (3, 3)
    with Emitter(secure.address, clicks, codec.String(), producer_config=settings) as emitter:
        for n in range(7):
            emitter.emit_sync(f"user-{n}", "click")
    offsets = LagReader(admin_config(secure.address, settings)).offsets(group, consumed_topics("pg", spec))
    assert group_lag(offsets) == 7


@pytest.mark.parametrize("case", ["wrong password", "untrusted certificate"])
def test_a_refused_handshake_names_its_cause_and_never_the_password(
        secure: SecureBroker, names: Names, tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-the-password-42"
    if case == "wrong password":
        settings, cause = secure.settings(sasl_password=wrong), "SASL authentication error"
    else:
        settings, cause = secure.settings(ssl_ca_location=str(secure.other_ca)), "certificate verify failed"
    graph = define_group(names("refused"), Input(names("clicks"), codec.String(), count), Persist(codec.Int64()))
    with pytest.raises(AuthenticationError) as raised:
        Processor(secure.address, graph, consumer_config=settings, producer_config=settings,
                  state_dir=tmp_path / "state").run()
    message = str(raised.value)
    assert cause in message and "check the certificate authority, sasl.username and sasl.password" in message
    reason, text = kafka_problem(secure.address, raised.value)
    assert reason == "KafkaAuthenticationFailed" and cause in text
    for secret in (wrong, secure.password):
        assert secret not in message and secret not in caplog.text
        assert secret not in redact(text, settings)


def test_a_creation_the_acls_refuse_names_the_topic_and_the_acl(secure: SecureBroker, names: Names,
                                                                tmp_path: Path) -> None:
    """User pygoka may do everything on the cluster and on topics acl-denied-*, except create them."""
    admin = AdminClient({"bootstrap.servers": secure.plain})
    user = "User:pygoka"
    bindings = [AclBinding(restype, name, pattern, user, "*", operation, permission)
                for restype, name, pattern in ((ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL),
                                               (ResourceType.TOPIC, "acl-denied-", ResourcePatternType.PREFIXED))
                for operation, permission in ((AclOperation.ALL, AclPermissionType.ALLOW),
                                              (AclOperation.CREATE, AclPermissionType.DENY))]
    for future in admin.create_acls(bindings).values():
        future.result(30)
    clicks, group = names("acl-denied-clicks"), names("acl-denied")
    KafkaTopicManager(admin_config(secure.plain)).ensure_stream(clicks, 2)
    settings = secure.settings()
    graph = define_group(group, Input(clicks, codec.String(), count), Persist(codec.Int64()))
    with pytest.raises(AuthorizationError) as raised:
        Processor(secure.address, graph, consumer_config=settings, producer_config=settings,
                  state_dir=tmp_path / "state").run()
    assert raised.value.topic == group_table(group)
    assert str(raised.value) == (
        f"cannot create topic '{group_table(group)}': TOPIC_AUTHORIZATION_FAILED: "
        f"{raised.value.kafka_error.str()} (the principal needs the Create ACL on topic '{group_table(group)}' "
        "or on the cluster)")
    assert kafka_problem(secure.address, raised.value)[0] == "KafkaAuthorizationFailed"
