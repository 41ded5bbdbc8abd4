package asm

// The kernel tables of every family, exported for the module's own tests,
// fuzz targets and benchmarks (internal/simd keeps the element types
// module-private, so nothing outside the module can name them). Each table
// holds every level's body next to its generic twin (Table.At,
// Table.Levels); the exported wrappers remain the way to call a kernel.

import "github.com/marginloss/marginloss/internal/simd"

// NormalizeKernels exposes the kernel tables of the normalize family to the
// module's own tests, fuzz targets and benchmarks: every level's body next
// to its generic twin (Table.At and Table.Levels). The bodies skip the
// wrappers' length checks: callers pass len(dst), len(dx), len(dy) ≥ len(x).
// internal/simd keeps the element types module-private.
var NormalizeKernels = struct {
	// SumSquares is the kernel behind L2Norm: the plain float32 Σ x_k².
	SumSquares        *simd.Table[func(x []float32) float32]
	Scale             *simd.Table[func(dst, x []float32, a float32)]
	NormalizeBackward *simd.Table[func(dx, dy, x []float32, inv, radial float32)]
}{sumSquaresImpl, scaleImpl, normBackwardImpl}

// LSEKernels exposes the kernel tables of the lse family, as
// NormalizeKernels does for its family.
var LSEKernels = struct {
	Exp           *simd.Table[func(dst, x []float32)]
	MaxSumExp     *simd.Table[func(z []float32, m, s float32) (float32, float32)]
	SoftmaxScaled *simd.Table[func(dst, z []float32, lse, scale float32)]
}{expImpl, maxSumExpImpl, softmaxRowImpl}

// GemmKernels exposes the GEMM implementation tables so that the module's
// tests and fuzz targets can compare every level with the generic twin (Levels, At).
// Callers outside the module should use GemmNT, GemmNN and GemmTN.
var GemmKernels = struct {
	NT, NN, TN *simd.Table[func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)]
}{gemmNTImpl, gemmNNImpl, gemmTNImpl}

// MarginKernels is MarginForward's implementation table.
var MarginKernels = marginImpl
