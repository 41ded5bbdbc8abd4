//go:build amd64 && !purego

package simd

import (
	"github.com/klauspost/cpuid/v2"
	"golang.org/x/sys/cpu"
)

// detect lists the x86 levels whose kernels this CPU can run. AVX2 kernels
// use AVX, AVX2 and FMA; AVX-512 kernels use F plus the VL, DQ and BW
// subsets (masked tails, 256-bit forms and mask moves), and need the OS to
// save the ZMM state, which x/sys/cpu folds into X86.HasAVX512F.
func detect() []Level {
	var ls []Level
	x := cpu.X86
	if x.HasAVX && x.HasAVX2 && x.HasFMA {
		ls = append(ls, AVX2)
		if x.HasAVX512F && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX512BW {
			ls = append(ls, AVX512)
		}
	}
	return ls
}

// detectBF16 reports AVX512_BF16 (VDPBF16PS, VCVTNE2PS2BF16) on top of the
// AVX-512 level.
func detectBF16() bool {
	x := cpu.X86
	return x.HasAVX512BF16 && x.HasAVX512F && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX512BW
}

// bf16DotFast reports whether this CPU's VDPBF16PS does more multiply-adds
// per second than its VFMADD231PS: AMD's (Zen 4 and 5, measured 1.98× on a
// Zen 4 EPYC and 1.6–1.85× on Zen 5), not Intel's (Cooper Lake issues it no faster than an FMA;
// Sapphire and Emerald Rapids measured 0.5× here, AMX being their bf16
// path). A fixed rule rather than a timing, so that which driver runs, and
// therefore every bf16 result, is the same on every run.
func bf16DotFast() bool { return detectBF16() && cpuid.CPU.VendorID == cpuid.AMD }

// detectAMX reports AMX-TILE and AMX-BF16 on top of AVX512_BF16 (the AMX
// kernels convert and merge with AVX-512), with the tile data state
// granted to this process by the OS (amxPermit).
func detectAMX() bool {
	x := cpu.X86
	return x.HasAMXTile && x.HasAMXBF16 && detectBF16() && amxPermit()
}
