package bgp

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/reachd/reachd/internal/atomicfile"
	"github.com/reachd/reachd/internal/statefile"
)

// stateFile is what survives a restart, in state-dir/bgp.json:
//   - operator drains (reachctl announce drain), so a drained server
//     stays drained after a reboot;
//   - what was announced, so that after SIGKILL the new process announces
//     the same routes at once and the neighbor's graceful restart (RFC 4724)
//     hides the restart; a clean stop withdraws and leaves this empty;
//   - the VIPs reachd added (it removes only those);
//   - the registrations of the gocast-compatible API.
type stateFile struct {
	OperatorDrained []string         `json:"operator-drained,omitempty"`
	Announced       map[string]route `json:"announced,omitempty"`
	VIPs            []vipKey         `json:"vips,omitempty"`
	Registrations   []registration   `json:"registrations,omitempty"`
}

type vipKey struct {
	Interface string `json:"interface"`
	Address   string `json:"address"`
}

// registration is one GET /register.
type registration struct {
	Name        string   `json:"name"`
	VIP         string   `json:"vip"`
	Monitors    []string `json:"monitors"`
	Communities []string `json:"communities,omitempty"`
}

// loadState reads the state file; a damaged one is moved aside
// (internal/statefile) and reachd starts without it: nothing announced
// until health is known, no operator drains, no registrations.
func loadState(file string, now time.Time) (stateFile, error) {
	var s stateFile
	data, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return stateFile{}, statefile.Quarantine(file, err, now)
	}
	return s, nil
}

func saveState(file string, s stateFile) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(file, append(data, '\n'), 0o644)
}
