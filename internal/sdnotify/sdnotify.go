// Package sdnotify tells systemd how the daemon is doing (sd_notify(3)):
// READY=1 once it serves, RELOADING=1 and STOPPING=1 around reloads and
// the stop, WATCHDOG=1 while the engine is alive. It is a few lines over a
// unix datagram socket, so reachd needs no systemd library; outside
// systemd (no $NOTIFY_SOCKET) every call does nothing.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends to one $NOTIFY_SOCKET. The nil *Notifier is valid and
// sends nothing.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration
}

// FromEnv returns the Notifier of $NOTIFY_SOCKET, or nil when reachd was
// not started by systemd with Type=notify. The watchdog interval is
// $WATCHDOG_USEC when $WATCHDOG_PID is unset or this process.
func FromEnv() *Notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // abstract socket
		path = "\x00" + path[1:]
	}
	n := &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
	if us, err := strconv.ParseUint(os.Getenv("WATCHDOG_USEC"), 10, 64); err == nil && us > 0 {
		pid := os.Getenv("WATCHDOG_PID")
		if pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(us) * time.Microsecond
		}
	}
	return n
}

// Watchdog is the interval within which systemd wants WATCHDOG=1 (0: no
// watchdog).
func (n *Notifier) Watchdog() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Send sends one notification, e.g. "READY=1\nSTATUS=serving".
func (n *Notifier) Send(state string) error {
	if n == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", n.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// Reloading is the RELOADING=1 message; systemd (253+) wants the
// monotonic clock with it, to tell this reload from an earlier one.
func Reloading() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}
