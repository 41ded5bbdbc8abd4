//go:build !purego

package asm

import "github.com/marginloss/marginloss/internal/simd"

// registerBF16 fills bf16Drivers for the x86 levels: the float32 kernels
// on rounded packs at AVX2, and at AVX-512 the VDPBF16PS kernel on pair
// packs where the CPU has AVX512_BF16 (the rounded-pack fallback
// otherwise, and as an alternate for tests).
func registerBF16() {
	bf16Drivers[simd.AVX2] = gemmAVX2Arch.withPrec(gemmBF16Round, nil, nil)
	round512 := gemmAVX512Arch.withPrec(gemmBF16Round, nil, nil)
	bf16Drivers[simd.AVX512] = round512
	if !simd.HasBF16() || !simd.CPUSupports(simd.AVX512) {
		return
	}
	bf16Alternates["avx512-round"] = round512
	bf16Drivers[simd.AVX512] = gemmAVX512Arch.withPrec(gemmBF16Pair, gemmKernelBF16AVX512, gemmPairBF16AVX512)
	bf16Native.ok, bf16Native.level = true, simd.AVX512
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
