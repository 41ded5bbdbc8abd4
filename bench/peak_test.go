package main

import (
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// BenchmarkFMAPeak measures this core's single-core vector FMA peak at each
// level (AVX2, AVX-512, NEON), the ceiling that the GEMM results are stated
// against.
func BenchmarkFMAPeak(b *testing.B) {
	probe := lookupFMAPeak(b)
	for _, l := range []simd.Level{simd.AVX2, simd.AVX512, simd.NEON} {
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

// BenchmarkFMAPeakParallel runs the probe on GOMAXPROCS goroutines at once
// and reports their total: with -cpu 1,2 it tells whether two vCPUs are two
// cores (2× the one-goroutine figure) or share one core's FMA pipes (1×):
//
//	go test ./bench -run '^$' -bench FMAPeakParallel -cpu 1,2
func BenchmarkFMAPeakParallel(b *testing.B) {
	probe := lookupFMAPeak(b)
	for _, l := range []simd.Level{simd.AVX2, simd.AVX512, simd.NEON} {
		b.Run(l.String(), func(b *testing.B) {
			if !simd.CPUSupports(l) {
				b.Skipf("CPU lacks %v", l)
			}
			const iters = 1 << 16
			flops, _ := probe(l, 1)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					probe(l, iters)
				}
			})
			gflops(b, float64(flops*iters))
		})
	}
}
