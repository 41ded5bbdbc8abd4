package fuzz

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
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

// FuzzStepRows drives optim's StepRows with fuzzed hyper-parameters,
// shapes, values and row lists over several calls, against its definition:
// each row is its own tensor, stepped by Step with its own State on the
// calls that list it. Invalid input must give an error wrapping one of
// loss's sentinels and leave p as it was; nothing may panic.
func FuzzStepRows(f *testing.F) {
	f.Add([]byte{3, 5, 0, 2, 1, 0, 2, 7})
	f.Add([]byte{6, 2, 1, 4, 0, 1, 2, 3, 4, 5, 9, 9})
	f.Add([]byte{2, 33, 2, 3, 1, 1, 0xcd, 0xcc, 0xcc, 0x3d, 0x66, 0x66, 0x66, 0x3f})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &reader{byteReader{b: data}}
		rows, cols := 1+int(in.u8())%6, 1+int(in.u8())%40
		kind := in.u8() % 3
		var o interface {
			Step(p, g []float32, st *optim.State) error
			StepRows(p, g loss.Matrix, rows []int32, st *optim.State) error
		}
		hp := func() float32 { return float32(in.u8()) / 256 } // [0, 1)
		switch kind {
		case 0:
			o = optim.SGD{LR: hp(), Momentum: hp(), Dampening: hp() - 0.5, WeightDecay: hp() / 10}
		case 1:
			o = optim.SGD{LR: hp(), Momentum: hp() + 0.01, WeightDecay: hp() / 10, Nesterov: true}
		default:
			o = optim.AdamW{LR: hp() / 10, Beta1: hp(), Beta2: hp(), Eps: hp() / 1000, WeightDecay: hp() / 10}
		}
		p := in.matrix(rows, cols)
		ref := make([][]float32, rows) // each row stepped as its own tensor
		refSt := make([]optim.State, rows)
		for r := range ref {
			ref[r] = slices.Clone(p.Row(r))
		}
		var st optim.State
		for call := 0; call < 3; call++ {
			var list []int32
			for k := int(in.u8()) % (rows + 2); k > 0; k-- {
				list = append(list, int32(in.u8()%uint8(rows+1))) // may be unsorted, repeated, out of range
			}
			g := in.matrix(rows, cols)
			before := slices.Clone(p.Data)
			var err error
			if !(func() (ok bool) {
				defer func() { ok = recover() == nil }()
				err = o.StepRows(p, g, list, &st)
				return true
			})() {
				t.Fatalf("StepRows panicked: rows %v", list)
			}
			if err != nil {
				if !errors.Is(err, loss.ErrParam) && !errors.Is(err, loss.ErrNonFinite) && !errors.Is(err, loss.ErrShape) {
					t.Fatalf("error %v wraps no sentinel", err)
				}
				if !slices.Equal(math32bits(before), math32bits(p.Data)) {
					t.Fatalf("p written on error %v", err)
				}
				continue
			}
			for _, r := range list {
				if e := o.Step(ref[r], g.Row(int(r)), &refSt[r]); e != nil {
					t.Fatalf("the per-row Step failed where StepRows did not: %v", e)
				}
			}
			for r := range ref {
				if !slices.Equal(math32bits(ref[r]), math32bits(p.Row(r))) {
					t.Fatalf("call %d rows %v: row %d is %v, as its own tensor %v", call, list, r, p.Row(r), ref[r])
				}
			}
		}
	})
}

func math32bits(s []float32) []uint32 {
	b := make([]uint32, len(s))
	for i, v := range s {
		b[i] = math.Float32bits(v)
	}
	return b
}
