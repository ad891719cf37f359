"""Leader election of operator replicas through kopf peering (issue 4), on the shared local control plane.

Two operator processes run with the chart's peering settings: the first one started leads and reconciles,
the other pauses; when the leader is killed (SIGKILL: no clean goodbye), the follower takes over once the
leader's keep-alive lifetime has passed and reconciles a ProcessorGroup created after the kill.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest
from helpers import Names, wait_until
from operator_cluster import (
    CHART,
    Cluster,
    processor_group,
    run_operator,
    wait_for,
)

pytestmark = [pytest.mark.k8s, pytest.mark.kafka, pytest.mark.timeout(900)]
LIFETIME = 8


def peers(cluster: Cluster, peering: str) -> dict[str, Any]:
    """peers are the keep-alives the operators wrote into the ClusterKopfPeering, keyed by identity."""
    found = cluster.get("clusterkopfpeering", peering)
    return dict((found or {}).get("status") or {})


def test_one_replica_leads_and_a_follower_takes_over(installed: Cluster, brokers: str, tmp_path: Path,
                                                      names: Names) -> None:
    """Only the leader reconciles; after it is killed the follower resumes and reconciles a new group."""
    namespace, release, peering = names("peered"), names("ha"), names("peering")
    installed.kubectl("create", "namespace", namespace)
    installed.call("helm", "install", release, str(CHART), "-n", namespace, "--skip-crds",
                   "--set", "replicaCount=2", "--set", f"peering.name={peering}",
                   "--set", f"peering.lifetimeSeconds={LIFETIME}", "--set", f"kafka.bootstrapServers={brokers}")
    assert installed.get("clusterkopfpeering", peering) is not None, "the chart creates the peering object"
    account = f"{release}-pygoka-operator"
    sa = f"system:serviceaccount:{namespace}:{account}"
    assert installed.kubectl("auth", "can-i", "patch", f"clusterkopfpeerings.kopf.dev/{peering}", "--as", sa,
                             check=False).stdout.strip() == "yes"
    env = {"PYGOKA_OPERATOR_PEERING": peering, "PYGOKA_OPERATOR_PEERING_LIFETIME": str(LIFETIME)}

    with contextlib.ExitStack() as stack:
        leader = stack.enter_context(run_operator(installed, brokers, tmp_path / "leader", account, namespace,
                                                  extra_env=env))
        wait_until(lambda: len(peers(installed, peering)) == 1, 30, interval=0.5, message="leader's keep-alive")
        follower = stack.enter_context(run_operator(installed, brokers, tmp_path / "follower", account,
                                                    namespace, extra_env=env))
        # kopf starts paused and resumes only when no live peer outranks it: the follower stays paused.
        wait_until(lambda: len(peers(installed, peering)) == 2, 30, interval=0.5, message="follower's keep-alive")
        assert "Resuming operations" in leader.log_text()

        first = names("first")
        installed.apply(namespace, processor_group(first, inputs=[names("in")]))
        sts = wait_for(lambda: installed.get("statefulset", first, "-n", namespace), lambda s: True,
                       "StatefulSet from the leader")
        assert len(sts["metadata"]["ownerReferences"]) == 1
        wait_until(lambda: f"[{namespace}/{first}]" in leader.log_text(), 30, interval=0.5,
                   message="leader handled the first group")
        assert f"[{namespace}/{first}]" not in follower.log_text()
        assert "Resuming operations" not in follower.log_text()

        # SIGKILL: the leader cannot remove itself; the follower waits out its keep-alive lifetime.
        leader.process.kill()
        leader.process.wait()
        wait_until(lambda: "Resuming operations" in follower.log_text(), LIFETIME * 6, interval=0.5,
                   message="follower resumes after the leader's lifetime")
        second = names("second")
        installed.apply(namespace, processor_group(second, inputs=[names("in")]))
        wait_for(lambda: installed.get("statefulset", second, "-n", namespace), lambda s: True,
                 "StatefulSet from the new leader")
        wait_until(lambda: f"[{namespace}/{second}]" in follower.log_text(), 30, interval=0.5,
                   message="follower handled the second group")
        assert follower.process.poll() is None
    installed.kubectl("delete", "pg", "--all", "-n", namespace, "--wait=false")
