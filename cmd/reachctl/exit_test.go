package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// cannedDaemon answers every API route reachctl uses with a fixed JSON
// body, and the names "missing" with 404 and "invalid" with 400, like the
// daemon does for unknown and invalid requests.
func cannedDaemon(t *testing.T) string {
	t.Helper()
	canned := map[string]string{
		"GET /path-info":                          `{"internet": {"current-path": "lte", "paths": {"broadband": "down", "lte": "up"}}}`,
		"POST /ping-status":                       `{"internet": {"current-path": "lte", "paths": {"broadband": "down", "lte": "up"}}}`,
		"GET /v1/status":                          `{"version": "test", "services": []}`,
		"POST /v1/reload":                         `{"result": "reloaded"}`,
		"GET /v1/version":                         `{"version": "9.9.9", "go-version": "go1.26", "started": "2026-12-04T20:00:00Z", "pid": 42}`,
		"GET /v1/heartbeats":                      `{"listeners": [], "groups": []}`,
		"GET /v1/flows":                           `[]`,
		"GET /v1/linktests":                       `[]`,
		"POST /v1/linktest":                       `{"sent": 10, "returned": 10}`,
		"PUT /flows/f1/ping":                      `{"flow_id": "f1", "forward": {"ping_success": true, "latency": 1}, "reverse": {"ping_success": true, "latency": 1}}`,
		"POST /v1/bypass/grp":                     `{"name": "grp", "effective": "bypass"}`,
		"POST /v1/paths/internet/lte/override":    `{"internet": {"current-path": "lte", "paths": {"lte": "up"}}}`,
		"POST /v1/paths/anycast/s1/drain":         `{"anycast": {"current-path": "s2", "paths": {"s1": "up", "s2": "up"}, "usable-paths": ["s2"]}}`,
		"POST /v1/services/anycast/nexthops":      `{"anycast": {"current-path": "s1", "paths": {"s1": "up", "s4": "up"}, "usable-paths": ["s1", "s4"]}}`,
		"DELETE /v1/services/anycast/nexthops/s4": `{"anycast": {"current-path": "s1", "paths": {"s1": "up"}, "usable-paths": ["s1"]}}`,
		"GET /v1/announce":                        `[{"name": "dns", "prefix": "192.0.2.53/32", "announced": true}]`,
		"POST /v1/announce/dns/drain":             `{"name": "dns", "prefix": "192.0.2.53/32", "announced": true, "drained": true, "drained-by": "operator"}`,
		"GET /v1/bgp/neighbors":                   `[{"address": "192.0.2.1", "peer-as": 65000, "state": "established", "established": true}]`,
		"GET /v1/bgp/routes":                      `{"announced": [], "learned": []}`,
	}
	sock := filepath.Join(t.TempDir(), "reachd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.Contains(r.URL.Path, "missing"):
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": "not found: missing"}`))
			return
		case strings.Contains(r.URL.Path, "invalid"):
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error": "bad request: invalid"}`))
			return
		}
		body, ok := canned[r.Method+" "+r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error": "no such route in the canned daemon: ` + r.Method + " " + r.URL.Path + `"}`))
			return
		}
		w.Write([]byte(body))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func runCtl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// jsonArgs is a command line for every runnable command. A new command
// must be added here: the test then checks that it honours --json.
var jsonArgs = map[string][]string{
	"reachctl status":            {"status"},
	"reachctl path-info":         {"path-info"},
	"reachctl path down":         {"path", "down", "internet", "lte"},
	"reachctl path up":           {"path", "up", "internet", "lte"},
	"reachctl path auto":         {"path", "auto", "internet", "lte"},
	"reachctl ping-status":       {"ping-status", "internet-lte", "down"},
	"reachctl reload":            {"reload"},
	"reachctl version":           {"version"},
	"reachctl heartbeat status":  {"heartbeat", "status"},
	"reachctl heartbeat send":    {"heartbeat", "send", "127.0.0.1:9", "--count", "1", "--interval", "1ms"},
	"reachctl bypass force-on":   {"bypass", "force-on", "grp"},
	"reachctl bypass force-off":  {"bypass", "force-off", "grp"},
	"reachctl bypass auto":       {"bypass", "auto", "grp"},
	"reachctl bypass status":     {"bypass", "status"},
	"reachctl flow list":         {"flow", "list"},
	"reachctl flow ping":         {"flow", "ping", "f1"},
	"reachctl linktest":          {"linktest", "--interface", "wan0", "--loop-address", "169.254.255.1"},
	"reachctl linktest plan":     {"linktest", "plan", "--link-speed", "1G", "--rtt", "1ms"},
	"reachctl linktest list":     {"linktest", "list"},
	"reachctl config import-env": {"config", "import-env", "ENVFILE"},
	"reachctl path drain":        {"path", "drain", "anycast", "s1"},
	"reachctl path undrain":      {"path", "undrain", "anycast", "s1"},
	"reachctl nexthop add":       {"nexthop", "add", "anycast", "s4", "--interface", "s4", "--gateway", "192.0.2.78"},
	"reachctl nexthop remove":    {"nexthop", "remove", "anycast", "s4"},
	"reachctl announce list":     {"announce", "list"},
	"reachctl announce drain":    {"announce", "drain", "dns"},
	"reachctl announce undrain":  {"announce", "undrain", "dns"},
	"reachctl bgp neighbors":     {"bgp", "neighbors"},
	"reachctl bgp routes":        {"bgp", "routes"},
}

// notJSON are commands whose output is, by nature, not data: they are
// documented as the exceptions to --json.
var notJSON = map[string]bool{"reachctl completion": true, "reachctl help": true, "reachctl man-pages": true}

func TestEveryCommandHonoursJSON(t *testing.T) {
	sock := cannedDaemon(t)
	env := filepath.Join(t.TempDir(), "monitor.env")
	os.WriteFile(env, []byte("LISTEN_HB_HOST[0]=192.0.2.10\nLISTEN_HB_PORT[0]=5000\n"), 0o644)

	var leaves []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if notJSON[c.CommandPath()] {
			return
		}
		if c.Runnable() {
			leaves = append(leaves, c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(rootCmd())
	sort.Strings(leaves)
	for _, leaf := range leaves {
		args, ok := jsonArgs[leaf]
		if !ok {
			t.Errorf("%s: not in jsonArgs; add a command line for it so its --json output is checked", leaf)
			continue
		}
		args = append([]string{"--socket", sock, "--json"}, args...)
		for i, a := range args {
			if a == "ENVFILE" {
				args[i] = env
			}
		}
		code, out, errOut := runCtl(t, args...)
		if code != ExitOK {
			t.Errorf("%s: exit %d, stdout %s stderr %s", leaf, code, out, errOut)
			continue
		}
		dec := json.NewDecoder(strings.NewReader(out))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Errorf("%s --json: stdout is not JSON: %v\n%s", leaf, err, out)
			continue
		}
		if dec.More() {
			t.Errorf("%s --json: more than one JSON document on stdout:\n%s", leaf, out)
		}
	}
}

func TestExitCodes(t *testing.T) {
	sock := cannedDaemon(t)
	gone := filepath.Join(t.TempDir(), "nobody-listens.sock")
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{"--socket", sock, "status"}, ExitOK},
		{"unknown command", []string{"--socket", sock, "stauts"}, ExitUsage},
		{"unknown flag", []string{"--socket", sock, "status", "--bogus"}, ExitUsage},
		{"missing argument", []string{"--socket", sock, "path", "down", "internet"}, ExitUsage},
		{"bad flag value", []string{"--socket", sock, "flow", "ping", "f1", "--timeout", "0s"}, ExitUsage},
		{"linktest without interface", []string{"--socket", sock, "linktest"}, ExitUsage},
		{"no socket", []string{"--socket", gone, "status"}, ExitUnreachable},
		{"version without daemon", []string{"--socket", gone, "version"}, ExitUnreachable},
		{"unknown path", []string{"--socket", sock, "path", "down", "internet", "missing"}, ExitNotFound},
		{"rejected", []string{"--socket", sock, "path", "down", "internet", "invalid"}, ExitRejected},
		{"local file missing", []string{"config", "import-env", filepath.Join(t.TempDir(), "none.env")}, ExitError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCtl(t, tc.args...)
			if code != tc.want {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tc.want, out, errOut)
			}
			if code != ExitOK && !strings.HasPrefix(errOut, "reachctl: ") {
				t.Errorf("error not on stderr as 'reachctl: ...': %q", errOut)
			}
			// The same with --json: one JSON document on stdout naming the code, nothing on stderr.
			code, out, errOut = runCtl(t, append([]string{"--json"}, tc.args...)...)
			if code != tc.want {
				t.Errorf("--json: exit %d, want %d", code, tc.want)
			}
			if code == ExitOK || tc.name == "version without daemon" {
				return
			}
			var e struct {
				Error    string `json:"error"`
				ExitCode int    `json:"exit-code"`
			}
			if err := json.Unmarshal([]byte(out), &e); err != nil || e.Error == "" || e.ExitCode != tc.want || errOut != "" {
				t.Errorf("--json error: stdout %q (%v), stderr %q", out, err, errOut)
			}
		})
	}
}

func TestVersionShowsBoth(t *testing.T) {
	sock := cannedDaemon(t)
	code, out, _ := runCtl(t, "--socket", sock, "version")
	if code != ExitOK || !strings.Contains(out, "reachctl ") || !strings.Contains(out, "reachd   9.9.9 (go1.26), pid 42") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	code, out, _ = runCtl(t, "--socket", filepath.Join(t.TempDir(), "x.sock"), "--json", "version")
	var v versions
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != ExitUnreachable || v.Reachctl.Version == "" || v.Reachd != nil || v.ReachdError == "" {
		t.Errorf("exit %d, %v:\n%s", code, err, out)
	}
}
