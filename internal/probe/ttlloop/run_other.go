//go:build !linux

package ttlloop

import (
	"context"
	"errors"
	"fmt"
)

// Run performs one link test; it needs Linux (raw sockets bound to an
// interface, SO_TIMESTAMPNS, /proc/sys checks).
func Run(ctx context.Context, opts Options) (Report, error) {
	return Report{}, fmt.Errorf("link test: %w on this operating system", errors.ErrUnsupported)
}
