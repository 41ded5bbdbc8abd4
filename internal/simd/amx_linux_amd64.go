//go:build !purego

package simd

import "syscall"

// Linux's arch_prctl request for an extended state component, and the
// component of the AMX tile data (arch/x86/include/uapi/asm/prctl.h).
const (
	archReqXcompPerm  = 0x1023
	xfeatureXtiledata = 18
)

// amxPermit asks Linux for the AMX tile data state for this process
// (every thread, present and future). Without it the first tile
// instruction faults; a kernel before 5.16, or one that disabled AMX,
// refuses, and the AMX kernels are then not used.
func amxPermit() bool {
	_, _, errno := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXtiledata, 0)
	return errno == 0
}
