package clock

import "time"

// WaitUntil asks cond every millisecond, on the real clock, until it says
// true or limit has passed, and tells whether it did. It is for tests that
// wait on what real I/O brings (a packet counted on a reader's goroutine, a
// route a real peer learned), which no Fake can advance: they assert on
// what cond saw last, so a timeout still shows the values.
func WaitUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}
