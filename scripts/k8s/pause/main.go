// Command pause is the pod sandbox's process: it holds the pod's namespaces, reaps orphaned children and
// exits on SIGTERM or SIGINT. registry.k8s.io/pause cannot be pulled here, so scripts/images.sh builds it.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
