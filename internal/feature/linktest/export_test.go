package linktest

// Recorded lets tests wait for the owner to record a run: it receives
// (coalesced) after each run the owner recorded.
func Recorded(s *Scheduler) <-chan struct{} { return s.recorded }
