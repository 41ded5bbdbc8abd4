package loss

import "github.com/marginloss/marginloss/internal/simd"

// Backend returns the kernel level in use: "generic", "avx2", "avx512" or
// "neon". It is the highest level that the CPU supports and this build has
// assembly for, capped by the MARGINLOSS_SIMD environment variable (read
// once, at the first kernel call).
func Backend() string { return simd.Active().String() }
