package api

import (
	"bytes"
	"errors"
	"testing"
)

// writeLog is an io.Writer that keeps what it got and the size of each
// write, and fails from the failAt-th write on (0: never).
type writeLog struct {
	buf    bytes.Buffer
	sizes  []int
	failAt int
}

func (w *writeLog) Write(p []byte) (int, error) {
	if w.failAt > 0 && len(w.sizes)+1 >= w.failAt {
		return 0, errors.New("client went away")
	}
	w.sizes = append(w.sizes, len(p))
	return w.buf.Write(p)
}

// A big answer goes out in writes of at most writeChunk, whole and in
// order; a small one in one write; the first error stops it.
func TestWriteChunked(t *testing.T) {
	body := make([]byte, 5*writeChunk/2) // 2.5 chunks
	for i := range body {
		body[i] = byte(i * 7)
	}
	var w writeLog
	if err := writeChunked(&w, body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.buf.Bytes(), body) {
		t.Fatal("the answer written differs from the body")
	}
	if want := []int{writeChunk, writeChunk, writeChunk / 2}; len(w.sizes) != 3 || w.sizes[0] != want[0] || w.sizes[1] != want[1] || w.sizes[2] != want[2] {
		t.Errorf("writes of %v bytes, want %v", w.sizes, want)
	}

	var small writeLog
	if err := writeChunked(&small, body[:100]); err != nil || len(small.sizes) != 1 || small.sizes[0] != 100 {
		t.Errorf("a 100-byte answer: writes %v, err %v; want one write of 100", small.sizes, err)
	}

	failing := writeLog{failAt: 2}
	if err := writeChunked(&failing, body); err == nil {
		t.Error("no error from a writer that failed")
	}
	if len(failing.sizes) != 1 {
		t.Errorf("%d writes before the error, want 1 (none after it)", len(failing.sizes))
	}
}
