"""The Kubernetes demo's clicks: emit them to Kafka, then check the View's counts through the API server.

    demo_clicks.py emit BROKERS TOPIC PARTITIONS CLICKS USERS TRUTH_FILE
    demo_clicks.py check NAMESPACE SERVICE TABLE TRUTH_FILE [TIMEOUT]

emit adds what it sent to TRUTH_FILE (JSON: user -> clicks); check asks the View's query Service for every user
(`kubectl get --raw .../services/SERVICE:query/proxy/tables/TABLE/USER`) until all answer the truth, then prints the
top users. kubectl comes from PATH and its KUBECONFIG from the environment.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from pygoka import Emitter
from pygoka.codec import String


def emit(brokers: str, topic: str, partitions: int, clicks: int, users: int, truth_file: Path) -> None:
    truth = Counter(json.loads(truth_file.read_text()) if truth_file.exists() else {})
    rng = random.Random(len(truth) + sum(truth.values()))
    with Emitter(brokers, topic, String(), partitions=partitions) as emitter:
        for _ in range(clicks):
            user = f"user-{int(rng.paretovariate(1.2)) % users}"
            emitter.emit(user, "click")
            truth[user] += 1
        if emitter.flush(60) != 0:
            sys.exit("demo: not every click was delivered to Kafka")
    truth_file.write_text(json.dumps(truth))
    print(f"emitted {clicks} clicks of {users} users to {topic} at {brokers}")


def count(namespace: str, service: str, table: str, user: str) -> int | None:
    path = f"/api/v1/namespaces/{namespace}/services/{service}:query/proxy/tables/{table}/{user}"
    result = subprocess.run(["kubectl", "get", "--raw", path], capture_output=True, text=True)
    return json.loads(result.stdout).get("value") if result.returncode == 0 else None


def check(namespace: str, service: str, table: str, truth_file: Path, timeout: float) -> None:
    truth = Counter(json.loads(truth_file.read_text()))
    deadline = time.monotonic() + timeout
    while True:
        answered = {user: count(namespace, service, table, user) for user in truth}
        wrong = {user: (n, answered[user]) for user, n in truth.items() if answered[user] != n}
        if not wrong:
            break
        if time.monotonic() > deadline:
            sys.exit(f"demo: after {timeout:.0f} s the View still differs for {len(wrong)} users, e.g. "
                     f"{dict(list(wrong.items())[:3])} (emitted, answered)")
        time.sleep(2)
    top = ", ".join(f"{user}={n}" for user, n in truth.most_common(5))
    print(f"the View answers every one of {len(truth)} users exactly ({sum(truth.values())} clicks); top: {top}")


def main(argv: list[str]) -> None:
    if len(argv) == 7 and argv[0] == "emit":
        emit(argv[1], argv[2], int(argv[3]), int(argv[4]), int(argv[5]), Path(argv[6]))
    elif len(argv) in (5, 6) and argv[0] == "check":
        check(argv[1], argv[2], argv[3], Path(argv[4]), float(argv[5]) if len(argv) == 6 else 180.0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
