package linkplan

import (
	"fmt"
	"math"
)

// DefaultConfidence is the confidence of a sequential test's decision when
// none is given: each of its two error rates is 1 − 0.95.
const DefaultConfidence = 0.95

// Decision is the state of a sequential test.
//
//	Undecided ──► Below  (loss clearly at or below max-loss: pass)
//	          └─► Above  (loss clearly above max-loss: fail)
//
// Both are final.
type Decision int

const (
	Undecided Decision = iota
	Below
	Above
)

func (d Decision) String() string {
	switch d {
	case Undecided:
		return "undecided"
	case Below:
		return "below"
	case Above:
		return "above"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// SPRT is Wald's sequential probability ratio test of a link's per-probe
// loss against max-loss: it tells "loss ≤ P0" from "loss ≥ P1", where P0
// and P1 straddle max-loss (P0 = max-loss/2, P1 = 2·max-loss, capped
// half-way to 1 for large max-loss), with error rates Alpha (calling a
// link at P0 bad) and Beta (calling a link at P1 good). Loss between P0
// and P1 is the indifference zone: either answer is acceptable there.
//
// After each observation the log-likelihood ratio
//
//	LLR = lost·ln(P1/P0) + returned·ln((1−P1)/(1−P0))
//
// is compared with ln((1−Beta)/Alpha) (decide Above) and
// ln(Beta/(1−Alpha)) (decide Below). A clean link needs
// ln((1−Alpha)/Beta) / ln((1−P0)/(1−P1)) probes and no more, where a
// fixed-size test with the same error rates needs [SPRT.FixedN].
// The zero value is not usable; use [NewSPRT].
type SPRT struct {
	MaxLoss, P0, P1, Alpha, Beta float64

	Sent, Lost int
	LLR        float64
	Decision   Decision
}

// NewSPRT makes a sequential test for max-loss (a share, 0 < maxLoss <
// 1) whose decisions are right with the given confidence (0.5 <
// confidence < 1): Alpha = Beta = 1 − confidence.
func NewSPRT(maxLoss, confidence float64) (*SPRT, error) {
	if !(maxLoss > 0 && maxLoss < 1) {
		return nil, fmt.Errorf("max-loss %v%%: a sequential test needs more than 0%% and less than 100%%", maxLoss*100)
	}
	if !(confidence > 0.5 && confidence < 1) {
		return nil, fmt.Errorf("confidence %v%%: must be more than 50%% and less than 100%%", confidence*100)
	}
	p0 := maxLoss / 2
	p1 := min(2*maxLoss, (1+maxLoss)/2)
	e := 1 - confidence
	return &SPRT{MaxLoss: maxLoss, P0: p0, P1: p1, Alpha: e, Beta: e}, nil
}

// Upper is the LLR at or above which the test decides Above.
func (s *SPRT) Upper() float64 { return math.Log((1 - s.Beta) / s.Alpha) }

// Lower is the LLR at or below which the test decides Below.
func (s *SPRT) Lower() float64 { return math.Log(s.Beta / (1 - s.Alpha)) }

// Observe adds sent probes of which lost did not return and returns the
// decision. Once decided, further observations change nothing.
func (s *SPRT) Observe(sent, lost int) Decision {
	if s.Decision != Undecided || sent <= 0 {
		return s.Decision
	}
	lost = min(max(lost, 0), sent)
	s.Sent += sent
	s.Lost += lost
	s.LLR += float64(lost)*math.Log(s.P1/s.P0) + float64(sent-lost)*math.Log((1-s.P1)/(1-s.P0))
	switch {
	case s.LLR >= s.Upper():
		s.Decision = Above
	case s.LLR <= s.Lower():
		s.Decision = Below
	}
	return s.Decision
}

// CleanN is the number of probes a link without any loss needs to be
// decided Below.
func (s *SPRT) CleanN() int {
	return int(math.Ceil(s.Lower() / math.Log((1-s.P1)/(1-s.P0))))
}

// FixedN is the size of the fixed-count test that tells P0 from P1 with
// the same error rates (normal approximation of the binomial):
//
//	n = ((z(1−α)·√(P0(1−P0)) + z(1−β)·√(P1(1−P1))) / (P1 − P0))²
//
// It is what a test that always sends the same count would need to give
// the same assurance; CleanN/FixedN is what stopping early saves.
func (s *SPRT) FixedN() int {
	za, zb := zQuantile(1-s.Alpha), zQuantile(1-s.Beta)
	n := (za*math.Sqrt(s.P0*(1-s.P0)) + zb*math.Sqrt(s.P1*(1-s.P1))) / (s.P1 - s.P0)
	return int(math.Ceil(n * n))
}

// zQuantile is the standard normal quantile: Φ⁻¹(p), 0 < p < 1.
func zQuantile(p float64) float64 { return math.Sqrt2 * math.Erfinv(2*p-1) }

// String says where the test stands, e.g. "below max-loss 1% after 194
// probes (0 lost; H0 loss ≤ 0.5% vs H1 loss ≥ 2%, 95% confidence)".
func (s *SPRT) String() string {
	what := "undecided"
	switch s.Decision {
	case Below:
		what = fmt.Sprintf("loss below max-loss %g%%", s.MaxLoss*100)
	case Above:
		what = fmt.Sprintf("loss above max-loss %g%%", s.MaxLoss*100)
	}
	return fmt.Sprintf("%s after %d probes (%d lost; loss ≤ %g%% vs ≥ %g%% at %g%% confidence)",
		what, s.Sent, s.Lost, s.P0*100, s.P1*100, (1-s.Alpha)*100)
}
