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

// detectBF16 reports FEAT_BF16 (BFDOT, BFMMLA). x/sys/cpu has no flag for
// it; no arm64 bf16 kernel is built yet, so it reports false.
func detectBF16() bool { return false }
