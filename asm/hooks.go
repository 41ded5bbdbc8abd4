package asm

import "github.com/marginloss/marginloss/internal/simd"

// The module's tests, fuzz targets and benchmarks reach what this package
// keeps unexported through internal/simd's registry, which nothing outside
// the module can import:
//
//   - each kernel table, by the name NewTable gave it (simd.TableOf):
//     "GemmNT", "GemmNN", "GemmTN", "SumSquares", "Scale", "Mul",
//     "Add", "NormalizeBackward", "Exp", "MaxSumExp", "SoftmaxScaled",
//     "MarginForward", "MarginForwardRows" (MarginForward's per-row form), "ClampGrad", "HardNegatives",
//     "SGDStep", "AdamWStep";
//   - the test hooks below (simd.Lookup), each with the type it is
//     registered as.
func init() {
	// func(x float32) float32: the scalar exp, generic twin of the exp bodies.
	simd.Register("Expf", expf)
	// func(g *Margin, t float64) (phi, dphi float64): φ and φ′ in float64.
	simd.Register("Margin.Eval", (*Margin).eval)
	// func(g *Margin, t float32) (phi, dphi float64): the bound every
	// vector level of MarginForward meets at t.
	simd.Register("Margin.ErrorBound", (*Margin).errorBound)
	// func(g *Margin, i int, t float32) (phi, dphi float64): the bound every
	// vector level of MarginForward meets at t in row i of a per-row g.
	simd.Register("Margin.RowErrorBound", (*Margin).rowErrorBound)
	// func(l simd.Level, iters int) (flopsPerIter int, ok bool): the FMA
	// peak probe.
	simd.Register("FMAPeakLoop", fmaPeakLoop)
	// func(l simd.Level, iters int) (flopsPerIter int, ok bool): the bf16
	// dot-product (VDPBF16PS) peak probe; ok is false without one.
	simd.Register("BF16PeakLoop", bf16PeakLoop)
	// func(iters int) (flopsPerIter int, ok bool): the AMX tile peak probe
	// (TDPBF16PS on register tiles); ok is false without AMX.
	simd.Register("AMXPeakLoop", amxPeakLoop)
	// func(name string) (restore func(), ok bool): make the bf16 driver
	// named name ("avx512-amx": AMX tiles on tile packs, "avx512-pair":
	// VDPBF16PS on pair packs, "avx512-round": the float32 kernel on
	// rounded packs) the AVX-512 level's until
	// restore; ok is false where this CPU and build lack it.
	simd.Register("BF16ForceDriver", bf16ForceDriver)
}
