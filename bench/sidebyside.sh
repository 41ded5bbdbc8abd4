#!/usr/bin/env bash
# Side by side with PyTorch, as the README's tables are measured: ROUNDS
# rounds (default 3), each running marginloss's bench and bench/pytorch_ref.py
# one after the other on the same items, so that the ranges `bench -compare`
# prints come from alternating runs in one session. Usage:
#
#   bash bench/sidebyside.sh DIR [FILTER]
#
# DIR (for example bench/data/zen5-2026-12-02) receives go-<i>.json and
# pytorch-<i>.json; FILTER (a regexp of item names, default: ArcFace at
# C = 10k and 100k, one and two threads, both precisions) selects the heads.
# The FMA and bf16 dot-product peaks and the bf16 GEMM rows run in every Go
# round. The comparison ends with two tables of ranges taken run by run:
# each head against PyTorch's same head, and each side's BFloat16 against
# float32 (its own, and PyTorch's float32 against ours in bf16, as issue
# 16's targets put it). Run it on an otherwise idle machine; it takes the
# bench lock of the helpers' brief when flock is there.
set -euo pipefail
dir=${1:?usage: bench/sidebyside.sh DIR [FILTER]}
filter=${2:-'heads/ArcFace.*/C=(10000|100000)/threads=(1|2)'}
rounds=${ROUNDS:-3}
cd "$(dirname "$0")/.."
mkdir -p "$dir"
go build -o /tmp/marginloss-bench ./bench
py=/usr/bin/python3
lock() { if command -v flock >/dev/null; then flock /tmp/marginloss-bench.lock "$@"; else "$@"; fi; }
threads=$(echo "$filter" | grep -o 'threads=([0-9|]*)' | tr -dc '0-9|' | tr '|' ' ')
for i in $(seq 1 "$rounds"); do
  echo "== round $i of $rounds: marginloss"
  lock /tmp/marginloss-bench -filter "peak|gemm-bf16|$filter" -json "$dir/go-$i.json" >/dev/null
  echo "== round $i of $rounds: PyTorch"
  # the script sets torch's and OpenBLAS's threads per item, and prints the
  # BLAS and the OpenBLAS core it ran (kept in the log)
  lock "$py" bench/pytorch_ref.py --filter "$filter" ${threads:+--threads $threads} \
    --json "$dir/pytorch-$i.json" >"$dir/pytorch-$i.log"
  grep -m1 'openblas core' "$dir/pytorch-$i.log" || true
done
pys=() gos=()
for i in $(seq 1 "$rounds"); do pys+=("$dir/pytorch-$i.json"); gos+=("$dir/go-$i.json"); done
/tmp/marginloss-bench -compare "${pys[@]}" "${gos[@]}"
