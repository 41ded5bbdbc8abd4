//go:build !purego

package asm

import "github.com/marginloss/marginloss/internal/simd"

// registerBF16 fills bf16Drivers for the x86 levels: the float32 kernels
// on rounded packs (gemmRoundBF16AVX2) at AVX2 and AVX-512. Where the CPU
// has AVX512_BF16 it also builds the VDPBF16PS driver on pair packs, which
// the AVX-512 level takes where VDPBF16PS outruns the FMAs
// (simd.BF16DotFast: AMD's Zen 4 and 5 run it at 1.6–2× the FMA's
// multiply-adds, 1.98× on the Zen 4 EPYC of 2026-12-02, where the BFloat16
// head ran 1.6–1.9× the Float32 one; the Sapphire Rapids-class Xeon
// measured here at 0.5×, so
// there the pair driver would be 2× slower and is not taken). The rule is
// fixed, not timed, so that the driver, and every bf16 result, is the same
// on every run. Both drivers stay reachable to tests (bf16Alternates).
func registerBF16() {
	round2 := gemmAVX2Arch.withPrec(gemmBF16Round, nil, nil)
	round2.round = roundBF16AVX2
	bf16Drivers[simd.AVX2] = round2
	round512 := gemmAVX512Arch.withPrec(gemmBF16Round, nil, nil)
	round512.round = roundBF16AVX512
	bf16Drivers[simd.AVX512] = round512
	if !simd.HasBF16() || !simd.CPUSupports(simd.AVX512) {
		return
	}
	pair := gemmAVX512Arch.withPrec(gemmBF16Pair, gemmKernelBF16AVX512, gemmPairBF16AVX512)
	bf16Alternates["avx512-round"] = round512
	bf16Alternates["avx512-pair"] = pair
	if simd.BF16DotFast() {
		bf16Drivers[simd.AVX512] = pair
		bf16Native.ok, bf16Native.level = true, simd.AVX512
	}
}

// gemmKernelBF16AVX512 is the 12×32 micro-kernel on bf16 pair packs
// (gemmKernelBF16Generic), VDPBF16PS emitted as bytes (gen/amd64/evex.go).
//
//go:noescape
func gemmKernelBF16AVX512(mr, kc int, a, b, c *float32, ldc int, alpha, beta float32)

// gemmPairBF16AVX512 is the pair conversion of the packs
// (gemmPairGeneric), by VCVTNE2PS2BF16 and VPERMW.
//
//go:noescape
func gemmPairBF16AVX512(dst *float32, ldd int, src *float32, lds int, kc2, w int)

// gemmRoundBF16AVX2 rounds n floats (n a multiple of 8) at x to bfloat16 in
// place (roundBF16Generic, bitwise), VEX-encoded for both x86 levels.
//
//go:noescape
func gemmRoundBF16AVX2(x *float32, n int)

// roundBF16AVX2 is roundBF16Generic by gemmRoundBF16AVX2 and Go for the
// tail.
func roundBF16AVX2(x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		gemmRoundBF16AVX2(&x[0], n)
	}
	roundBF16Generic(x[n:])
}

// gemmRoundBF16AVX512 is gemmRoundBF16AVX2 with ZMM registers and K masks,
// n a multiple of 16.
//
//go:noescape
func gemmRoundBF16AVX512(x *float32, n int)

// roundBF16AVX512 is roundBF16Generic by gemmRoundBF16AVX512, then
// gemmRoundBF16AVX2 and Go for the tail.
func roundBF16AVX512(x []float32) {
	n := len(x) &^ 15
	if n > 0 {
		gemmRoundBF16AVX512(&x[0], n)
	}
	roundBF16AVX2(x[n:])
}
