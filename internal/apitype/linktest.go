package apitype

import (
	"net/netip"
	"time"
)

// The link-test API (seed document 004): POST /v1/linktest runs one test,
// GET /v1/linktests lists the scheduled ones.

// MaxLinktestDuration bounds how long POST /v1/linktest may run.
const MaxLinktestDuration = 2 * time.Minute

// LinktestRequest is the body of POST /v1/linktest: one on-demand test. Zero
// values take the measuring package's defaults (TTL 254, 100 probes of
// 1500 bytes, 2s timeout).
type LinktestRequest struct {
	Interface   string `json:"interface"`
	LoopAddress string `json:"loop-address"`
	TTL         int    `json:"ttl,omitempty"`
	AllowOddTTL bool   `json:"allow-odd-ttl,omitempty"`
	Count       int    `json:"count,omitempty"`
	Size        int    `json:"size,omitempty"`
	// Interval and Timeout are durations: "100us", "2s" (or seconds, "2").
	Interval string `json:"interval,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
	// Fill ("20%") measures the production load over LoadWindow
	// (default "10s"; "0" leaves it out) and the RTT, then sizes the
	// burst instead of Count, as a share of LinkSpeed ("1G"; default what
	// the kernel reports for the interface).
	Fill       string `json:"fill,omitempty"`
	LinkSpeed  string `json:"link-speed,omitempty"`
	LoadWindow string `json:"load-window,omitempty"`
	Mark       int    `json:"mark,omitempty"`
	// DSCP marks the probes: "ef", "af41", "cs1" or "0".."63".
	DSCP string `json:"dscp,omitempty"`
	// Until "max-loss" with MaxLoss ("1%") runs a sequential test: rounds
	// of Round probes until the loss is clearly above or below MaxLoss
	// at Confidence (default "95%"), at most Count.
	Until      string `json:"until,omitempty"`
	MaxLoss    string `json:"max-loss,omitempty"`
	Confidence string `json:"confidence,omitempty"`
	Round      int    `json:"round,omitempty"`
}

// LinktestStatus is one scheduled test in GET /v1/linktests.
type LinktestStatus struct {
	Name           string          `json:"name"`
	Interface      string          `json:"interface"`
	Loop           string          `json:"loop-address"`
	Interval       string          `json:"interval"`
	MaxLossPercent *float64        `json:"max-loss-percent,omitempty"`
	AffectsPath    string          `json:"affects-path,omitempty"`
	Runs           int             `json:"runs"`
	LastRun        *time.Time      `json:"last-run"`
	LastError      string          `json:"last-error,omitempty"`
	Report         *LinktestReport `json:"report"` // the last test that ran
	// HoldsDown is true while the last loss exceeded max-loss and the
	// test holds AffectsPath down; Reason says by how much.
	HoldsDown bool   `json:"holds-path-down"`
	Reason    string `json:"reason,omitempty"`
}

// LinktestReport is the outcome of one link test (the answer of POST
// /v1/linktest), the JSON of probe/ttlloop.Report: the field names are the
// JSON keys, durations are nanoseconds. A test in internal/feature/linktest fails
// when the two differ.
type LinktestReport struct {
	Interface string
	Loop      netip.Addr
	TTL       int
	Size      int
	Started   time.Time
	Duration  time.Duration // first send to end of the wait

	// Sent counts probes the kernel accepted; Returned those whose Time
	// Exceeded came back; Lost = Sent - Returned.
	Sent, Returned, Lost int
	LossPercent          float64 // 100 × Lost / Sent; 0 when nothing was sent
	// Looped RTT: from sending a probe to receiving its Time Exceeded.
	RTTMin, RTTMedian, RTTMax time.Duration

	// Responders are the sources of the ICMP errors that quoted our probes.
	Responders []LinktestResponder
	// Unreachable counts Destination Unreachable messages quoting our probes.
	Unreachable int
	// Duplicates counts further Time Exceeded for probes already returned.
	Duplicates int
	// Foreign counts ICMP errors that quote no probe of this test.
	Foreign int
	// SendErrors counts probes the kernel refused; SendError is the first.
	SendErrors int
	SendError  string
	// RecvDropped counts ICMP messages this host's socket buffer dropped.
	RecvDropped uint32

	// Plan is set when the burst was sized from a fill share.
	Plan *LinktestPlan
	// CalibrationRTT is the median looped RTT of the calibration probes.
	CalibrationRTT time.Duration

	// DSCP is the code point the probes were sent with (DSCPName: "ef");
	// Remarked counts returned probes quoted with another DSCP
	// (RemarkedTo, the last one seen).
	DSCP       int
	DSCPName   string
	Remarked   int `json:",omitempty"`
	RemarkedTo int `json:",omitempty"`

	// LinkSpeed is the speed a fill-sized test used (bits per second) and
	// LinkSpeedSource where it came from.
	LinkSpeed       float64 `json:",omitempty"`
	LinkSpeedSource string  `json:",omitempty"`
	// Production is the interface's own traffic a fill-sized test left
	// room for.
	Production *LinktestProduction `json:",omitempty"`
	// Skipped is true when production traffic left no room for the test.
	Skipped    bool   `json:",omitempty"`
	SkipReason string `json:",omitempty"`

	// PlannedGap is the pacing asked for, AchievedGap the mean gap sent.
	PlannedGap, AchievedGap time.Duration
	// PlannedBps is the test load aimed at, AchievedBps the load kept.
	PlannedBps  float64 `json:",omitempty"`
	AchievedBps float64

	// Sequential is set for a sequential (until max-loss) test.
	Sequential *LinktestSequential `json:",omitempty"`
}

// LinktestProduction is the production traffic a fill-sized test accounted
// for.
type LinktestProduction struct {
	RxBps, TxBps, UsedBps      float64
	Window                     time.Duration
	Ignored                    bool `json:",omitempty"`
	RequestedFill, GrantedFill float64
	Verdict                    string // as-requested, reduced or skipped
	Reason                     string `json:",omitempty"`
}

// LinktestSequential is the outcome of a sequential test.
type LinktestSequential struct {
	Decision             string // below, above or undecided
	MaxLossPercent       float64
	ConfidencePercent    float64
	H0Percent, H1Percent float64
	Probes, Rounds       int
	LLR, Lower, Upper    float64
	CleanProbes          int
	FixedProbes          int
}

// LinktestResponder is one source of ICMP errors about our probes.
type LinktestResponder struct {
	Addr netip.Addr
	// Local is true when Addr is an address of this host.
	Local        bool
	TimeExceeded int
	Unreachable  int
}

// LinktestPlan is how a burst was sized from a fill share (section 7 of
// draft-turaga-lmap-special-loop-address): linkplan.BurstPlan's fields.
type LinktestPlan struct {
	LinkSpeed  float64       // link speed in bits per second
	RTT        time.Duration // round-trip time of the link
	Size       int           // IP packet size of one probe in bytes
	TTL        int           // initial TTL (hop limit) of the probes
	BitsPerRTT float64       // LinkSpeed × RTT
	ProbeBits  int           // Size × 8
	FullLink   int           // probes that fill 100 % of the link
	Probes     int           // probes that fill the requested share
	Fill       float64       // requested share, 0 < Fill ≤ 1
	ActualFill float64       // share that Probes really fill
	Loop       time.Duration // TTL × RTT, how long the burst loops
	Gap        time.Duration // pacing of the burst, RTT / Probes
	RateBps    float64       // test load on each direction
}
