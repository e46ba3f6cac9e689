package e2e

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reachd/reachd/internal/lab"
	"golang.org/x/sys/unix"
)

// The forgers below are bounded: at most floodRate packets a second, for
// at most floodFor, and they stop when the test ends.
const (
	floodRate = 20000
	floodFor  = 8 * time.Second
)

// offPathHost adds a namespace "spoofer" that hangs off isp's namespace on
// a link of its own (198.51.100.18/30 and 2001:db8:0:12::2/64, the ISP's
// end .17 and ::1): it is on no
// path between the router and the internet, yet its packets reach the
// router through the ISP. It claims the forged addresses on its loopback,
// so that its raw sockets can send from them, as a spoofer would.
func offPathHost(t *testing.T, top *lab.Topology, isp *lab.ISP, forged ...netip.Addr) *lab.NS {
	t.Helper()
	ns, err := top.Lab.AddNS("spoofer")
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Lab.Link(ns, "sp0", isp.NS, "spoof0"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{
		isp.NS.AddAddr("spoof0", "198.51.100.17/30"),
		isp.NS.AddAddr("spoof0", "2001:db8:0:12::1/64"),
		ns.AddAddr("sp0", "198.51.100.18/30"),
		ns.AddAddr("sp0", "2001:db8:0:12::2/64"),
		ns.AddRoute("default", "198.51.100.17"),
		ns.AddRoute("default", "2001:db8:0:12::1"),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	for _, a := range forged {
		if err := ns.AddAddr("lo", netip.PrefixFrom(a, a.BitLen()).String()); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// tap reads the IPv4 and IPv6 packets passing ifname in ns (an AF_PACKET socket:
// it sees them before nftables, so also the ones a blackhole then drops)
// and hands each to see until the test ends. It stands for what an
// attacker may know of reachd's packets (identifiers, ports, sequence
// numbers): the point of the tests is that knowing them is not enough.
func tap(t *testing.T, ns *lab.NS, ifname string, see func(ip []byte)) {
	t.Helper()
	var fd int
	if err := ns.Do(func() error {
		lk, err := ns.Handle().LinkByName(ifname)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: lk.Attrs().Index}); err != nil {
			unix.Close(fd)
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for !stop.Load() {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err == nil {
				see(buf[:n])
			}
		}
	}()
	t.Cleanup(func() { stop.Store(true); wg.Wait(); unix.Close(fd) })
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// flood sends the packets that next writes, from a raw socket opened in ns
// (open returns it), at floodRate for at most floodFor or until stopped.
type flood struct {
	sent atomic.Int64
	errs atomic.Int64
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

func startFlood(t *testing.T, ns *lab.NS, open func() (int, error), next func(i int, buf []byte) ([]byte, unix.Sockaddr)) *flood {
	t.Helper()
	var fd int
	if err := ns.Do(func() (err error) { fd, err = open(); return err }); err != nil {
		t.Fatal(err)
	}
	f := &flood{stop: make(chan struct{})}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer unix.Close(fd)
		const tick = 5 * time.Millisecond
		per := floodRate * int(tick) / int(time.Second)
		buf := make([]byte, 2048)
		tk := time.NewTicker(tick)
		defer tk.Stop()
		end := time.After(floodFor)
		for i := 0; ; {
			for range per {
				pkt, to := next(i, buf)
				i++
				if pkt == nil {
					continue
				}
				if unix.Sendto(fd, pkt, 0, to) == nil {
					f.sent.Add(1)
				} else {
					f.errs.Add(1)
				}
			}
			select {
			case <-f.stop:
				return
			case <-end:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(f.Stop)
	return f
}

// Stop ends the flood and waits for it.
func (f *flood) Stop() {
	f.once.Do(func() { close(f.stop) })
	f.wg.Wait()
}

// scrape reads reachd's /metrics from inside ns: every sample by its
// series ("name{labels}").
func scrape(t *testing.T, ns *lab.NS, addr string) map[string]float64 {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			return ns.DialContext(ctx, nil, network, a)
		},
	}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// ipv4Payload returns the protocol, source, destination and payload of an
// IPv4 packet.
func ipv4Payload(b []byte) (proto byte, src, dst netip.Addr, payload []byte, ok bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return 0, src, dst, nil, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl || len(b) < total {
		return 0, src, dst, nil, false
	}
	src, _ = netip.AddrFromSlice(b[12:16])
	dst, _ = netip.AddrFromSlice(b[16:20])
	return b[9], src, dst, b[ihl:total], true
}

// ipPayload is ipv4Payload for IPv4 and IPv6 packets (an IPv6 packet's
// first next header is taken as its protocol: the tests' packets carry no
// extension headers).
func ipPayload(b []byte) (proto byte, src, dst netip.Addr, payload []byte, ok bool) {
	if len(b) >= 40 && b[0]>>4 == 6 {
		n := int(binary.BigEndian.Uint16(b[4:]))
		if len(b) < 40+n {
			return 0, src, dst, nil, false
		}
		src, _ = netip.AddrFromSlice(b[8:24])
		dst, _ = netip.AddrFromSlice(b[24:40])
		return b[6], src, dst, b[40 : 40+n], true
	}
	return ipv4Payload(b)
}

func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// rawICMPFrom opens a raw ICMP (ICMPv6) socket sending from src (an
// address of the namespace it is opened in). The kernel computes ICMPv6
// checksums itself (RFC 3542 §3.1).
func rawICMPFrom(src netip.Addr) func() (int, error) {
	return func() (int, error) {
		fam, proto := unix.AF_INET, unix.IPPROTO_ICMP
		var sa unix.Sockaddr
		if src.Is6() {
			fam, proto, sa = unix.AF_INET6, unix.IPPROTO_ICMPV6, &unix.SockaddrInet6{Addr: src.As16()}
		} else {
			sa = &unix.SockaddrInet4{Addr: src.As4()}
		}
		fd, err := unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return -1, err
		}
		if err := unix.Bind(fd, sa); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("binding to %v: %w", src, err)
		}
		return fd, nil
	}
}
