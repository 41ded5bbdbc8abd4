//go:build arm64 && !purego

package simd

import "golang.org/x/sys/cpu"

// detect lists NEON when the CPU reports Advanced SIMD (always true on
// arm64 Linux, but checked rather than assumed).
func detect() []Level {
	if cpu.ARM64.HasASIMD {
		return []Level{NEON}
	}
	return nil
}

// detectBF16 reports FEAT_BF16 (BFDOT, BFMMLA), which x/sys/cpu has no
// flag for: from the auxiliary vector's AT_HWCAP2 on Linux, the
// hw.optional.arm.FEAT_BF16 sysctl on darwin (hasBF16OS), false elsewhere.
func detectBF16() bool { return cpu.ARM64.HasASIMD && hasBF16OS() }

// bf16DotFast: BFDOT does twice FMLA's multiply-adds per instruction on
// the cores that have it, so wherever FEAT_BF16 is present it is taken.
func bf16DotFast() bool { return detectBF16() }

// detectAMX reports no AMX: it is an x86 extension.
func detectAMX() bool { return false }
