"""pygoka's Kubernetes operator: ProcessorGroup and View custom resources reconciled by kopf."""

GROUP = "pygoka.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MANAGER = "pygoka-operator"
