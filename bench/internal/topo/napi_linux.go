package topo

import (
	"fmt"
	"runtime"
	"unsafe"

	"github.com/reachd/reachd/internal/lab"
	"golang.org/x/sys/unix"
)

// ThreadedNAPI turns on GRO on ifname (which gives a veth its own NAPI
// instance) and makes that NAPI run in a kernel thread. Without it, a packet
// sent into a veth is processed to the end (the target's echo reply, and
// the reply's delivery back to the prober's socket) inside the sender's
// sendto call and billed to the sender: a remote host's work that a real
// prober never pays. With it, the target side runs in its own kernel
// thread and each tool is billed for its own work only.
func ThreadedNAPI(ns *lab.NS, ifname string) error {
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		// struct ethtool_value { __u32 cmd; __u32 data; } behind ifr_data.
		ev := new([2]uint32)
		ev[0], ev[1] = unix.ETHTOOL_SGRO, 1
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data uintptr
			_    [16]byte
		}
		copy(ifr.name[:], ifname)
		ifr.data = uintptr(unsafe.Pointer(ev))
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(ev)
		if errno != 0 {
			return fmt.Errorf("enabling GRO on %s: %w", ifname, errno)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// sysfs shows the namespace of whoever mounted it: `ip netns exec`
	// mounts the namespace's own.
	cmd := ns.Command("sh", "-c", "echo 1 > /sys/class/net/"+ifname+"/threaded")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("threaded NAPI on %s: %w: %s", ifname, err, out)
	}
	return nil
}
