module pygoka.local/k8s/pause

go 1.25.0
