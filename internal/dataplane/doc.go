// Package dataplane carries decisions into the Linux kernel: per-path fwmark
// rules and routing tables (so each path's probes, and the connections pinned
// to it, leave through that path whatever the main table says), the service
// routes (one netlink replace on failover; unreachable routes when the
// service is withdrawn), an nftables table that pins connections to the path
// they started on (conntrack mark), and flush-on-down of one path's conntrack
// entries. It uses netlink, nftables and conntrack directly; it never runs ip,
// nft or conntrack.
//
// Nothing is written that is already there: after a restart (even SIGKILL)
// reachd finds its rules, tables and nftables table in place and changes
// nothing until the engine has decided, and then only what differs.
package dataplane
