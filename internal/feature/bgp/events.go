package bgp

import "github.com/reachd/reachd/internal/apitype"

// publish sends a change (an announcement's announce, drain or withdraw,
// or a session's state) to the event feed.
func (f *Feature) publish(subject, from, to, reason string) {
	if f.opts.Events == nil {
		return
	}
	f.opts.Events.Publish(apitype.Event{Time: f.opts.Clock.Now(), Kind: apitype.EventBGP, Subject: subject, From: from, To: to, Reason: reason})
}
