#!/usr/bin/env bash
# The long reliability tests, at the reduced size CI affords. `go test
# -short ./...` skips them; without -short `go test ./...` runs them at full
# size (e.g. the 60 s flap storm).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
# Real daemon, broadband flapped at 5 Hz for 12 s (60 s by default).
go test -race -count=1 -run '^TestFlapStormDaemon$' ./e2e -args -storm=12s
# SIGKILL at random moments during route changes and override writes, and
# during bypass actions (addresses removed and restored, a link set down):
# 10 iterations each (100 by default).
go test -race -count=1 -run '^TestSIGKILL(AtRandomMoments|DuringBypass)$' ./e2e -args -crash-iterations=10
# SIGKILL at random moments while a producer spools reports and delivers
# them to a (fake) broker: 10 iterations (100 by default).
go test -race -count=1 -run '^TestSIGKILLDuringSpooling$' ./internal/export/kafka -args -spool-crash-iterations=10
