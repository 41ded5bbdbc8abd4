//go:build amd64 && !purego

package simd

import "golang.org/x/sys/cpu"

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
