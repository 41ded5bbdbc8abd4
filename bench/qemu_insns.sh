#!/usr/bin/env bash
# Emulated instructions per element (per multiply-add for GEMM), generic
# against neon, under qemu-aarch64: a sanity check that the NEON bodies
# vectorise, not a timing (qemu's cost per instruction has nothing to do
# with a real core's). About ten minutes.
#
#   bash bench/qemu_insns.sh
#
# It runs the arm64 bench binary's benchmarks under qemu with the in_asm
# (translated blocks and their instructions) and exec (each execution of a
# block, unchained) logs, and sums the instructions of the executed blocks
# whose symbol is in package asm or math (the kernel bodies, their wrappers
# and the math routines the Go twins call). A run of 20 iterations minus a
# run of 10 leaves exactly 10 calls, whatever the harness does around them.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/bench_arm64.test
GOARCH=arm64 go test -c -o "$bin" ./bench
count() { # count BENCH ITERS: instructions executed in asm.* and math.*
  local f
  f=$(mktemp -u)
  mkfifo "$f"
  awk '
    function norm(h) { sub(/^0x/, "", h); sub(/^0+/, "", h); return h }
    /^IN:/ { in_tb = 1; first = ""; cnt = 0; next }
    in_tb && /^0x[0-9a-f]+:/ { if (first == "") first = norm(substr($1, 1, length($1) - 1)); cnt++; next }
    in_tb && /^$/ { if (first != "") n[first] = cnt; in_tb = 0; next }
    /^Trace/ && ($NF ~ /^github\.com\/marginloss\/marginloss\/asm\./ || $NF ~ /^math\./) {
      split($0, a, "[][/]"); total += n[norm(a[3])]
    }
    END { print total + 0 }' <"$f" &
  (cd bench && qemu-aarch64 -d in_asm,exec,nochain -D "$f" "$bin" -test.run '^$' -test.bench "$1" -test.benchtime "$2"x >/dev/null)
  wait
  rm -f "$f"
}
per10() { echo $(($(count "$1" 20) - $(count "$1" 10))); }
row() { # row LABEL BENCH-PREFIX UNITS-PER-CALL
  local g v
  g=$(per10 "$2/generic\$")
  v=$(per10 "$2/neon\$")
  awk -v k="$1" -v g="$g" -v v="$v" -v e="$((10 * $3))" 'BEGIN {printf "| %s | %.2f | %.2f | %.1f× |\n", k, g/e, v/e, (v ? g/v : 0)}'
}
n=4096
echo "Emulated instructions executed (qemu-aarch64 $(qemu-aarch64 --version | head -n1 | awk '{print $3}')) per element, or per multiply-add for GEMM:"
echo
echo "| kernel | generic | neon | generic/neon |"
echo "|---|---|---|---|"
for k in SumSquares Scale NormalizeBackward Exp MaxSumExp SoftmaxScaled; do
  row "$k (n=$n)" "^BenchmarkKernels\$/^$k\$/^n=$n\$" "$n"
done
for g in arc combined psi; do
  row "MarginForward $g (n=$n)" "^BenchmarkKernels\$/^MarginForward\$/^$g\$/^n=$n\$" "$n"
done
row "GemmNT 64×64×64" '^BenchmarkGemmSmall$/^NT$/^m=64$/^n=64$/^k=64$' $((64 * 64 * 64))
