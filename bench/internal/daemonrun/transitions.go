package daemonrun

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// Transition is one "target state" line of reachd's log.
type Transition struct {
	At     time.Time
	Target string
	To     string // unknown, up, down, hold-down
}

// Transitions parses a reachd log written with log.format json and
// log.level debug (Config.LogFormat, Config.LogLevel). The engine logs a target's state
// as the monitor.State number (0 unknown, 1 up, 2 down, 3 hold-down) or,
// should that change, its name.
func Transitions(log string) []Transition {
	var out []Transition
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"msg":"target state"`)) {
			continue
		}
		var l struct {
			Time   time.Time       `json:"time"`
			Target string          `json:"target"`
			To     json.RawMessage `json:"to"`
		}
		if json.Unmarshal(line, &l) != nil {
			continue
		}
		to := strings.Trim(string(l.To), `"`)
		switch to {
		case "0":
			to = "unknown"
		case "1":
			to = "up"
		case "2":
			to = "down"
		case "3":
			to = "hold-down"
		}
		out = append(out, Transition{At: l.Time, Target: l.Target, To: to})
	}
	return out
}
