#!/usr/bin/env bash
# Builds examples/distributed and trains it with `mpirun -np 2` on this
# host, for CI. Needs Go, a C compiler and Open MPI (Debian: openmpi-bin
# libopenmpi-dev); it installs nothing. It fails unless the output ends with
# the sharded-vs-single diff line, every diff there is ≤ 1e-5, the backbones
# stayed identical on all ranks and the test accuracy is ≥ 0.97.
#
#   examples/distributed/run.sh                 # 2 ranks, the defaults
#   NP=3 examples/distributed/run.sh -epochs 4  # more ranks, extra flags
set -euo pipefail

cd "$(dirname "$0")"
np=${NP:-2}
bin=${TMPDIR:-/tmp}/marginloss-distributed.$$
log=${TMPDIR:-/tmp}/marginloss-distributed.$$.log
trap 'rm -f "$bin" "$log"' EXIT

for tool in go mpirun; do
	command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: $tool is not on PATH" >&2; exit 1; }
done
# Open MPI's flags come from pkg-config (ompi-c), which libopenmpi-dev does
# not pull in; without it, use the Debian/Ubuntu paths. TAGS adds build tags.
tags=${TAGS:-}
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists ompi-c 2>/dev/null; then
	tags="${tags:+$tags,}nopkgconfig"
fi
CGO_ENABLED=1 go build ${tags:+-tags "$tags"} -o "$bin" .

# Root in containers needs the two OMPI_ALLOW_* variables; --oversubscribe
# lets -np exceed the core count. Each rank sizes GOMAXPROCS to its share of
# the cores (see shareCores in main.go).
start=$(date +%s)
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
	mpirun -np "$np" --oversubscribe "$bin" "$@" 2>&1 | tee "$log" ||
	{ echo "run.sh: mpirun failed" >&2; exit 1; }
echo "run.sh: mpirun -np $np took $(($(date +%s) - start))s"

awk '
/^backbone weights identical on all [0-9]+ ranks: true$/ { same = 1 }
/^sharded vs single process: / {
	diff = 1
	# loss rel diff A, dx max rel diff B, dw max rel diff C
	n = split($0, f, /diff /)
	for (i = 2; i <= n; i++) {
		v = f[i]; sub(/,.*/, "", v)
		if (v !~ /^[0-9.eE+-]+$/ || v + 0 > 1e-5) { print "run.sh: diff " v " > 1e-5"; bad = 1 }
	}
	if (n != 4) { print "run.sh: malformed diff line"; bad = 1 }
}
/^test accuracy: / { acc = $3 }
END {
	if (!diff) { print "run.sh: no \"sharded vs single process\" line"; bad = 1 }
	if (!same) { print "run.sh: the backbones are not identical on all ranks"; bad = 1 }
	if (acc == "") { print "run.sh: no test accuracy line"; bad = 1 }
	else if (acc + 0 < 0.97) { print "run.sh: test accuracy " acc " < 0.97"; bad = 1 }
	exit bad
}' "$log" >&2 || exit 1
# The two lines must be the last ones.
tail -n 2 "$log" | head -n 1 | grep -q '^sharded vs single process: ' || { echo "run.sh: the diff line is not second to last" >&2; exit 1; }
tail -n 1 "$log" | grep -q '^test accuracy: ' || { echo "run.sh: the accuracy line is not last" >&2; exit 1; }
echo "run.sh: ok"
