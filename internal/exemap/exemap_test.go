package exemap

import (
	"os"
	"strings"
	"testing"
)

func TestReadOnlySpans(t *testing.T) {
	got, err := readOnlySpans("testdata/smaps", "/usr/sbin/reachd")
	if err != nil {
		t.Fatal(err)
	}
	// The text and the read-only data; not the RELRO page the dynamic
	// linker wrote (Anonymous 4 kB), not the writable data, not a shared
	// mapping, not another file's or a deleted file's mapping.
	want := []span{{0x400000, 0x402000}, {0x402000, 0x11b2000}, {0x11b2000, 0x21e4000}}
	if len(got) != len(want) {
		t.Fatalf("spans %#v, want %#v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("span %d = %#x-%#x, want %#x-%#x", i, got[i].start, got[i].end, want[i].start, want[i].end)
		}
	}
}

func TestParseMapsLineRejects(t *testing.T) {
	for _, line := range []string{
		"",
		"Size:                  8 kB",
		"zz-00402000 r--p 00000000 fe:00 1 /x",
		"00402000-00400000 r--p 00000000 fe:00 1 /x", // end before start
		"00400000-00402000 rw-p 00000000 fe:00 1 /x",
		"00400000-00402000 r--s 00000000 fe:00 1 /x",
		"00400000-00402000 r--p 00000000 fe:00 1 /y",
		"00400000-00402000 r--p 00000000 fe:00 1",
	} {
		if _, ok, _ := parseMapsLine(line, "/x"); ok {
			t.Errorf("%q accepted", line)
		}
	}
	if s, ok, header := parseMapsLine("00400000-00402000 r-xp 00000000 fe:00 1 /a b", "/a b"); !ok || !header || s.start != 0x400000 || s.end != 0x402000 {
		t.Errorf("path with a space: %v %v %#v", ok, header, s)
	}
}

// TestSmallKeepsRunning advises this test binary's own mappings (a Go
// binary like reachd, with cgo when the toolchain links it so) and checks
// that the code still runs and that nothing mapped by the executable grew.
func TestSmallKeepsRunning(t *testing.T) {
	r, err := Small()
	if err != nil {
		t.Fatal(err)
	}
	if r.Mappings == 0 {
		t.Fatalf("no read-only mapping of the executable found: %+v", r)
	}
	if r.After > r.Before {
		t.Errorf("RssFile grew from %d to %d bytes", r.Before, r.After)
	}
	// Code and tables that were dropped fault back in: format, reflect
	// and read the maps again.
	exe, _ := os.Readlink("/proc/self/exe")
	again, err := readOnlySpans("/proc/self/smaps", exe)
	if err != nil || len(again) != r.Mappings {
		t.Fatalf("after Small: %d spans (%v), want %d", len(again), err, r.Mappings)
	}
	if s := strings.Repeat("ok", 3); s != "okokok" {
		t.Fatal(s)
	}
}
