// Command etcd builds the upstream etcd server from module source at a pinned version, so
// tests run against a real etcd without downloading release binaries.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
