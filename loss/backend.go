package loss

import "github.com/marginloss/marginloss/internal/simd"

// Backend returns the kernel level in use: "generic" (pure Go), "avx2" or
// "avx512" on amd64, "neon" on arm64. It is the highest level that the CPU
// supports and this build has assembly for, capped by the MARGINLOSS_SIMD
// environment variable (read once, at the first kernel call):
// MARGINLOSS_SIMD=generic selects the Go kernels anywhere. A value that
// names no level, or a level of another architecture (neon on amd64),
// prints one warning on stderr naming the valid values. Other
// architectures, and builds with the purego tag, report "generic".
//
// MARGINLOSS_CACHE=l1d=SIZE,l2=SIZE (bytes, K or M binary suffixes, e.g.
// l1d=48K,l2=2M) sets the per-core cache sizes the GEMM blocking is derived
// from, where CPUID reports none or wrong ones (some VMs); by default they
// come from CPUID, else 32 KiB and 512 KiB. A malformed value is ignored
// with a warning.
func Backend() string { return simd.Active().String() }
