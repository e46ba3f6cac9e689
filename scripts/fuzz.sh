#!/usr/bin/env bash
# Runs every fuzz target in the repository (every `func FuzzX` in a
# _test.go file) for FUZZTIME each (default 10s). A crash fails the run and
# leaves the failing input in the package's testdata/fuzz/FuzzX/: commit
# it, it is then a regression test that plain `go test` replays.
#
# Most of the step's time is compiling the instrumented test binaries on
# CI's empty build cache (331 s for the 14 targets with FUZZTIME=1s, at
# load 11 on the shared 2-core machine); building each package's binary
# once with `go test -c -fuzz=.` and running it per target took as long
# (333 s), so this stays one `go test -fuzz` per target.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
FUZZTIME="${FUZZTIME:-10s}"
failed=()
n=0
while IFS=: read -r file name; do
	dir="./$(dirname "$file")"
	n=$((n + 1))
	echo "== fuzz $dir $name ($FUZZTIME)"
	# Go's fuzzer sometimes ends a run with "context deadline exceeded"
	# when -fuzztime runs out under load, without any failing input: that
	# run is tried once more. A real crash writes its input ("Failing input
	# written to") and fails at once.
	for attempt in 1 2; do
		out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$dir" 2>&1) && { echo "$out"; break; }
		echo "$out"
		if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' <<<"$out" && ! grep -q 'Failing input written to' <<<"$out"; then
			echo "== $name: the fuzzer's deadline, no failing input; once more"
			continue
		fi
		failed+=("$dir $name")
		break
	done
done < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' --exclude-dir=.git . | sed -E 's|^\./||; s|:func |:|' | sort -u)
echo "fuzzed $n targets for $FUZZTIME each"
if ((${#failed[@]})); then
	printf 'fuzz target failed: %s\n' "${failed[@]}"
	exit 1
fi
