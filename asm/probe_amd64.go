//go:build !purego

package asm

import "github.com/marginloss/marginloss/internal/simd"

//go:noescape
func fmaPeakAVX2(iters int)

//go:noescape
func fmaPeakAVX512(iters int)

// fmaPeakLoop runs iters iterations of 12 independent vector FMAs at level
// l and reports whether it could (the CPU supports l). One iteration is
// 12·lanes·2 flops, lanes = 8 for AVX2 and 16 for AVX-512. Benchmarks time it
// (registered as "FMAPeakLoop") to state results as a fraction of this
// core's FMA peak.
func fmaPeakLoop(l simd.Level, iters int) (flopsPerIter int, ok bool) {
	if !simd.CPUSupports(l) {
		return 0, false
	}
	switch l {
	case simd.AVX2:
		fmaPeakAVX2(iters)
		return 12 * 8 * 2, true
	case simd.AVX512:
		fmaPeakAVX512(iters)
		return 12 * 16 * 2, true
	}
	return 0, false
}
