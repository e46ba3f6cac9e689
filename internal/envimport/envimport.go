// Package envimport reads the fastbypass monitor's .env configuration (seed
// shared/seeds/002: LISTEN_HB_HOST[0]=..., BYPASS_CARD_HOST[1]=...,
// LISTEN_CUBRO_IFS, ...) and writes the equivalent reachd YAML, so that an
// operator can migrate with `reachctl config import-env FILE.env`.
package envimport

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Problem is an unknown or malformed line.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) Error() string { return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg) }

// Problems is every problem of a file, by line.
type Problems []Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}

type listener struct {
	hostLine, portLine int
	host               netip.Addr
	port               int
	attempts, timeout  int
	cubro              []string
	cubroLine          int
	shutdown           bool
}

// Env is a parsed .env file.
type Env struct {
	file          string
	heartbeatIfs  []string
	hbIfsLine     int
	bypassIfs     []string
	bypassIfsLine int
	bypassIfsIdx  map[int]string
	failed        int
	attempts      int
	timeout       int
	cubro         []string
	shutdown      bool
	listeners     map[int]*listener
	bypassHosts   map[int]netip.Addr
	hostLines     map[int]int
}

var keyRE = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)(?:\[([0-9]+)\])?$`)

// what each key accepts: global (no index), indexed, or both.
var keys = map[string]struct{ global, indexed bool }{
	"LISTEN_HEARTBEAT_IFS":                  {true, false},
	"BYPASS_CARD_IFS":                       {true, true},
	"LISTEN_HEARTBEAT_FAILED":               {true, false},
	"LISTEN_HEARTBEAT_ATTEMPTS":             {true, true},
	"LISTEN_HEARTBEAT_TIMEOUT":              {true, true},
	"LISTEN_HB_HOST":                        {false, true},
	"LISTEN_HB_PORT":                        {false, true},
	"BYPASS_CARD_HOST":                      {false, true},
	"LISTEN_CUBRO_IFS":                      {true, true},
	"LISTEN_SHUTDOWN_CUBRO_IFS_WHEN_BYPASS": {true, true},
}

func knownKeys() string {
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// Parse reads a .env file. It returns what it could read and every
// problem with its line; the YAML of a file with problems is incomplete.
func Parse(file string, data []byte) (*Env, Problems) {
	e := &Env{file: file, listeners: map[int]*listener{}, bypassHosts: map[int]netip.Addr{},
		hostLines: map[int]int{}, bypassIfsIdx: map[int]string{}}
	var probs Problems
	bad := func(line int, format string, args ...any) {
		probs = append(probs, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			bad(n, "%q is not KEY=VALUE", line)
			continue
		}
		k = strings.TrimSpace(k)
		v = unquote(strings.TrimSpace(v))
		m := keyRE.FindStringSubmatch(k)
		if m == nil {
			bad(n, "%q is not a key (want NAME or NAME[index])", k)
			continue
		}
		name, idxs := m[1], m[2]
		kk, known := keys[name]
		if !known {
			bad(n, "unknown key %s; known keys: %s", name, knownKeys())
			continue
		}
		idx := -1
		if idxs != "" {
			i, err := strconv.Atoi(idxs)
			if err != nil || i > 4096 {
				bad(n, "%s: index %s is out of range (0-4096)", name, idxs)
				continue
			}
			idx = i
			if !kk.indexed {
				bad(n, "%s takes no index; write %s=...", name, name)
				continue
			}
		} else if !kk.global {
			bad(n, "%s needs an index, e.g. %s[0]=...", name, name)
			continue
		}
		e.set(n, name, idx, v, bad)
	}
	if err := sc.Err(); err != nil {
		bad(n+1, "reading: %v", err)
	}
	e.check(bad)
	sort.SliceStable(probs, func(i, j int) bool { return probs[i].Line < probs[j].Line })
	return e, probs
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

// ifname is the rule reachd's config applies to interface names (at most
// 15 printable characters, no '/', ':' or space, not "." or ".."), so that
// an imported file never yields YAML the config loader refuses.
func ifname(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == ':' || r < 33 || r > 126 {
			return false
		}
	}
	return true
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == ';' })
}

func (e *Env) listener(i int) *listener {
	l := e.listeners[i]
	if l == nil {
		l = &listener{}
		e.listeners[i] = l
	}
	return l
}

func (e *Env) set(n int, name string, idx int, v string, bad func(int, string, ...any)) {
	num := func(min, max int) (int, bool) {
		x, err := strconv.Atoi(v)
		if err != nil || x < min || x > max {
			bad(n, "%s: %q is not a number from %d to %d", name, v, min, max)
			return 0, false
		}
		return x, true
	}
	ifs := func() ([]string, bool) {
		l := splitList(v)
		for _, s := range l {
			if !ifname(s) {
				bad(n, "%s: %q is not an interface name", name, s)
				return nil, false
			}
		}
		return l, true
	}
	switch name {
	case "LISTEN_HEARTBEAT_IFS":
		if l, ok := ifs(); ok {
			e.heartbeatIfs, e.hbIfsLine = l, n
		}
	case "BYPASS_CARD_IFS":
		if l, ok := ifs(); ok {
			if idx >= 0 {
				if len(l) != 1 {
					bad(n, "%s[%d]: want one interface, got %q", name, idx, v)
					return
				}
				e.bypassIfsIdx[idx] = l[0]
			} else {
				e.bypassIfs, e.bypassIfsLine = l, n
			}
		}
	case "LISTEN_HEARTBEAT_FAILED":
		if x, ok := num(1, 65535); ok {
			e.failed = x
		}
	case "LISTEN_HEARTBEAT_ATTEMPTS":
		if x, ok := num(1, 1000); ok {
			if idx >= 0 {
				e.listener(idx).attempts = x
			} else {
				e.attempts = x
			}
		}
	case "LISTEN_HEARTBEAT_TIMEOUT":
		if x, ok := num(10, 86400000); ok {
			if idx >= 0 {
				e.listener(idx).timeout = x
			} else {
				e.timeout = x
			}
		}
	case "LISTEN_HB_HOST":
		a, err := netip.ParseAddr(v)
		if err != nil {
			bad(n, "%s[%d]: %q is not an IP address", name, idx, v)
			return
		}
		l := e.listener(idx)
		l.host, l.hostLine = a, n
	case "LISTEN_HB_PORT":
		if x, ok := num(1, 65535); ok {
			l := e.listener(idx)
			l.port, l.portLine = x, n
		}
	case "BYPASS_CARD_HOST":
		a, err := netip.ParseAddr(v)
		if err != nil {
			bad(n, "%s[%d]: %q is not an IP address", name, idx, v)
			return
		}
		e.bypassHosts[idx], e.hostLines[idx] = a, n
	case "LISTEN_CUBRO_IFS":
		if l, ok := ifs(); ok {
			if idx >= 0 {
				e.listener(idx).cubro, e.listener(idx).cubroLine = l, n
			} else {
				e.cubro = l
			}
		}
	case "LISTEN_SHUTDOWN_CUBRO_IFS_WHEN_BYPASS":
		if x, ok := num(0, 1); ok {
			if idx >= 0 {
				e.listener(idx).shutdown = x == 1
			} else {
				e.shutdown = x == 1
			}
		}
	}
}

// check reports what is missing across lines.
func (e *Env) check(bad func(int, string, ...any)) {
	complete := 0
	binds := map[string]int{}
	for _, i := range sortedKeys(e.listeners) {
		l := e.listeners[i]
		switch {
		case l.hostLine == 0 && l.portLine == 0:
			line := l.cubroLine
			bad(line, "listener %d has settings but no LISTEN_HB_HOST[%d] and LISTEN_HB_PORT[%d]", i, i, i)
		case l.hostLine == 0:
			bad(l.portLine, "LISTEN_HB_PORT[%d] has no LISTEN_HB_HOST[%d]", i, i)
		case l.portLine == 0:
			bad(l.hostLine, "LISTEN_HB_HOST[%d] has no LISTEN_HB_PORT[%d]", i, i)
		default:
			hp := net.JoinHostPort(l.host.String(), strconv.Itoa(l.port))
			if j, dup := binds[hp]; dup {
				bad(l.portLine, "listener %d listens on %s like listener %d; give each its own port", i, hp, j)
				l.portLine = 0 // left out of the YAML
				continue
			}
			binds[hp] = i
			complete++
		}
	}
	if complete == 0 {
		bad(1, "no listener: add LISTEN_HB_HOST[0]=... and LISTEN_HB_PORT[0]=...")
	}
	if len(e.heartbeatIfs) > 1 && len(e.heartbeatIfs) != complete {
		bad(e.hbIfsLine, "LISTEN_HEARTBEAT_IFS lists %d interfaces for %d listeners; give one, or one per listener in index order", len(e.heartbeatIfs), complete)
	}
	for _, i := range sortedKeys(e.bypassHosts) {
		if _, ok := e.bypassIfsIdx[i]; ok {
			continue
		}
		if len(e.bypassIfs) == 0 {
			bad(e.hostLines[i], "BYPASS_CARD_HOST[%d] has no interface; set BYPASS_CARD_IFS", i)
		} else if len(e.bypassIfs) > 1 && len(e.bypassIfs) != len(e.bypassHosts) {
			bad(e.hostLines[i], "BYPASS_CARD_IFS lists %d interfaces for %d bypass hosts; give one, one per host, or BYPASS_CARD_IFS[%d]", len(e.bypassIfs), len(e.bypassHosts), i)
		}
	}
	if e.failed > complete && complete > 0 {
		bad(1, "LISTEN_HEARTBEAT_FAILED=%d is more than the %d listeners; bypass could never happen", e.failed, complete)
	}
}

func sortedKeys[V any](m map[int]V) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}

func q(s string) string { return strconv.Quote(s) }

func flowList(l []string) string {
	qs := make([]string, len(l))
	for i, s := range l {
		qs[i] = q(s)
	}
	return "[" + strings.Join(qs, ", ") + "]"
}

// YAML writes the heartbeats section of a reachd config equivalent to the
// file: one listener per LISTEN_HB_HOST[i] (named hb<i>), one group
// "fastbypass" over all of them with LISTEN_HEARTBEAT_FAILED as threshold,
// the bypass cards' addresses as the group's remove-addresses, and the
// CUBRO interfaces as down-interfaces where shutdown is asked (global, or
// per listener for the indexed keys).
func (e *Env) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by reachctl config import-env from %s.\n", e.file)
	b.WriteString("heartbeats:\n  listeners:\n")
	var idxs []int
	for _, i := range sortedKeys(e.listeners) {
		if l := e.listeners[i]; l.hostLine != 0 && l.portLine != 0 {
			idxs = append(idxs, i)
		}
	}
	for k, i := range idxs {
		l := e.listeners[i]
		fmt.Fprintf(&b, "    - name: hb%d\n", i)
		fmt.Fprintf(&b, "      listen: %s\n", q(net.JoinHostPort(l.host.String(), strconv.Itoa(l.port))))
		switch {
		case len(e.heartbeatIfs) == 1:
			fmt.Fprintf(&b, "      interface: %s\n", q(e.heartbeatIfs[0]))
		case len(e.heartbeatIfs) == len(idxs):
			fmt.Fprintf(&b, "      interface: %s\n", q(e.heartbeatIfs[k]))
		}
		timeout, attempts := e.timeout, e.attempts
		if l.timeout != 0 {
			timeout = l.timeout
		}
		if l.attempts != 0 {
			attempts = l.attempts
		}
		if timeout != 0 {
			fmt.Fprintf(&b, "      timeout: %dms\n", timeout)
		}
		if attempts != 0 {
			fmt.Fprintf(&b, "      attempts: %d\n", attempts)
		}
		if len(l.cubro) > 0 {
			if l.shutdown {
				fmt.Fprintf(&b, "      bypass:\n        down-interfaces: %s\n", flowList(l.cubro))
			} else {
				fmt.Fprintf(&b, "      # LISTEN_CUBRO_IFS[%d]=%s without LISTEN_SHUTDOWN_CUBRO_IFS_WHEN_BYPASS[%d]=1: not shut down\n", i, strings.Join(l.cubro, ","), i)
			}
		}
	}
	b.WriteString("  groups:\n    - name: fastbypass\n")
	failed := e.failed
	if failed == 0 {
		b.WriteString("      # LISTEN_HEARTBEAT_FAILED not set: bypass when 1 listener fails\n")
		failed = 1
	}
	if failed > len(idxs) && len(idxs) > 0 {
		failed = len(idxs)
	}
	fmt.Fprintf(&b, "      failed-threshold: %d\n", failed)
	var addrs []string
	for _, i := range sortedKeys(e.bypassHosts) {
		ifname, ok := e.bypassIfsIdx[i]
		switch {
		case ok:
		case len(e.bypassIfs) == 1:
			ifname = e.bypassIfs[0]
		case len(e.bypassIfs) == len(e.bypassHosts):
			ifname = e.bypassIfs[len(addrs)]
		default:
			continue
		}
		addrs = append(addrs, fmt.Sprintf("          - {interface: %s, address: %s}\n", q(ifname), q(e.bypassHosts[i].String())))
	}
	shut := e.shutdown && len(e.cubro) > 0
	if len(addrs) > 0 || shut {
		b.WriteString("      bypass:\n")
	}
	if len(addrs) > 0 {
		b.WriteString("        remove-addresses:\n")
		for _, a := range addrs {
			b.WriteString(a)
		}
	}
	if shut {
		fmt.Fprintf(&b, "        down-interfaces: %s\n", flowList(e.cubro))
	} else if len(e.cubro) > 0 {
		fmt.Fprintf(&b, "      # LISTEN_CUBRO_IFS=%s without LISTEN_SHUTDOWN_CUBRO_IFS_WHEN_BYPASS=1: not shut down\n", strings.Join(e.cubro, ","))
	}
	return b.String()
}
