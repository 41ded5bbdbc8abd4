package asm

import "github.com/marginloss/marginloss/internal/simd"

// fmaPeak is a level's FMA peak loop: run does iters iterations of
// independent vector FMAs, flopsPerIter flops each.
type fmaPeak struct {
	run          func(iters int)
	flopsPerIter int
}

// fmaPeaks holds the FMA peak loop of each level that has one, registered
// by the level's init.
var fmaPeaks = map[simd.Level]fmaPeak{}

// fmaPeakLoop runs iters iterations of level l's FMA peak loop and reports
// whether it could (this build has one for l and the CPU supports l).
// Benchmarks time it (registered as "FMAPeakLoop") to state results as a
// fraction of this core's FMA peak.
func fmaPeakLoop(l simd.Level, iters int) (flopsPerIter int, ok bool) {
	p, ok := fmaPeaks[l]
	if !ok || !simd.CPUSupports(l) {
		return 0, false
	}
	p.run(iters)
	return p.flopsPerIter, true
}

// bf16Peaks holds the bf16 dot-product peak loop of each level whose CPU
// runs one (AVX512_BF16's VDPBF16PS), registered by the level's init.
var bf16Peaks = map[simd.Level]fmaPeak{}

// amxPeak is the AMX tile peak loop (gemmPeakAMX, 65536 flop a round),
// set by the amd64 arch file where the AMX driver runs.
var amxPeak func(iters int)

// amxPeakLoop is fmaPeakLoop for the AMX tile peak (registered as
// "AMXPeakLoop": four independent TDPBF16PS a round on register tiles, the
// AVX-512 level's bf16 driver where the CPU has AMX); ok is false without
// AMX.
func amxPeakLoop(iters int) (flopsPerIter int, ok bool) {
	if amxPeak == nil {
		return 0, false
	}
	amxPeak(iters)
	return 4 * 16 * 16 * 32 * 2, true
}

// bf16PeakLoop is fmaPeakLoop for the bf16 dot-product peak (registered as
// "BF16PeakLoop"); ok is false where the level has no bf16 instructions.
func bf16PeakLoop(l simd.Level, iters int) (flopsPerIter int, ok bool) {
	p, ok := bf16Peaks[l]
	if !ok || !simd.CPUSupports(l) {
		return 0, false
	}
	p.run(iters)
	return p.flopsPerIter, true
}
