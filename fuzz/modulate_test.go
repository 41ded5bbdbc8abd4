package fuzz

import (
	"math"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// The modulate family (asm.ClampGrad, asm.HardNegatives): every level
// bitwise its generic twin (one rounding per step, ordered compares) on
// arbitrary lengths, offsets, bounds and float bit patterns, NaN and ±Inf
// included; nothing past dz is written.

func FuzzClampGrad(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0x80, 0x7f, 0x42, 0, 0x80, 0x7f, 0xc2})
	f.Add([]byte{129, 0, 15, 0, 0, 0xc0, 0x7f})
	tab := table[func(z, dz []float32, lo, hi float32)](f, "ClampGrad")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		a, b := in.f32(), in.f32()
		lo, hi := min(a, b), max(a, b)
		if !(lo <= hi) {
			lo, hi = -1, 1
		}
		z := in.floats(n, off)
		want, wantD := append([]float32(nil), z...), make([]float32, n)
		gen(want, wantD, lo, hi)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := append([]float32(nil), z...)
			gotD := make([]float32, n+1)[:n]
			gotD[:n+1][n] = 42
			fn(got, gotD, lo, hi)
			compareMod(t, l, "ClampGrad", z, got, gotD, want, wantD)
		}
	})
}

func FuzzHardNegatives(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0, 0x3e, 0, 0, 0x80, 0x3e, 0, 0, 0x80, 0x3c})
	f.Add([]byte{200, 0, 9, 0, 0xc0, 0x7f})
	tab := table[func(z, dz []float32, thr, t, inv float32)](f, "HardNegatives")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		thr, tt, inv := in.f32(), in.f32(), in.f32()
		z := in.floats(n, off)
		want, wantD := append([]float32(nil), z...), make([]float32, n)
		gen(want, wantD, thr, tt, inv)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := append([]float32(nil), z...)
			gotD := make([]float32, n+1)[:n]
			gotD[:n+1][n] = 42
			fn(got, gotD, thr, tt, inv)
			compareMod(t, l, "HardNegatives", z, got, gotD, want, wantD)
		}
	})
}

// compareMod requires bitwise equality, except that two NaNs agree (which
// payload an operation propagates depends on the operand order).
func compareMod(t *testing.T, l simd.Level, name string, z, got, gotD, want, wantD []float32) {
	t.Helper()
	same := func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) || isNaN(a) && isNaN(b) }
	for k := range want {
		if !same(got[k], want[k]) || !same(gotD[k], wantD[k]) {
			t.Fatalf("%v %s: n=%d z[%d]=%v: got %v, %v; generic %v, %v", l, name, len(z), k, z[k], got[k], gotD[k], want[k], wantD[k])
		}
	}
	if gotD[:len(z)+1][len(z)] != 42 {
		t.Fatalf("%v %s: n=%d: wrote past dz", l, name, len(z))
	}
}
