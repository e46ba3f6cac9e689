#!/usr/bin/env bash
# Runs every fuzz target in the repository (every `func FuzzX` in a
# _test.go file) for FUZZTIME each (default 10s). Each package's
# instrumented test binary is built once (`go test -c -fuzz=.`, two
# packages at a time) and then run once per target from the package's
# directory, instead of one `go test -fuzz` per target relinking it. A crash
# fails the run and leaves the failing input in the package's
# testdata/fuzz/FuzzX/: commit it, it is then a regression test that plain
# `go test` replays.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
FUZZTIME="${FUZZTIME:-10s}"
mapfile -t targets < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' --exclude-dir=.git . | sed -E 's|^\./||; s|:func |:|' | sort -u)
mapfile -t pkgs < <(printf '%s\n' "${targets[@]}" | sed -E 's|/[^/]*:.*||' | sort -u)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
start=$SECONDS
printf '%s\n' "${pkgs[@]}" | xargs -P 2 -I{} sh -c 'go test -c -fuzz=. -o "$0/$(echo "$1" | tr / _).test" "./$1"' "$bin" {}
echo "built ${#pkgs[@]} instrumented test binaries in $((SECONDS - start)) s"
# The generated corpus goes where `go test -fuzz` keeps it, so both share it.
module=$(go list -m)
cache="$(go env GOCACHE)/fuzz"
failed=()
for t in "${targets[@]}"; do
	file=${t%%:*} name=${t##*:} dir=$(dirname "$file")
	echo "== fuzz ./$dir $name ($FUZZTIME)"
	if ! (cd "$dir" && "$bin/$(echo "$dir" | tr / _).test" -test.run='^$' -test.fuzz="^${name}\$" \
		-test.fuzztime="$FUZZTIME" -test.fuzzcachedir="$cache/$module/$dir"); then
		failed+=("./$dir $name")
	fi
done
echo "fuzzed ${#targets[@]} targets for $FUZZTIME each; $((SECONDS - start)) s in all"
if ((${#failed[@]})); then
	printf 'fuzz target failed: %s\n' "${failed[@]}"
	exit 1
fi
