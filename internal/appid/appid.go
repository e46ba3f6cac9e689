// Package appid writes a service's decision as an application-id module
// file, in the exact format of the SD-WAN plugin document (shared/seeds/000):
// icmp-probe-{service}.json naming the generated service
// icmp-{service}-{path} (or "dummy" when the service is withdrawn) with the
// service's prefixes and transport. Files are written atomically (temporary
// file, fsync, rename) and only when their content changes.
package appid

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/reachd/reachd/internal/atomicfile"
)

// Duration and ContinueFileWatch are the seed's constant fields.
const (
	Duration          = 86400
	ContinueFileWatch = true
	// Dummy is the service name of a withdrawn service.
	Dummy = "dummy"
)

// Transport mirrors the service's transport block.
type Transport struct {
	Protocol  string      `json:"protocol"`
	PortRange []PortRange `json:"port-range,omitempty"`
}

// PortRange is an inclusive port range.
type PortRange struct {
	StartPort int `json:"start-port"`
	EndPort   int `json:"end-port"`
}

// Entry is one prefix of the generated service.
type Entry struct {
	IPPrefix  string      `json:"ip-prefix"`
	Transport []Transport `json:"transport,omitempty"`
}

// Module is the file's content.
type Module struct {
	ModuleName        string             `json:"module-name"`
	Duration          int                `json:"duration"`
	ContinueFileWatch bool               `json:"continue-file-watch"`
	Services          map[string][]Entry `json:"services"`
}

// FileName is the module file of a service.
func FileName(service string) string { return "icmp-probe-" + service + ".json" }

// ServiceName is the generated service of a path: icmp-{service}-{path}.
func ServiceName(service, path string) string { return "icmp-" + service + "-" + path }

// Build returns the module for a decision; path "" means withdrawn.
func Build(service, path string, prefixes []netip.Prefix, transport []Transport) Module {
	if path == "" {
		return BuildPaths(service, nil, prefixes, transport)
	}
	return BuildPaths(service, []string{path}, prefixes, transport)
}

// BuildPaths returns the module of a service served by every one of paths
// (an ecmp service: one generated service per usable path, each with the
// service's prefixes); no paths means withdrawn.
func BuildPaths(service string, paths []string, prefixes []netip.Prefix, transport []Transport) Module {
	entries := make([]Entry, len(prefixes))
	for i, p := range prefixes {
		entries[i] = Entry{IPPrefix: p.String(), Transport: transport}
	}
	m := Module{
		ModuleName:        "icmp-probe-" + service,
		Duration:          Duration,
		ContinueFileWatch: ContinueFileWatch,
		Services:          map[string][]Entry{},
	}
	if len(paths) == 0 {
		m.Services[Dummy] = entries
	}
	for _, p := range paths {
		m.Services[ServiceName(service, p)] = entries
	}
	return m
}

// Marshal renders the module as the seed shows it (two-space indent).
func (m Module) Marshal() []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// Write stores m in dir atomically. It reports whether the file changed;
// an identical file is left untouched.
func Write(dir string, m Module) (bool, error) {
	data := m.Marshal()
	name := filepath.Join(dir, FileName(m.ModuleName[len("icmp-probe-"):]))
	if old, err := os.ReadFile(name); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("creating app-id module dir: %w", err)
	}
	if err := atomicfile.WriteFile(name, data, 0o644); err != nil {
		return false, fmt.Errorf("writing app-id module: %w", err)
	}
	return true, nil
}
