//go:build purego || !(amd64 || arm64)

package simd

// detect reports no assembly level: this build has only the generic kernels.
func detect() []Level { return nil }
