// Command kfakepeer runs franz-go's in-memory Kafka (pkg/kfake) as a process of its own, so
// that `make bench` can run the broker's workloads against it and account its CPU and memory
// separately: the protocol-overhead peer of docs/benchmarks.md.
//
//	kfakepeer -addr 127.0.0.1:9092
//
// It prints "listening <addr>" once it accepts connections and stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "host:port to listen on")
	flag.Parse()
	_, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakepeer: -addr %q: %v\n", *addr, err)
		os.Exit(2)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakepeer: -addr %q: bad port\n", *addr)
		os.Exit(2)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.AllowAutoTopicCreation(),
		// Apply retention.bytes every 250 ms: the harness bounds the memory of its produce
		// runs' topics with it.
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": "250"}))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kfakepeer: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", c.ListenAddrs()[0])
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	<-ctx.Done()
	c.Close()
}
