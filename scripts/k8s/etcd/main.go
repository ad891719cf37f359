// Command etcd is the etcd server built from go.etcd.io/etcd/server/v3: etcd's
// own main lives in a module whose go.mod uses replace directives, so
// `go install` refuses it; etcdmain.Main is the same entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
