//go:build arm64 && !purego && !linux && !darwin

package simd

// hasBF16OS reports false: this OS gives no portable way to ask.
func hasBF16OS() bool { return false }
