package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReloadRefusedByAFeature: a feature that refuses the new config in its
// prepare (the dashboard cannot use a new api.token-file that every local
// user can read) fails the whole reload: the engine keeps its services,
// although its own prepare had accepted the new one.
func TestReloadRefusedByAFeature(t *testing.T) {
	cfgText := strings.NewReplacer("METRICS", fmt.Sprint(freePort(t)), "CLOSED", fmt.Sprint(freePort(t))).Replace(loopbackConfig)
	cfgText += fmt.Sprintf("dashboard:\n  listen: \"127.0.0.1:%d\"\n", freePort(t))
	c, file, _ := startDaemon(t, cfgText)
	ctx := context.Background()

	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("ops 0123456789abcdef0123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cur, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dns := `  - name: dns
    address: [203.0.113.53/32]
    paths:
      - name: broadband
        vector-priority: 1
        probe-address: [127.0.0.1]
dashboard:`
	next := strings.Replace(string(cur), "api:\n", "api:\n  token-file: "+tokens+"\n", 1)
	next = strings.Replace(next, "dashboard:", dns, 1)
	if err := os.WriteFile(file, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	err = c.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "every local user can read it") {
		t.Fatalf("reload: %v, want the dashboard's refusal of the token file", err)
	}
	if st, err := c.Status(ctx); err != nil || len(st.Services) != 1 {
		t.Errorf("services after the refused reload: %+v, %v", st.Services, err)
	}
	// Fixed, the same config is taken by every part.
	if err := os.Chmod(tokens, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Status(ctx); err != nil || len(st.Services) != 2 {
		t.Errorf("services after the reload: %+v, %v", st.Services, err)
	}
}
