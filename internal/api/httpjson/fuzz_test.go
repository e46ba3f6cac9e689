package httpjson

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"
)

// FuzzReadJSON feeds request bodies to the API's strict JSON reader: it
// never panics, and every refusal is a 400 or 413 error, never a 500.
func FuzzReadJSON(f *testing.F) {
	for _, s := range []string{``, `{"status": "down"}`, `{"status": "down", "x": 1}`, `{"status": "down"} {}`, `[`, `{"status": 1}`, "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/v1/paths/a/b/override", bytes.NewReader(body))
		var req struct {
			Status string `json:"status"`
		}
		if err := ReadJSON(r, &req); err != nil && !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("ReadJSON(%q) = %v: not a client error", body, err)
		}
	})
}
