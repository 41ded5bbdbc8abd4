package fuzz

import (
	"math"
	"slices"
	"testing"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
)

// The optimizer kernels are elementwise chains of correctly rounded
// operations, so every level must give the generic twin's bits, for any
// float32 inputs and coefficients; where the twin gives NaN, only NaN-ness
// must agree (which NaN payload wins depends on the operand order).

func sameBitsOrNaN(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (isNaN(a) && isNaN(b))
}

func FuzzSGDStep(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0x0b})
	f.Add([]byte{70, 0, 5, 0x0f, 0, 0, 0x80, 0x7f})
	f.Add([]byte{9, 0, 1, 0x02, 0xcd, 0xcc, 0xcc, 0xbd, 0, 0, 0, 0, 0x66, 0x66, 0x66, 0x3f, 0, 0, 0x80, 0x3f})
	tab := table[func(p, g, buf []float32, c asm.SGDCoef)](f, "SGDStep")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		c := asm.SGDCoef{Flags: uint32(in.u8() & 0x0f)}
		c.NegLR, c.WeightDecay, c.Momentum, c.Dampening1 = in.f32(), in.f32(), in.f32(), in.f32()
		p, g, buf := in.floats(n, off), in.floats(n, off), in.floats(n, off)
		wp, wb := slices.Clone(p), slices.Clone(buf)
		gen(wp, g, wb, c)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			gp, gb := append(slices.Clone(p), 42), append(slices.Clone(buf), 42)
			fn(gp[:n], g, gb[:n], c)
			for k := 0; k < n; k++ {
				if !sameBitsOrNaN(gp[k], wp[k]) || !sameBitsOrNaN(gb[k], wb[k]) {
					t.Fatalf("%v: n=%d flags=%#x k=%d p=%v g=%v buf=%v: got p %v buf %v, generic p %v buf %v",
						l, n, c.Flags, k, p[k], g[k], buf[k], gp[k], gb[k], wp[k], wb[k])
				}
			}
			if gp[n] != 42 || gb[n] != 42 {
				t.Fatalf("%v: n=%d: wrote past p or buf", l, n)
			}
		}
	})
}

func FuzzAdamWStep(f *testing.F) {
	f.Add([]byte{17, 0, 3})
	f.Add([]byte{70, 0, 5, 0x77, 0x7f, 0x7f, 0x3f, 0x66, 0x66, 0x66, 0x3f, 0xcd, 0xcc, 0xcc, 0x3d})
	tab := table[func(p, g, m, v []float32, c asm.AdamWCoef)](f, "AdamWStep")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		var c asm.AdamWCoef
		c.Decay, c.Beta1, c.Beta1c, c.Beta2 = in.f32(), in.f32(), in.f32(), in.f32()
		c.Beta2c, c.BC2Sqrt, c.Eps, c.NegStep = in.f32(), in.f32(), in.f32(), in.f32()
		p, g, m, v := in.floats(n, off), in.floats(n, off), in.floats(n, off), in.floats(n, off)
		wp, wm, wv := slices.Clone(p), slices.Clone(m), slices.Clone(v)
		gen(wp, g, wm, wv, c)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			gp, gm, gv := append(slices.Clone(p), 42), append(slices.Clone(m), 42), append(slices.Clone(v), 42)
			fn(gp[:n], g, gm[:n], gv[:n], c)
			for k := 0; k < n; k++ {
				if !sameBitsOrNaN(gp[k], wp[k]) || !sameBitsOrNaN(gm[k], wm[k]) || !sameBitsOrNaN(gv[k], wv[k]) {
					t.Fatalf("%v: n=%d k=%d p=%v g=%v m=%v v=%v coef %+v: got %v %v %v, generic %v %v %v",
						l, n, k, p[k], g[k], m[k], v[k], c, gp[k], gm[k], gv[k], wp[k], wm[k], wv[k])
				}
			}
			if gp[n] != 42 || gm[n] != 42 || gv[n] != 42 {
				t.Fatalf("%v: n=%d: wrote past an output", l, n)
			}
		}
	})
}
