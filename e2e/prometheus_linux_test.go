package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/labdaemon"
)

// TestPrometheusSeesPathDown runs Debian's prometheus next to reachd in the
// router namespace, scraping reachd every second and evaluating the shipped
// alerting rules (packaging/prometheus/reachd-alerts.yml) every second. It
// cuts broadband's upstream and asks the real server, with PromQL, for
// reachd_path_up == 0 and for the ReachdPathDown alert (pending: its for:
// is a minute; firing would do too).
func TestPrometheusSeesPathDown(t *testing.T) {
	for _, tool := range []string{"prometheus", "promtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-deps.sh installs prometheus)", tool)
		}
	}
	rules, err := filepath.Abs("../packaging/prometheus/reachd-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	r := setup(t, hosts[0], labdaemon.Options{Metrics: "127.0.0.1:9469"})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["`+rules+`"]
scrape_configs:
  - job_name: reachd
    static_configs: [{targets: ["127.0.0.1:9469"]}]
`), 0o644)
	const server = "http://127.0.0.1:9090"
	prom := r.NS.Command("prometheus", "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:9090", "--log.level=warn")
	var plog strings.Builder
	prom.Stdout, prom.Stderr = &plog, &plog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { prom.Wait(); close(exited) }()
	t.Cleanup(func() {
		prom.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", plog.String())
		}
	})

	// query runs an instant PromQL query on the server (from inside the
	// namespace, where it listens) and returns the samples' labels.
	query := func(q string) []map[string]string {
		out, err := r.NS.Command("promtool", "query", "instant", "-o", "json", server, q).Output()
		if err != nil {
			return nil // not up yet
		}
		var res []struct {
			Metric map[string]string `json:"metric"`
		}
		if json.Unmarshal(out, &res) != nil {
			return nil
		}
		labels := make([]map[string]string, len(res))
		for i, s := range res {
			labels[i] = s.Metric
		}
		return labels
	}
	waitFor := func(what, q string, limit time.Duration) []map[string]string {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			if got := query(q); len(got) > 0 {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no result for %s within %v", what, q, limit)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}

	waitFor("scraped while up", `reachd_path_up{service="internet", path="broadband"} == 1`, 30*time.Second)
	if err := r.Top.CutUpstream(1); err != nil {
		t.Fatal(err)
	}
	waitFor("path down", `reachd_path_up{service="internet", path="broadband"} == 0`, 20*time.Second)
	alerts := waitFor("alert", `ALERTS{alertname="ReachdPathDown", service="internet", path="broadband"}`, 20*time.Second)
	if st := alerts[0]["alertstate"]; st != "pending" && st != "firing" {
		t.Errorf("ReachdPathDown is %q", st)
	}
	if got := query(`ALERTS{alertname="ReachdPathDown", path="lte"}`); len(got) != 0 {
		t.Errorf("lte is up, yet: %v", got)
	}
}
