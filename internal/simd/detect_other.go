//go:build purego || !(amd64 || arm64)

package simd

// detect reports no assembly level: this build has only the generic kernels.
func detect() []Level { return nil }

// detectBF16 reports no bf16 instructions: this build has no assembly.
func detectBF16() bool { return false }

// bf16DotFast reports no bf16 instructions either.
func bf16DotFast() bool { return false }

// detectAMX reports no AMX: this build has no assembly.
func detectAMX() bool { return false }
