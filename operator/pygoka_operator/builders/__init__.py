"""Pure manifest builders: plain values in, Kubernetes objects (dicts) out; unit-tested without a cluster."""

from pygoka_operator.builders.access import pods_service_account, processor_access
from pygoka_operator.builders.pdb import pod_disruption_budget
from pygoka_operator.builders.service import headless_service, query_service
from pygoka_operator.builders.statefulset import processor_statefulset
from pygoka_operator.builders.view import view_statefulset

__all__ = ["headless_service", "pod_disruption_budget", "pods_service_account", "processor_access",
           "processor_statefulset", "query_service", "view_statefulset"]
