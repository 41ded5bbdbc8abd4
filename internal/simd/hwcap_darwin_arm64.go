//go:build darwin && arm64 && !purego

package simd

import "golang.org/x/sys/unix"

// hasBF16OS reads the hw.optional.arm.FEAT_BF16 sysctl (Apple M2 and
// later report 1).
func hasBF16OS() bool {
	v, err := unix.SysctlUint32("hw.optional.arm.FEAT_BF16")
	return err == nil && v == 1
}
