package linkplan

import (
	"fmt"
	"strconv"
	"strings"
)

// dscpNames are the DiffServ code point names an operator writes: class
// selectors CS0-CS7 (RFC 2474 section 4.2.2), Assured Forwarding AFxy
// (RFC 2597: class x 1-4, drop precedence y 1-3, DSCP 8x+2y), Expedited
// Forwarding EF (RFC 3246, 46), and the "default" / "be" best effort (0).
var dscpNames = func() map[string]int {
	m := map[string]int{"ef": 46, "be": 0, "default": 0}
	for c := 0; c <= 7; c++ {
		m[fmt.Sprintf("cs%d", c)] = 8 * c
	}
	for x := 1; x <= 4; x++ {
		for y := 1; y <= 3; y++ {
			m[fmt.Sprintf("af%d%d", x, y)] = 8*x + 2*y
		}
	}
	return m
}()

// ParseDSCP reads a DiffServ code point (draft section 8: probes "can be
// marked with any class of service"): a name such as ef, af41, cs1, be, in
// either case, or a number 0-63 (decimal, or 0x.. hexadecimal). The probes
// carry it in the upper six bits of the IPv4 TOS byte or the IPv6 traffic
// class; the ECN bits stay 0.
func ParseDSCP(s string) (int, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if v, ok := dscpNames[t]; ok {
		return v, nil
	}
	v, err := strconv.ParseInt(t, 0, 16)
	if err != nil || v < 0 || v > 63 {
		return 0, fmt.Errorf("dscp %q: want a name (ef, af11-af43, cs0-cs7, be) or a number 0-63", s)
	}
	return int(v), nil
}

// DSCPName names a code point: "ef", "af41", "cs1", or the number ("10"
// is af11, so numbers appear only for code points without a name). 0 is
// "cs0" (best effort).
func DSCPName(v int) string {
	switch {
	case v == 46:
		return "ef"
	case v < 0 || v > 63:
		return strconv.Itoa(v)
	case v%8 == 0:
		return fmt.Sprintf("cs%d", v/8)
	case v >= 8 && v <= 38 && v%2 == 0 && v%8 <= 6:
		return fmt.Sprintf("af%d%d", v/8, (v%8)/2)
	}
	return strconv.Itoa(v)
}

// TOS is the IPv4 TOS byte (or IPv6 traffic class) that carries dscp with
// the ECN field 0 (RFC 2474 section 3, RFC 3168).
func TOS(dscp int) int { return dscp << 2 }
