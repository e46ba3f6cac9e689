package main

import (
	"bytes"
	"runtime"
)

// gcount is the process's goroutines by owner. The fleet's own are the
// flow managers, their STAMP senders, the producers and their Kafka
// clients; the simulated peers (reflectors) and the kfake cluster (three
// goroutines per client connection) share the process but are not reachd.
type gcount struct {
	Fleet, Peers, Cluster, Other int
}

// goroutines classifies every goroutine by its stack.
func goroutines() gcount {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var c gcount
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		switch {
		case bytes.Contains(g, []byte("pkg/kfake.")):
			c.Cluster++
		case bytes.Contains(g, []byte("main.(*peer)")):
			c.Peers++
		case bytes.Contains(g, []byte("reachd/internal/")), bytes.Contains(g, []byte("franz-go/pkg/kgo.")):
			c.Fleet++
		default:
			c.Other++
		}
	}
	return c
}
