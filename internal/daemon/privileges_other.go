//go:build !linux

package daemon

// checkPrivileges has nothing to check outside Linux.
func (d *Daemon) checkPrivileges() {}
