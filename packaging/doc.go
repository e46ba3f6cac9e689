// Package packaging holds what turns reachd into a Debian package: the
// systemd unit, the default config, the maintainer scripts, the example
// Prometheus rules, and (in mkdeb) the program that builds the .deb with
// nfpm. Its tests check each of them, and the package itself on a real
// dpkg: lintian, install, upgrade over itself, remove, purge.
package packaging
