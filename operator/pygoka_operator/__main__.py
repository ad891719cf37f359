"""`python -m pygoka_operator`: run the operator with kopf (liveness at /healthz, namespaces from the env)."""

from __future__ import annotations

import os
import sys

import kopf.cli

from pygoka_operator import rbac
from pygoka_operator.election import start_priority


def arguments(env: dict[str, str]) -> list[str]:
    """arguments are kopf run's flags from PYGOKA_OPERATOR_* variables (the Helm chart sets them)."""
    args = ["run", "--module", "pygoka_operator.handlers", "--module", "pygoka_operator.health",
            f"--liveness=http://0.0.0.0:{env.get('PYGOKA_OPERATOR_HEALTH_PORT', '8080')}/healthz"]
    namespaces = [ns.strip() for ns in env.get("PYGOKA_OPERATOR_NAMESPACES", "").split(",") if ns.strip()]
    if namespaces:
        args += [f"--namespace={ns}" for ns in namespaces]
    else:
        args.append("--all-namespaces")
    level = env.get("PYGOKA_LOG_LEVEL", "INFO").upper()
    if level == "DEBUG":
        args.append("--debug")
    elif level in ("WARNING", "ERROR"):
        args.append("--quiet")
    peering = env.get("PYGOKA_OPERATOR_PEERING", "")
    # Several replicas elect a leader through a (Cluster)KopfPeering object; a single replica needs none.
    if peering:
        priority = env.get("PYGOKA_OPERATOR_PRIORITY") or str(start_priority())
        args += ["--module", "pygoka_operator.election", f"--peering={peering}", f"--priority={priority}"]
    else:
        args.append("--standalone")
    return args


def main() -> None:
    """main checks the operator's RBAC permissions (exit 1 naming each missing one), then runs kopf."""
    status = rbac.verify(os.environ)
    if status != 0:
        sys.exit(status)
    sys.argv = ["kopf", *arguments(dict(os.environ)), *sys.argv[1:]]
    kopf.cli.main()


if __name__ == "__main__":
    main()
