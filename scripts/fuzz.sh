#!/usr/bin/env bash
# Runs every fuzz target in the repository (every `func FuzzX` in a
# _test.go file) for FUZZTIME each (default 5s: with a dozen targets, 10 s
# each would push CI past its 20-minute budget; FUZZTIME=10s gives the
# issue's 10 s). A crash fails the run and leaves the failing input in the
# package's testdata/fuzz/FuzzX/: commit it, it is then a regression test
# that plain `go test` replays.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
FUZZTIME="${FUZZTIME:-5s}"
failed=()
n=0
while IFS=: read -r file name; do
	dir="./$(dirname "$file")"
	n=$((n + 1))
	echo "== fuzz $dir $name ($FUZZTIME)"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$dir"; then
		failed+=("$dir $name")
	fi
done < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' --exclude-dir=.git . | sed -E 's|^\./||; s|:func |:|' | sort -u)
echo "fuzzed $n targets for $FUZZTIME each"
if ((${#failed[@]})); then
	printf 'fuzz target failed: %s\n' "${failed[@]}"
	exit 1
fi
