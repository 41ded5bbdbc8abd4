//go:build !purego && !linux

package simd

// amxPermit reports false: only Linux's permission request is wired up.
func amxPermit() bool { return false }
