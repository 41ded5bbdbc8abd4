//go:build !purego

package asm

import (
	"github.com/marginloss/marginloss/internal/simd"
	"golang.org/x/sys/cpu"
)

// registerBF16 fills bf16Drivers for the x86 levels: the float32 kernels
// on rounded packs at AVX2, and at AVX-512 the VDPBF16PS kernel on pair
// packs where the CPU has AVX512_BF16 (the rounded-pack fallback
// otherwise, and as an alternate for tests).
func registerBF16() {
	bf16Drivers[simd.AVX2] = gemmAVX2Arch.withPrec(gemmBF16Round, nil, nil)
	round512 := gemmAVX512Arch.withPrec(gemmBF16Round, nil, nil)
	bf16Drivers[simd.AVX512] = round512
	if !cpu.X86.HasAVX512BF16 || !simd.CPUSupports(simd.AVX512) {
		return
	}
	bf16Alternates["avx512-round"] = round512
	bf16Drivers[simd.AVX512] = gemmAVX512Arch.withPrec(gemmBF16Pair, gemmKernelBF16Generic(gemmAVX512MR, gemmAVX512NR), nil)
	bf16Native.ok, bf16Native.level = true, simd.AVX512
}
