package bgp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gbgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// communityGracefulShutdown is GRACEFUL_SHUTDOWN (RFC 8326 §4), 65535:0.
const communityGracefulShutdown = 0xFFFF0000

// route is what reachd announces for one prefix: the attributes that a
// change of health or drain moves. Two equal routes are one announcement,
// so an unchanged route is never sent again (gobgp #2129: AddPath churn).
type route struct {
	Prefix     netip.Prefix
	NextHop    netip.Addr // invalid: self
	MED        *uint32
	Prepend    int
	Comms      []uint32
	LargeComms [][3]uint32
	Drained    bool // carries GRACEFUL_SHUTDOWN
}

func (r route) key() string {
	med := "-"
	if r.MED != nil {
		med = fmt.Sprint(*r.MED)
	}
	return fmt.Sprintf("%v|%v|%s|%d|%v|%v|%v", r.Prefix, r.NextHop, med, r.Prepend, r.Comms, r.LargeComms, r.Drained)
}

func (r route) family() gbgp.Family {
	if r.Prefix.Addr().Is4() {
		return gbgp.RF_IPv4_UC
	}
	return gbgp.RF_IPv6_UC
}

// path builds the gobgp path. Family is always set (the library's own
// example omits it, and AddPath then fails with "address family is not set").
func (r route) path(localAS uint32) (*apiutil.Path, error) {
	nlri, err := gbgp.NewIPAddrPrefix(r.Prefix)
	if err != nil {
		return nil, err
	}
	nh := r.NextHop
	if !nh.IsValid() {
		// Unspecified: gobgp puts the session's local address (next-hop self).
		nh = netip.IPv4Unspecified()
		if r.Prefix.Addr().Is6() {
			nh = netip.IPv6Unspecified()
		}
	}
	attrs := []gbgp.PathAttributeInterface{gbgp.NewPathAttributeOrigin(gbgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if r.Prefix.Addr().Is4() {
		a, err := gbgp.NewPathAttributeNextHop(nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	} else {
		a, err := gbgp.NewPathAttributeMpReachNLRI(gbgp.RF_IPv6_UC, []gbgp.PathNLRI{{NLRI: nlri}}, nh)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, a)
	}
	var segs []gbgp.AsPathParamInterface
	if r.Prepend > 0 {
		as := make([]uint32, r.Prepend)
		for i := range as {
			as[i] = localAS
		}
		segs = append(segs, gbgp.NewAs4PathParam(gbgp.BGP_ASPATH_ATTR_TYPE_SEQ, as))
	}
	attrs = append(attrs, gbgp.NewPathAttributeAsPath(segs))
	if r.MED != nil {
		attrs = append(attrs, gbgp.NewPathAttributeMultiExitDisc(*r.MED))
	}
	comms := append([]uint32(nil), r.Comms...)
	if r.Drained {
		comms = append(comms, communityGracefulShutdown)
	}
	if len(comms) > 0 {
		attrs = append(attrs, gbgp.NewPathAttributeCommunities(comms))
	}
	if len(r.LargeComms) > 0 {
		var lc []*gbgp.LargeCommunity
		for _, c := range r.LargeComms {
			lc = append(lc, gbgp.NewLargeCommunity(c[0], c[1], c[2]))
		}
		attrs = append(attrs, gbgp.NewPathAttributeLargeCommunities(lc))
	}
	return &apiutil.Path{Family: r.family(), Nlri: nlri, Attrs: attrs}, nil
}

// peerEvent is a session state change.
type peerEvent struct {
	Addr   netip.Addr
	State  gbgp.FSMState
	Reason string
}

// speaker is one embedded gobgp server. A BgpServer cannot be started
// again after StopBgp, so a speaker is used once: build a new one instead.
// StartBgp sets package-level route selection options in gobgp, so a
// process runs one speaker at a time (tests with two start them in turn).
type speaker struct {
	s       *server.BgpServer
	cfg     Settings
	log     *slog.Logger
	cancel  context.CancelFunc // ends the watchers
	watchWG sync.WaitGroup
	stopped bool
	// pathCalls counts AddPath and DeletePath calls: what the feature asked
	// gobgp to send (tests check that nothing is asked while nothing changed).
	pathCalls atomic.Uint64
}

// speakerOptions are the callbacks of a speaker; they run on gobgp's
// watcher goroutines and must not block for long.
type speakerOptions struct {
	OnPeer func(peerEvent)
	// OnUpdate gets the routes neighbors announce and withdraw (the
	// pre-policy Adj-RIB-In), also the withdraws gobgp makes itself when
	// a session ends.
	OnUpdate func([]*apiutil.Path)
}

// startSpeaker starts gobgp with cfg and adds the neighbors. Paths that
// should be announced from the first UPDATE are added with announce
// before the sessions come up (restart without flap).
func startSpeaker(cfg Settings, log *slog.Logger, o speakerOptions, initial []route) (*speaker, error) {
	restarting := len(initial) > 0
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	s := server.NewBgpServer(server.LoggerOption(log.With("component", "gobgp"), lvl))
	go s.Serve()
	sp := &speaker{s: s, cfg: cfg, log: log}
	port := int32(-1) // gobgp's "do not listen"
	if cfg.ListenPort > 0 {
		port = int32(cfg.ListenPort)
	}
	g := &api.Global{Asn: cfg.LocalAS, RouterId: cfg.RouterID.String(), ListenPort: port}
	for _, a := range cfg.ListenAddrs {
		g.ListenAddresses = append(g.ListenAddresses, a.String())
	}
	ctx := context.Background()
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("starting BGP: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	sp.cancel = cancel
	// WatchEvent needs its options spelled out; with none it watches nothing.
	if o.OnPeer != nil {
		err := s.WatchEvent(wctx, server.WatchEventMessageCallbacks{
			OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
				if ev.Type != apiutil.PEER_EVENT_STATE {
					return
				}
				reason := ev.Peer.State.DisconnectMessage
				o.OnPeer(peerEvent{Addr: ev.Peer.State.NeighborAddress, State: ev.Peer.State.SessionState, Reason: reason})
			},
		}, server.WatchPeer())
		if err != nil {
			sp.stop()
			return nil, fmt.Errorf("watching peers: %w", err)
		}
	}
	if o.OnUpdate != nil {
		err := s.WatchEvent(wctx, server.WatchEventMessageCallbacks{
			OnPathUpdate: func(ps []*apiutil.Path, _ time.Time) { o.OnUpdate(ps) },
		}, server.WatchUpdate(true, "", ""), server.WatchAdjInWithdraw())
		if err != nil {
			sp.stop()
			return nil, fmt.Errorf("watching updates: %w", err)
		}
	}
	for _, r := range initial {
		if err := sp.announce(r); err != nil {
			sp.stop()
			return nil, err
		}
	}
	for _, n := range cfg.Neighbors {
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(cfg, n, restarting)}); err != nil {
			sp.stop()
			return nil, fmt.Errorf("neighbor %v: %w", n.Addr, err)
		}
	}
	return sp, nil
}

func peerConfig(cfg Settings, n Neighbor, restarting bool) *api.Peer {
	hold := uint64(n.HoldTime / time.Second)
	afi := api.Family_AFI_IP
	if n.Addr.Is6() {
		afi = api.Family_AFI_IP6
	}
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Addr.String(), PeerAsn: n.PeerAS, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: hold, KeepaliveInterval: max(hold/3, 1),
			// gobgp waits 120 s between connection attempts by default; a
			// restarted peer should see its session again within seconds.
			ConnectRetry: 3,
		}},
		Transport: &api.Transport{PassiveMode: n.Passive, RemotePort: uint32(n.Port)},
		AfiSafis: []*api.AfiSafi{{
			Config:            &api.AfiSafiConfig{Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: cfg.GracefulRestart}},
		}},
	}
	if n.LocalAddr.IsValid() {
		p.Transport.LocalAddress = n.LocalAddr.String()
	}
	if n.MultihopTTL > 1 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.MultihopTTL)}
	}
	if n.BFDInterval > 0 {
		// gobgp's BFD (RFC 5880/5881, UDP 3784, TTL 255): when it goes
		// down gobgp resets the BGP session, so the neighbor's routes go
		// (and it drops ours) without waiting for the hold time.
		us := uint32(n.BFDInterval / time.Microsecond)
		p.Bfd = &api.BfdPeerConfig{Enabled: true, DesiredMinimumTxInterval: us, RequiredMinimumReceive: us,
			DetectionMultiplier: uint32(max(n.BFDMultiplier, 1))}
	}
	if cfg.GracefulRestart {
		// RFC 4724: the neighbor keeps our routes for restart-time when
		// the session drops without a NOTIFICATION (reachd killed).
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: uint32(cfg.RestartTime / time.Second)}
		if restarting {
			// The last run ended without withdrawing (SIGKILL, crash):
			// come back as a restarting speaker (RFC 4724 §4.1: Restart
			// State and Forwarding State bits), so the neighbor keeps the
			// stale routes until our End-of-RIB instead of dropping them
			// when the session comes up. gobgp holds our UPDATEs until the
			// neighbor's End-of-RIB, or DeferralTime.
			p.GracefulRestart.LocalRestarting = true
			p.GracefulRestart.DeferralTime = 10
		}
	}
	return p
}

// announce adds or replaces r (one AddPath; a path of the same prefix
// from the same local source replaces the previous one).
func (sp *speaker) announce(r route) error {
	p, err := r.path(sp.cfg.LocalAS)
	if err != nil {
		return fmt.Errorf("building path %v: %w", r.Prefix, err)
	}
	sp.pathCalls.Add(1)
	if _, err := sp.s.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("announcing %v: %w", r.Prefix, err)
	}
	return nil
}

// withdraw removes r.
func (sp *speaker) withdraw(r route) error {
	p, err := r.path(sp.cfg.LocalAS)
	if err != nil {
		return fmt.Errorf("building path %v: %w", r.Prefix, err)
	}
	sp.pathCalls.Add(1)
	if err := sp.s.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("withdrawing %v: %w", r.Prefix, err)
	}
	return nil
}

// peerInfo is one neighbor as gobgp sees it.
type peerInfo struct {
	Addr                           netip.Addr
	PeerAS                         uint32
	State                          string
	Established                    bool
	Uptime                         time.Time
	Received, Accepted, Advertised uint64
	UpdatesSent                    uint64
	Reason                         string
	// BFD is the BFD session's state (up, down, init, admin_down), ""
	// without BFD.
	BFD string
}

func (sp *speaker) peers(ctx context.Context) ([]peerInfo, error) {
	var out []peerInfo
	bfd := map[netip.Addr]string{}
	sp.s.ListBfdPeer(ctx, func(addr string, st *api.BfdPeerState) {
		if a, err := netip.ParseAddr(addr); err == nil && st != nil {
			bfd[a] = strings.TrimPrefix(strings.ToLower(st.SessionState.String()), "bfd_session_state_")
		}
	})
	err := sp.s.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		pi := peerInfo{}
		if p.Conf != nil {
			pi.Addr, _ = netip.ParseAddr(p.Conf.NeighborAddress)
			pi.PeerAS = p.Conf.PeerAsn
		}
		if st := p.State; st != nil {
			pi.State = strings.TrimPrefix(strings.ToLower(st.SessionState.String()), "session_state_")
			pi.Established = st.SessionState == api.PeerState_SESSION_STATE_ESTABLISHED
			pi.Reason = st.DisconnectMessage
			if st.Messages != nil && st.Messages.Sent != nil {
				pi.UpdatesSent = st.Messages.Sent.Update
			}
		}
		if p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil && pi.Established {
			pi.Uptime = p.Timers.State.Uptime.AsTime()
		}
		for _, af := range p.AfiSafis {
			if af.State != nil {
				pi.Received += af.State.Received
				pi.Accepted += af.State.Accepted
				pi.Advertised += af.State.Advertised
			}
		}
		pi.BFD = bfd[pi.Addr]
		out = append(out, pi)
	})
	return out, err
}

// waitSent waits until every neighbor that was established in before has
// sent at least one more UPDATE than it had then (the withdraw left the
// socket), or until ctx ends.
func (sp *speaker) waitSent(ctx context.Context, before []peerInfo) {
	want := map[netip.Addr]uint64{}
	for _, p := range before {
		if p.Established {
			want[p.Addr] = p.UpdatesSent
		}
	}
	for len(want) > 0 {
		now, err := sp.peers(ctx)
		if err != nil {
			return
		}
		for _, p := range now {
			if n, ok := want[p.Addr]; ok && (!p.Established || p.UpdatesSent > n) {
				delete(want, p.Addr)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// reconcilePeers makes the running server's neighbors those of next:
// removed ones are deleted (their routes go, the learner sees the
// withdraws), new ones added, and a neighbor whose session settings
// changed is deleted and added again. A neighbor that only changed what
// reachd does with its routes (learn:) keeps its session, and so does
// every neighbor that did not change. It returns what it changed, and
// the first error (it goes on with the other neighbors).
func (sp *speaker) reconcilePeers(ctx context.Context, next Settings) (changed []string, err error) {
	was := map[netip.Addr]Neighbor{}
	for _, n := range sp.cfg.Neighbors {
		was[n.Addr] = n
	}
	keep := func(err2 error) {
		if err == nil {
			err = err2
		}
	}
	for _, n := range next.Neighbors {
		o, ok := was[n.Addr]
		delete(was, n.Addr)
		if ok {
			o.LearnService, o.MinLocalPref = n.LearnService, n.MinLocalPref
			if o == n {
				continue
			}
			if e := sp.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Addr.String()}); e != nil {
				keep(fmt.Errorf("neighbor %v: removing it to apply its new settings: %w", n.Addr, e))
				continue
			}
		}
		if e := sp.s.AddPeer(ctx, &api.AddPeerRequest{Peer: peerConfig(next, n, false)}); e != nil {
			keep(fmt.Errorf("neighbor %v: %w", n.Addr, e))
			continue
		}
		if ok {
			changed = append(changed, "changed "+n.Addr.String())
		} else {
			changed = append(changed, "added "+n.Addr.String())
		}
	}
	for a := range was {
		if e := sp.s.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); e != nil {
			keep(fmt.Errorf("neighbor %v: %w", a, e))
			continue
		}
		changed = append(changed, "removed "+a.String())
	}
	slices.Sort(changed)
	sp.cfg = next
	return changed, err
}

// stop ends the watchers first (a watcher blocked on a callback would
// hold gobgp's stop), then the server. Idempotent.
func (sp *speaker) stop() {
	if sp.stopped {
		return
	}
	sp.stopped = true
	if sp.cancel != nil {
		sp.cancel()
	}
	sp.s.Stop()
}
