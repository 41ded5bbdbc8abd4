package main

import (
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// BenchmarkFMAPeak measures this core's single-core vector FMA peak at each
// x86 level, the ceiling that the GEMM results are stated against.
func BenchmarkFMAPeak(b *testing.B) {
	probe := lookupFMAPeak(b)
	for _, l := range []simd.Level{simd.AVX2, simd.AVX512} {
		b.Run(l.String(), func(b *testing.B) {
			if !simd.CPUSupports(l) {
				b.Skipf("CPU lacks %v", l)
			}
			const iters = 1 << 16
			var flops int
			for b.Loop() {
				flops, _ = probe(l, iters)
			}
			gflops(b, float64(flops*iters))
		})
	}
}
