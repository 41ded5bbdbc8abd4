//go:build !(linux || darwin)

package asm

import "testing"

// guardBuf stands in for the mmap'd guard-page buffer of
// guard_unix_test.go on systems without syscall.Mmap: the same API on
// ordinary memory, so out-of-bounds reads go unnoticed (stray writes are
// still caught by the tests' sentinel checks).
type guardBuf struct{ data []float32 }

const guarded = false

func newGuardBuf(t testing.TB, n int) *guardBuf {
	return &guardBuf{data: make([]float32, max(n, 1024))}
}

func (g *guardBuf) head(n, offset int) []float32 { return g.data[offset : offset+n : offset+n] }

func (g *guardBuf) tail(n, offset int) []float32 {
	end := len(g.data) - offset
	return g.data[end-n : end : end]
}

func guardedSlice(t testing.TB, n, offset int) []float32 {
	return newGuardBuf(t, n+offset).tail(n, offset)
}

func guardedSliceStart(t testing.TB, n, offset int) []float32 {
	return newGuardBuf(t, n+offset).head(n, offset)
}
