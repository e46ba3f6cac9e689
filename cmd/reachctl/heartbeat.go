package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/reachd/reachd/internal/apitype"
	"github.com/reachd/reachd/internal/client"
	"github.com/reachd/reachd/internal/hbauth"
	"github.com/spf13/cobra"
)

func heartbeatCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "heartbeat",
		Short: "heartbeat listeners: show them, or send heartbeats (tests, simple appliances)",
	}
	cmd.AddCommand(heartbeatStatusCmd(g, "show every heartbeat listener and bypass group"), sendCmd(g))
	return cmd
}

func sendCmd(g *globals) *cobra.Command {
	var (
		interval time.Duration
		count    int
		payload  string
		useTCP   bool
		quiet    bool
		keyFile  string
	)
	cmd := &cobra.Command{
		Use:   "send HOST:PORT",
		Short: "send heartbeats to a listener every --interval (UDP, or --tcp over one connection)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return usagef("--interval must be more than 0")
			}
			sctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			var key []byte
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return usagef("--key: %v", err)
				}
				if key = bytes.TrimSpace(b); len(key) < hbauth.MinKeyLen {
					return usagef("--key: the key in %s is %d bytes; the listener needs at least %d", keyFile, len(key), hbauth.MinKeyLen)
				}
			}
			n, err := sendHeartbeats(sctx, args[0], useTCP, []byte(payload), key, interval, count)
			if g.json {
				if err != nil {
					return err
				}
				return g.printJSON(map[string]any{"sent": n, "to": args[0]})
			}
			if !quiet {
				fmt.Fprintf(os.Stderr, "sent %d heartbeats to %s\n", n, args[0])
			}
			return err
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between heartbeats")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many heartbeats (0: until interrupted)")
	cmd.Flags().StringVar(&payload, "payload", "HEARTBEAT", "bytes of each heartbeat (a newline is added over TCP)")
	cmd.Flags().BoolVar(&useTCP, "tcp", false, "connect over TCP and write each heartbeat (reconnects when the connection drops)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print nothing")
	cmd.Flags().StringVar(&keyFile, "key", "", "sign each heartbeat with the shared key in this FILE (for a listener with key-file; a file, so the key is not in the process list)")
	return cmd
}

// sendHeartbeats sends until ctx ends or count heartbeats went out. A send
// that fails (nobody listens yet) is not fatal: heartbeats are for a
// receiver that may come and go, so it keeps trying at the interval.
func sendHeartbeats(ctx context.Context, addr string, useTCP bool, payload, key []byte, interval time.Duration, count int) (int, error) {
	network := "udp"
	if useTCP {
		network = "tcp"
	}
	message := func() []byte {
		m := payload
		if key != nil {
			m = hbauth.Sign(key, payload, time.Now()) // fresh time: a receiver refuses replays
		}
		if useTCP {
			m = append(append([]byte{}, m...), '\n')
		}
		return m
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return 0, usagef("%q is not HOST:PORT", addr)
	}
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	sent := 0
	t := time.NewTicker(interval)
	defer t.Stop()
	for count == 0 || sent < count {
		if conn == nil {
			d := net.Dialer{Timeout: interval}
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				conn = c
			}
		}
		if conn != nil {
			conn.SetWriteDeadline(time.Now().Add(interval))
			if _, err := conn.Write(message()); err != nil {
				conn.Close()
				conn = nil
			} else {
				sent++
			}
		}
		if count != 0 && sent >= count {
			break
		}
		select {
		case <-ctx.Done():
			return sent, nil
		case <-t.C:
		}
	}
	return sent, nil
}

// printHeartbeatSection is the hook of `reachctl status`: it prints the
// heartbeat listeners and groups after the services when the daemon has
// any, and nothing otherwise (also for a daemon without the endpoint).
func printHeartbeatSection(ctx context.Context, c *client.Client, out io.Writer) {
	st, err := c.Heartbeats(ctx)
	if err != nil || (len(st.Listeners) == 0 && len(st.Groups) == 0) {
		return
	}
	fmt.Fprintln(out)
	printHeartbeats(out, st, time.Now())
}

func printHeartbeats(out io.Writer, st apitype.HeartbeatStatus, now time.Time) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "heartbeat listeners")
	fmt.Fprintln(w, "  LISTENER\tLISTEN\tSTATE\tCOUNT\tLAST HEARTBEAT\tTIMEOUT×ATTEMPTS\tREASON")
	for _, l := range st.Listeners {
		addr := l.Protocol + " " + l.Listen
		if l.Bound != "" && l.Bound != l.Listen {
			addr += " (" + l.Bound + ")"
		}
		reason := l.Reason
		if l.Error != "" {
			reason = l.Error
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%d\t%s\t%s×%d\t%s\n", l.Name, addr, l.State, l.Count, ago(l.LastHeartbeat, now), l.Timeout, l.Attempts, reason)
	}
	fmt.Fprintln(w, "bypass groups")
	fmt.Fprintln(w, "  GROUP\tSTATE\tTHRESHOLD\tSINCE\tWHY")
	for _, g := range st.Groups {
		since := "-"
		if !g.Since.IsZero() {
			since = ago(&g.Since, now)
		}
		fmt.Fprintf(w, "  %s\t%s\t%d of %d\t%s\t%s\n", g.Name, g.Effective, g.Threshold, len(g.Listeners), since, g.Reason)
	}
	if len(st.Changed.RemovedAddresses)+len(st.Changed.DownInterfaces) > 0 {
		fmt.Fprintln(w, "held by bypass")
		for _, a := range st.Changed.RemovedAddresses {
			fmt.Fprintf(w, "  removed %s\n", a)
		}
		for _, l := range st.Changed.DownInterfaces {
			fmt.Fprintf(w, "  down %s\n", l)
		}
	}
	w.Flush()
}

// heartbeatStatusCmd prints the listeners and groups (reachctl heartbeat
// status and reachctl bypass status).
func heartbeatStatusCmd(g *globals, short string) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, cancel := ctx()
			defer cancel()
			st, err := g.client().Heartbeats(c)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(st)
			}
			printHeartbeats(g.out, st, time.Now())
			return nil
		},
	}
}
