package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/reachd/reachd/internal/apitype"
)

// errBadRequest marks a request the caller must fix (400).
var errBadRequest = errors.New("bad request")

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": "..."}: 404 for an unknown service, path or
// group, 400 for a request to fix, 500 otherwise.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, apitype.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	}
	writeJSON(w, code, apitype.Error{Error: err.Error()})
}

// readJSON decodes a small JSON body into v.
func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("%w: reading body: %v", errBadRequest, err)
	}
	if strings.TrimSpace(string(body)) == "" {
		return fmt.Errorf("%w: empty body; send JSON", errBadRequest)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: body is not the expected JSON: %v", errBadRequest, err)
	}
	return nil
}
