package dashboard

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/reachd/reachd/internal/apitype"
)

// FuzzActionRequest feeds request bodies to the dashboard's action reader
// (POST /api/actions/*, bytes from the browser): it never panics, and
// every refusal is a bad request (400), never a 500.
func FuzzActionRequest(f *testing.F) {
	for _, s := range []string{``, ` `, `{"service": "internet", "path": "lte", "status": "down"}`, `{"group": "g", "status": "force-on"}`,
		`{"status": 1}`, `[`, `{"status": "down"} {}`, "\x00", `{"service": "\u0000../x"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/api/actions/override", bytes.NewReader(body))
		var req apitype.DashActionRequest
		if err := readJSON(r, &req); err != nil && !errors.Is(err, errBadRequest) {
			t.Fatalf("readJSON(%q) = %v: not a bad request", body, err)
		}
	})
}
