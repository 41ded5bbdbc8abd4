//go:build linux && arm64 && !purego

package simd

import "golang.org/x/sys/unix"

// Linux's auxiliary vector: AT_HWCAP2 and its FEAT_BF16 bit
// (arch/arm64/include/uapi/asm/hwcap.h).
const (
	atHWCAP2   = 26
	hwcap2BF16 = 1 << 14
)

// hasBF16OS reads HWCAP2_BF16 from the process's auxiliary vector.
func hasBF16OS() bool {
	auxv, err := unix.Auxv()
	if err != nil {
		return false
	}
	return hwcap2HasBF16(auxv)
}

// hwcap2HasBF16 reports whether the auxiliary vector's AT_HWCAP2 has the
// BF16 bit.
func hwcap2HasBF16(auxv [][2]uintptr) bool {
	for _, kv := range auxv {
		if kv[0] == atHWCAP2 {
			return kv[1]&hwcap2BF16 != 0
		}
	}
	return false
}
