package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// SetExternal records another monitor's verdict on a path (for example a
// link test whose loss exceeded max-loss, with affects-path set): down=true
// holds the path down whatever its probes say until the same source clears
// it. An operator override still wins over both.
func (e *Engine) SetExternal(ctx context.Context, service, pathName, source string, down bool, reason string) error {
	var err error
	derr := e.do(ctx, func() {
		p := e.findPath(service, pathName)
		if p == nil {
			err = fmt.Errorf("service %q path %q: %w", service, pathName, ErrNotFound)
			return
		}
		k := pathKey{service, pathName}
		votes := e.external[k]
		_, had := votes[source]
		if down == had && (!down || votes[source] == reason) {
			return
		}
		if down {
			if votes == nil {
				votes = map[string]string{}
				e.external[k] = votes
			}
			votes[source] = reason
			e.refreshPath(p, source+": "+reason)
			return
		}
		delete(votes, source)
		e.refreshPath(p, source+": cleared")
	})
	if derr != nil {
		return derr
	}
	return err
}

// externalReason joins the reasons that hold a path down.
func externalReason(votes map[string]string) string {
	var s []string
	for src, r := range votes {
		s = append(s, src+": "+r)
	}
	sort.Strings(s)
	return strings.Join(s, "; ")
}
