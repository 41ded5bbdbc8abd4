package loss

import "github.com/marginloss/marginloss/internal/simd"

// Backend returns the kernel level in use: "generic" (pure Go), "avx2" or
// "avx512" on amd64, "neon" on arm64. It is the highest level that the CPU
// supports and this build has assembly for, capped by the MARGINLOSS_SIMD
// environment variable (read once, at the first kernel call):
// MARGINLOSS_SIMD=generic selects the Go kernels anywhere. Other
// architectures, and builds with the purego tag, report "generic".
func Backend() string { return simd.Active().String() }
