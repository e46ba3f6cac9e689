package ttlloop

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"time"
	"unsafe"

	"github.com/reachd/reachd/internal/linkplan"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Reading what the kernel knows of the link under test: its byte counters
// (netlink IFLA_STATS64) for the production load, and its speed (ethtool)
// for link-speed's default. Both work in the calling thread's network
// namespace; sysfs (/sys/class/net/IF/speed) would show the namespace that
// mounted /sys instead.

// counters reads the interface's byte counters.
func counters(ifname string) (linkplan.Counters, error) {
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		return linkplan.Counters{}, fmt.Errorf("reading the counters of %s: %w", ifname, err)
	}
	st := l.Attrs().Statistics
	if st == nil {
		return linkplan.Counters{}, fmt.Errorf("reading the counters of %s: the kernel sent no link statistics", ifname)
	}
	return linkplan.Counters{At: time.Now(), RxBytes: st.RxBytes, TxBytes: st.TxBytes}, nil
}

// measureLoad averages the interface's traffic over window (or until ctx
// ends, which is an error).
func measureLoad(ctx context.Context, ifname string, window time.Duration) (linkplan.Load, error) {
	a, err := counters(ifname)
	if err != nil {
		return linkplan.Load{}, err
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return linkplan.Load{}, ctx.Err()
	}
	b, err := counters(ifname)
	if err != nil {
		return linkplan.Load{}, err
	}
	return linkplan.LoadBetween(a, b), nil
}

// linkAttrs collects the speed-deciding attributes of every interface of
// the namespace.
func linkAttrs() ([]linkplan.LinkAttrs, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket for ethtool: %w", err)
	}
	defer unix.Close(fd)
	out := make([]linkplan.LinkAttrs, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		out = append(out, linkplan.LinkAttrs{
			Name:        a.Name,
			Index:       a.Index,
			Kind:        l.Type(),
			MasterIndex: a.MasterIndex,
			SpeedMbps:   ethtoolSpeed(fd, a.Name),
			OperUp:      a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown && a.Flags&net.FlagUp != 0,
		})
	}
	return out, nil
}

// kernelSpeed is link-speed's default: what the kernel reports for ifname,
// the sum of the members for a bond or team.
func kernelSpeed(ifname string) (float64, string, error) {
	links, err := linkAttrs()
	if err != nil {
		return 0, "", err
	}
	bps, how := linkplan.KernelSpeed(ifname, links)
	if bps <= 0 {
		return 0, "", fmt.Errorf("link-speed: %s; give the link's speed (e.g. link-speed: 100M), which for an emulated circuit is the contracted rate anyway", how)
	}
	return bps, "kernel: " + how, nil
}

// ethtoolCmd is struct ethtool_cmd (linux/ethtool.h), read with
// ETHTOOL_GSET, which every driver with link settings still answers.
type ethtoolCmd struct {
	Cmd           uint32
	Supported     uint32
	Advertising   uint32
	Speed         uint16
	Duplex        uint8
	Port          uint8
	PhyAddress    uint8
	Transceiver   uint8
	Autoneg       uint8
	MdioSupport   uint8
	Maxtxpkt      uint32
	Maxrxpkt      uint32
	SpeedHi       uint16
	EthTpMdix     uint8
	EthTpMdixCtrl uint8
	LpAdvertising uint32
	Reserved      [2]uint32
}

// ifreqData is struct ifreq with ifr_data.
type ifreqData struct {
	Name [unix.IFNAMSIZ]byte
	Data unsafe.Pointer
	_    [16]byte
}

const ethtoolGSET = 0x1

// ethtoolSpeed is the interface's speed in Mb/s, -1 when it has none.
func ethtoolSpeed(fd int, name string) int {
	cmd := ethtoolCmd{Cmd: ethtoolGSET}
	var ifr ifreqData
	copy(ifr.Name[:unix.IFNAMSIZ-1], name)
	ifr.Data = unsafe.Pointer(&cmd)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(&cmd)
	if errno != 0 {
		return -1
	}
	s := uint32(cmd.SpeedHi)<<16 | uint32(cmd.Speed)
	if s == 0 || s == 0xffffffff {
		return -1
	}
	return int(s)
}
