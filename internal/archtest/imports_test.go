package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/reachd/reachd/"

// pkg is what `go list -json` tells of one package.
type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

// rule forbids imports from the packages matching from. A package matches
// a pattern "a/b" when it is a/b; "a/b/..." also matches everything under
// it. Patterns are relative to the module.
type rule struct {
	from []string
	// only, when set, is the complete list of reachd packages that from
	// may import (directly, or with transitive, at any depth); everything
	// else of the module is forbidden.
	only []string
	// not lists reachd packages that from must not import directly.
	not        []string
	transitive bool
	// stdlibOnly forbids every non-standard package, also outside reachd.
	stdlibOnly bool
	// except are packages matching from that the rule does not apply to.
	except []string
	why    string
}

// The rules: arrows point one way, probe → monitor → policy → engine →
// dataplane / export, features beside the engine, the API and its client
// above, the daemon on top wiring everything.
var rules = []rule{
	{from: []string{"internal/apitype"}, stdlibOnly: true, transitive: true,
		why: "API shapes are a leaf: the client and reachctl must not pull in the daemon"},
	{from: []string{"internal/client"}, only: []string{"internal/apitype"}, stdlibOnly: true, transitive: true,
		why: "the client talks JSON over a socket; it needs the API's shapes, not the server's packages (netlink, client_golang, YAML)"},
	{from: []string{"cmd/reachctl"}, only: []string{"internal/client", "internal/apitype", "internal/linkplan", "internal/envimport", "internal/version", "internal/hbauth", "internal/manpage"}, transitive: true,
		why: "reachctl talks to the daemon only through the client; pure helpers (linkplan, envimport, version, hbauth, manpage) are allowed"},
	{from: []string{"internal/clock", "internal/atomicfile", "internal/linkplan", "internal/envimport", "internal/lab", "internal/version", "internal/statefile", "internal/sdnotify", "internal/history", "internal/hbauth", "internal/defaults"}, only: []string{},
		why: "leaf helpers import nothing of reachd"},
	{from: []string{"internal/events"}, only: []string{"internal/apitype"}, transitive: true,
		why: "the event feed is what every feature publishes to; it knows only the event's shape"},
	{from: []string{"internal/probe/..."}, only: []string{"internal/probe/...", "internal/linkplan", "internal/clock", "internal/defaults", "internal/health", "internal/hbauth"},
		why: "a prober reports results; it knows nothing of monitors, policies, services or the kernel's routes"},
	{from: []string{"internal/monitor/..."}, only: []string{"internal/clock"},
		why: "monitors are pure state machines over results"},
	{from: []string{"internal/policy/..."}, only: []string{"internal/monitor/...", "internal/clock"},
		why: "policies are pure functions over monitor states"},
	{from: []string{"internal/config"}, only: []string{"internal/linkplan", "internal/defaults", "internal/health"},
		why: "the config is types, decoding and validation"},
	{from: []string{"internal/engine/..."}, not: []string{"internal/api", "internal/apitype", "internal/client", "internal/daemon", "internal/feature/...", "internal/dataplane/...", "internal/export/..."},
		why: "the engine owns decisions; the API's JSON is built above it, actions are reached through interfaces it declares"},
	{from: []string{"internal/dataplane/..."}, not: []string{"internal/config", "internal/engine", "internal/api", "internal/apitype", "internal/client", "internal/daemon", "internal/feature/...", "internal/probe/..."},
		why: "the data plane changes the kernel for decisions; it knows nothing of the config file, probes or features"},
	{from: []string{"internal/export/..."}, not: []string{"internal/config", "internal/engine", "internal/api", "internal/daemon", "internal/feature/...", "internal/dataplane/..."},
		why: "exporters receive measurements and events"},
	{from: []string{"internal/api"}, not: []string{"internal/engine", "internal/daemon", "internal/config", "internal/dataplane/...", "internal/feature/...", "internal/client"},
		why: "the API translates HTTP; features register their routes into it, not the other way round"},
	{from: []string{"internal/api/httpjson"}, only: []string{"internal/apitype"},
		why: "the JSON helpers of every handler are a leaf"},
	{from: []string{"internal/feature/..."}, not: []string{"internal/api", "internal/config", "internal/dataplane/...", "internal/engine", "internal/daemon"},
		why: "a feature takes plain Options built in the daemon, registers routes through a small interface, and reaches the kernel through an interface it declares"},
	{from: []string{"..."}, not: []string{"internal/daemon"}, except: []string{"cmd/reachd"},
		why: "only cmd/reachd wires the daemon"},
	{from: []string{"..."}, not: []string{"cmd/...", "e2e"},
		why: "nothing imports commands or end-to-end tests"},
	{from: []string{"..."}, not: []string{"bench/..."}, except: []string{"bench/..."},
		why: "the benchmark harness is outside the daemon"},
}

// known are the edges that run against the flow today, each with the
// step that removes it. The test fails when one of them no longer exists,
// so that the list only shrinks.
var known = map[[2]string]string{}

func match(pattern, p string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func matchAny(patterns []string, p string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool { return match(pat, p) })
}

// featureOf returns NAME for internal/feature/NAME and the packages below
// it.
func featureOf(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "internal/feature/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, true
}

func list(t *testing.T) map[string]*pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard,Imports,Deps", module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]*pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = &p
	}
	return pkgs
}

// violations returns every forbidden edge as "from → to: why".
func violations(pkgs map[string]*pkg) (edges map[[2]string]string) {
	edges = map[[2]string]string{}
	for path, p := range pkgs {
		from, ok := strings.CutPrefix(path, module)
		if !ok {
			continue
		}
		for _, r := range rules {
			if !matchAny(r.from, from) || matchAny(r.except, from) {
				continue
			}
			imports := p.Imports
			if r.transitive {
				imports = p.Deps
			}
			for _, imp := range imports {
				to, ours := strings.CutPrefix(imp, module)
				bad := false
				switch {
				case !ours:
					dep := pkgs[imp]
					bad = r.stdlibOnly && (dep == nil || !dep.Standard)
				case to == from:
				case r.only != nil:
					bad = !matchAny(r.only, to)
				default:
					bad = matchAny(r.not, to)
				}
				if bad {
					edges[[2]string{from, to}] = r.why
				}
			}
		}
		// Features stand side by side: one never imports another.
		if fa, ok := featureOf(from); ok {
			for _, imp := range p.Imports {
				if fb, ok := featureOf(strings.TrimPrefix(imp, module)); ok && fb != fa {
					edges[[2]string{from, strings.TrimPrefix(imp, module)}] = "features stand side by side; share through a package below them"
				}
			}
		}
	}
	return edges
}

func TestImportDirection(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	pkgs := list(t)
	got := violations(pkgs)
	var msgs []string
	for e, why := range got {
		if _, ok := known[e]; ok {
			continue
		}
		msgs = append(msgs, fmt.Sprintf("%s imports %s: %s", e[0], e[1], why))
	}
	for e, step := range known {
		if _, ok := got[e]; !ok {
			msgs = append(msgs, fmt.Sprintf("%s no longer imports %s (%s): remove it from known in this test", e[0], e[1], step))
		}
	}
	slices.Sort(msgs)
	for _, m := range msgs {
		t.Error(m)
	}
}

// The rules must catch what they are meant to: a fake module graph with
// one edge of each kind.
func TestRulesCatchBackEdges(t *testing.T) {
	p := func(path string, std bool, imports ...string) *pkg {
		return &pkg{ImportPath: path, Standard: std, Imports: imports, Deps: imports}
	}
	m := func(s string) string { return module + s }
	pkgs := map[string]*pkg{}
	for _, x := range []*pkg{
		p("fmt", true),
		p("github.com/vishvananda/netlink", false),
		p(m("internal/apitype"), false, "fmt", "github.com/vishvananda/netlink"),
		p(m("internal/client"), false, m("internal/apitype"), m("internal/api")),
		p(m("cmd/reachctl"), false, m("internal/client"), m("internal/probe/linktest")),
		p(m("internal/probe/icmp"), false, m("internal/probe"), m("internal/monitor")),
		p(m("internal/feature/bgp"), false, m("internal/config"), m("internal/apitype"), m("internal/feature/flow"), m("internal/feature")),
		p(m("internal/feature/flow"), false, m("internal/feature"), m("internal/api/httpjson")),
		p(m("internal/api"), false, m("internal/apitype"), m("internal/feature/flow")),
		p(m("internal/engine"), false, m("internal/policy"), m("internal/api")),
		p(m("internal/dataplane"), false, m("internal/monitor"), m("internal/config")),
		p(m("internal/daemon"), false, m("internal/engine")),
		p(m("internal/labdaemon"), false, m("internal/daemon")),
		p(m("cmd/reachd"), false, m("internal/daemon")),
		p(m("bench/cmd/bench"), false, m("bench/internal/result"), m("internal/lab")),
		p(m("internal/lab"), false, m("bench/internal/result")),
	} {
		pkgs[x.ImportPath] = x
	}
	got := violations(pkgs)
	want := [][2]string{
		{"internal/apitype", "github.com/vishvananda/netlink"}, // not stdlib
		{"internal/client", "internal/api"},
		{"cmd/reachctl", "internal/probe/linktest"},
		{"internal/probe/icmp", "internal/monitor"},
		{"internal/feature/bgp", "internal/config"},
		{"internal/feature/bgp", "internal/feature/flow"},
		{"internal/api", "internal/feature/flow"},
		{"internal/engine", "internal/api"},
		{"internal/dataplane", "internal/config"},
		{"internal/labdaemon", "internal/daemon"},
		{"internal/lab", "bench/internal/result"},
	}
	for _, e := range want {
		if _, ok := got[e]; !ok {
			t.Errorf("edge %s → %s not caught", e[0], e[1])
		}
		delete(got, e)
	}
	for e := range got {
		t.Errorf("edge %s → %s reported but allowed", e[0], e[1])
	}
}
