// Package archtest holds no code: its test walks `go list -deps` over the
// module and fails on an import that runs against reachd's data flow (see
// ARCHITECTURE.md). The rules are in imports_test.go.
package archtest
