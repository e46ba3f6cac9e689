package clock

import (
	"errors"
	"fmt"
	"time"
)

// The range of time slices Linux accepts (kernel/sched/syscalls.c clamps
// sched_runtime to it); ShortSlices takes these or 0.
const (
	MinSlice = 100 * time.Microsecond
	MaxSlice = 100 * time.Millisecond
)

// ErrSliceIgnored is ShortSlices' answer where the kernel keeps its own
// time slices: Linux before 6.12 takes the request and ignores it, and
// other systems have none.
var ErrSliceIgnored = errors.New("this kernel keeps its own time slices (custom slices came with Linux 6.12)")

// CheckSlice says whether ShortSlices takes d: 0 or MinSlice to MaxSlice.
func CheckSlice(d time.Duration) error {
	if d != 0 && (d < MinSlice || d > MaxSlice) {
		return fmt.Errorf("time slice %v: want 0 (the kernel's default) or %v to %v", d, MinSlice, MaxSlice)
	}
	return nil
}
