package config

import (
	"testing"
)

func TestDashboard(t *testing.T) {
	c, err := Parse("d.yaml", []byte("dashboard:\n  listen: \":9471\"\nservices: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Dashboard.Enabled() || c.Dashboard.Listen != "127.0.0.1:9471" || c.Dashboard.SaveInterval.D != DefaultDashboardSaveInterval ||
		c.Dashboard.Events != DefaultDashboardEvents || c.Dashboard.MaxSeries != DefaultDashboardSeries {
		t.Fatalf("defaults: %+v", c.Dashboard)
	}
	c, err = Parse("d.yaml", []byte("services: []\n"))
	if err != nil || c.Dashboard.Enabled() {
		t.Fatalf("off by default: %+v %v", c.Dashboard, err)
	}
}

// The API token file also enables the dashboard's actions, so it may be
// set without a TCP API when the dashboard is on (and not otherwise).
func TestTokenFileForTheDashboard(t *testing.T) {
	if _, err := Parse("d.yaml", []byte("api:\n  token-file: /etc/reachd/api-tokens\ndashboard:\n  listen: \":9471\"\nservices: []\n")); err != nil {
		t.Fatalf("token-file with the dashboard: %v", err)
	}
	if _, err := Parse("d.yaml", []byte("api:\n  token-file: /etc/reachd/api-tokens\nservices: []\n")); err == nil {
		t.Fatal("token-file with neither api.listen nor the dashboard: no error")
	}
}
