"""pygoka.web: a monitor page, table queries, Kubernetes probes and Prometheus metrics over HTTP."""

from pygoka.web.server import MonitorServer

__all__ = ["MonitorServer"]
