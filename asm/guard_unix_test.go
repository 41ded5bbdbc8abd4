//go:build linux || darwin

package asm

import (
	"os"
	"runtime/debug"
	"syscall"
	"testing"
	"unsafe"
)

// guardBuf is a run of float32 between two PROT_NONE pages (segmentio/asm's
// guard-page buffers): a slice placed flush against either page faults on
// the first access outside it. Kernel tests reuse one guardBuf for many
// shapes: refill data, take a slice with head or tail, call, check.
type guardBuf struct {
	data []float32 // every accessible float, page-aligned at both ends
}

// guarded reports whether out-of-bounds accesses fault (false on systems
// without mmap, where guard_other_test.go stands in).
const guarded = true

// newGuardBuf maps room for at least n floats (one page at least) between
// two inaccessible pages. The mapping is released when t ends.
func newGuardBuf(t testing.TB, n int) *guardBuf {
	t.Helper()
	page := os.Getpagesize()
	size := (4*n + page - 1) / page * page
	if size == 0 {
		size = page
	}
	mem, err := syscall.Mmap(-1, 0, size+2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	if err := syscall.Mprotect(mem[page+size:], syscall.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	return &guardBuf{data: unsafe.Slice((*float32)(unsafe.Pointer(&mem[page])), size/4)}
}

// head returns n floats starting offset floats after the leading guard page
// (offset 0: flush against it). len = cap = n.
func (g *guardBuf) head(n, offset int) []float32 {
	return g.data[offset : offset+n : offset+n]
}

// tail returns n floats ending offset floats before the trailing guard page
// (offset 0: flush against it). len = cap = n.
func (g *guardBuf) tail(n, offset int) []float32 {
	end := len(g.data) - offset
	return g.data[end-n : end : end]
}

// guardedSlice returns a zeroed slice of n floats that ends offset floats
// before a PROT_NONE page (flush against it for offset 0), with another
// PROT_NONE page before its mapping.
func guardedSlice(t testing.TB, n, offset int) []float32 {
	return newGuardBuf(t, n+offset).tail(n, offset)
}

// guardedSliceStart returns a zeroed slice of n floats that starts offset
// floats after a PROT_NONE page (flush against it for offset 0), with
// another PROT_NONE page after its mapping.
func guardedSliceStart(t testing.TB, n, offset int) []float32 {
	return newGuardBuf(t, n+offset).head(n, offset)
}

// TestGuardPagesFault: one float past a tail slice and one before a head
// slice are unreadable, so the kernel tests would crash on such a read.
func TestGuardPagesFault(t *testing.T) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	faults := func(p *float32) (faulted bool) {
		defer func() { faulted = recover() != nil }()
		_ = *(*float32)(p)
		return false
	}
	for _, n := range []int{1, 5, 1024, 1025} {
		end := guardedSlice(t, n, 0)
		start := guardedSliceStart(t, n, 0)
		if faults(&end[n-1]) || faults(&start[0]) {
			t.Fatalf("n=%d: the slice itself is not readable", n)
		}
		if !faults((*float32)(unsafe.Add(unsafe.Pointer(&end[n-1]), 4))) {
			t.Fatalf("n=%d: the float after a guardedSlice is readable", n)
		}
		if !faults((*float32)(unsafe.Add(unsafe.Pointer(&start[0]), -4))) {
			t.Fatalf("n=%d: the float before a guardedSliceStart is readable", n)
		}
		if s := guardedSlice(t, n, 3); faults((*float32)(unsafe.Add(unsafe.Pointer(&s[n-1]), 12))) {
			t.Fatalf("n=%d: offset 3 leaves no room before the guard", n)
		}
	}
}
