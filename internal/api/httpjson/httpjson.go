// Package httpjson is how reachd's HTTP handlers read and write JSON and map
// errors to status codes. The API server and every feature's handlers use
// it, so a feature serves its routes without importing the API server.
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/reachd/reachd/internal/apitype"
)

// ErrNotFound marks an unknown service, path, flow or group; handlers
// answer 404.
var ErrNotFound = apitype.ErrNotFound

// ErrBadRequest marks a request the caller must fix; handlers answer 400.
var ErrBadRequest = apitype.ErrBadRequest

// WriteJSON writes v with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// WriteError maps err to a status code and writes {"error": "..."}.
func WriteError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, ErrTooLarge):
		code = http.StatusRequestEntityTooLarge
	}
	WriteJSON(w, code, apitype.Error{Error: err.Error()})
}

// ErrTooLarge marks a request body over the limit; handlers answer 413.
var ErrTooLarge = errors.New("request body too large")

// ReadJSON decodes a small JSON body into v; an empty body leaves v as is.
// Unknown fields and anything after the JSON value are refused: a typo in
// a field name must not be silently ignored.
func ReadJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, mbe.Limit)
		}
		return fmt.Errorf("%w: reading body: %v", ErrBadRequest, err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body is not the expected JSON: %v", ErrBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: body has more after its JSON value", ErrBadRequest)
	}
	return nil
}
