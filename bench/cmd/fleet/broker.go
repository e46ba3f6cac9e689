package main

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// broker is a kfake cluster that can be stopped and started again on the
// same ports with its data: kfake.DataDir makes Close write the cluster's
// state (topics, their IDs, the records) to a directory and NewCluster
// load it back, which is a broker that was down and came back, not one
// that lost its disk. The first start picks free ports; later starts
// reuse them, so the clients' seed addresses stay right.
type broker struct {
	dir        string
	n          int
	topic      string
	partitions int32

	ports []int
	c     *kfake.Cluster
}

func (b *broker) start() error {
	opts := []kfake.Opt{kfake.DataDir(b.dir), kfake.SeedTopics(b.partitions, b.topic)}
	if b.ports == nil {
		opts = append(opts, kfake.NumBrokers(b.n))
	} else {
		opts = append(opts, kfake.Ports(b.ports...))
	}
	// A port of ours can be taken for a moment by a client's outgoing
	// connection while the cluster is down; try again for a while.
	var err error
	for range 50 {
		if b.c, err = kfake.NewCluster(opts...); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	if b.ports == nil {
		for _, a := range b.c.ListenAddrs() {
			_, p, err := net.SplitHostPort(a)
			if err != nil {
				return err
			}
			n, _ := strconv.Atoi(p)
			b.ports = append(b.ports, n)
		}
	}
	return nil
}

// stop closes the cluster (which persists it) and every connection to it.
func (b *broker) stop() {
	if b.c != nil {
		b.c.Close()
		b.c = nil
	}
}

// addrs are the seed brokers.
func (b *broker) addrs() []string {
	var out []string
	for _, p := range b.ports {
		out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	return out
}
