package heartbeat

import "testing"

func TestMatches(t *testing.T) {
	tests := []struct {
		payload, data string
		want          bool
	}{
		{"", "anything", true},
		{"", "", true},
		{"HEARTBEAT", "HEARTBEAT", true},
		{"HEARTBEAT", "HEARTBEAT\n", true},
		{"HEARTBEAT", "HEARTBEAT\r\n", true},
		{"HEARTBEAT", "HEARTBEAT\n\n", false},
		{"HEARTBEAT", "heartbeat", false},
		{"HEARTBEAT", "HEARTBEATX", false},
		{"HEARTBEAT", "", false},
	}
	for _, tt := range tests {
		if got := matches([]byte(tt.payload), []byte(tt.data)); got != tt.want {
			t.Errorf("matches(%q, %q) = %v, want %v", tt.payload, tt.data, got, tt.want)
		}
	}
}

func FuzzMatches(f *testing.F) {
	f.Add([]byte("HEARTBEAT"), []byte("HEARTBEAT\r\n"))
	f.Fuzz(func(t *testing.T, payload, data []byte) {
		if matches(payload, data) && len(payload) > 0 && len(data) > len(payload)+2 {
			t.Fatalf("matched %q against %q", data, payload)
		}
	})
}
