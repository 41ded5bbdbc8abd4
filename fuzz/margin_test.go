package fuzz

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
)

// marginSpecials are cosines every input also gets: the poles, the clamp of
// φ′ and its float32 neighbours, the switch of acos, values outside [−1, 1],
// ±Inf, NaN and a subnormal.
var marginSpecials = []float32{
	1, -1, 0, float32(math.Copysign(0, -1)), 0.5, -0.5,
	0.99999905, 0.999999, 0.9999989, -0.99999905, -0.999999, -0.9999989,
	1.0000001, -1.0000001, 3, -7, float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.NaN()), 1e-40,
}

// marginSeed encodes a margin, a length, an offset and leading t values in
// FuzzMarginForward's byte layout.
func marginSeed(kind asm.MarginKind, m1, m2, m3 float32, intM byte, lambda float32, n, off byte, ts ...float32) []byte {
	b := []byte{byte(kind)}
	put := func(v float32) { b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v)) }
	put(m1)
	put(m2)
	put(m3)
	b = append(b, intM)
	put(lambda)
	b = append(b, n, off)
	for _, v := range ts {
		put(v)
	}
	return b
}

// FuzzMarginForward compares every level of asm.MarginForward with the
// generic twin on a margin and cosines taken from raw bytes: the kind (an
// unknown one included), its parameters as float32 bit patterns (NaN, Inf
// and huge values included: the levels then fall back to the generic twin),
// Psi's m in 0..8, a length up to 2·16·4+1 from a start offset 0..15, and t
// bit patterns. Each element must be within asm's error bound (the
// "Margin.ErrorBound" hook), with NaN exactly where the generic has NaN.
func FuzzMarginForward(f *testing.F) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	f.Add(marginSeed(asm.MarginArc, 1, 0.5, 0, 0, 0, 40, 3))
	f.Add(marginSeed(asm.MarginArc, 1, 2.5, 0, 0, 0, 17, 0, -0.9, -0.8, 0.8011436, 0.80114365, 1, -1))
	f.Add(marginSeed(asm.MarginArcEasy, 1, 0.3, 0, 0, 0, 9, 1, 0, -0, 1e-40, -1e-40))
	f.Add(marginSeed(asm.MarginCos, 1, 0.35, 0, 0, 0, 129, 15))
	f.Add(marginSeed(asm.MarginCombined, 0.9, 0.4, 0.15, 0, 0, 65, 3))
	f.Add(marginSeed(asm.MarginCombined, 8, -30, 1, 0, 0, 33, 5, 0.99999905, 0.999999, -0.99999905, -0.999999))
	f.Add(marginSeed(asm.MarginCombined, 1, nan, 0, 0, 0, 8, 0))
	f.Add(marginSeed(asm.MarginPsi, 0, 0, 0, 7, 5, 64, 7, nan, inf, -inf, 1e-40))
	f.Add(marginSeed(asm.MarginPsi, 0, 0, 0, 4, 1e30, 16, 2))
	tab := table[marginBody](f, "MarginForward")
	errorBound := hook[marginErrorBound](f, "Margin.ErrorBound")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{byteReader{b: data}}
		kind := asm.MarginKind(r.u8() % 7) // 6: unknown
		m1, m2, m3 := r.float(), r.float(), r.float()
		intM := int(r.u8() % 9) // m > 8 is outside φ's domain
		lambda := r.float()
		g := asm.NewMargin(kind, float64(m1), float64(m2), float64(m3), intM, float64(lambda))
		n, off := int(r.u8())%(2*16*4+2), int(r.u8()%16)
		buf := make([]float32, off+n)
		for i := range buf {
			if len(r.b) >= 4 {
				buf[i] = r.float()
			} else {
				buf[i] = marginSpecials[i%len(marginSpecials)]
			}
		}
		ts := buf[off:]
		gen, _ := tab.At(simd.Generic)
		wantP, wantD := make([]float32, n), make([]float32, n)
		gen(wantP, wantD, ts, &g)
		for _, l := range tab.Levels() {
			if l == simd.Generic {
				continue
			}
			body, _ := tab.At(l)
			p, d := make([]float32, n+1), make([]float32, n+1)
			p[n], d[n] = 42, 42
			body(p[:n], d[:n], ts, &g)
			pn := make([]float32, n)
			body(pn, nil, ts, &g)
			if p[n] != 42 || d[n] != 42 {
				t.Fatalf("%v %+v: wrote past the outputs", l, g)
			}
			for i, tv := range ts {
				bp, bd := errorBound(&g, tv)
				check := func(what string, got, want float32, bound float64) {
					if (got != got) != (want != want) {
						t.Fatalf("%v %+v t=%v %s: got %v, generic %v", l, g, tv, what, got, want)
					}
					if got == want || got != got {
						return
					}
					if e := math.Abs(float64(got) - float64(want)); !(e <= bound) {
						t.Fatalf("%v %+v t=%v %s: got %v, generic %v: error %.3g exceeds the bound %.3g", l, g, tv, what, got, want, e, bound)
					}
				}
				check("φ", p[i], wantP[i], bp)
				check("φ′", d[i], wantD[i], bd)
				if math.Float32bits(pn[i]) != math.Float32bits(p[i]) {
					t.Fatalf("%v %+v t=%v: φ with dphi = nil is %v, with dphi %v", l, g, tv, pn[i], p[i])
				}
			}
		}
	})
}

// FuzzMarginForwardRows is FuzzMarginForward with a per-row margin
// (Margin.SetRows): the kind (Combined, Psi, ArcClip and an unknown one
// included), m1 (1, AdaFace's ε or raw bits: the forms without a row body
// fall back to the generic twin), each row's m2 and m3 and its t as float32
// bit patterns. Each element must be within its row's error bound (the
// "Margin.RowErrorBound" hook), with NaN exactly where the generic has NaN.
func FuzzMarginForwardRows(f *testing.F) {
	f.Add(marginSeed(asm.MarginArc, 1, 0.5, 0, 0, 0, 40, 3))
	f.Add(marginSeed(asm.MarginCos, 1, 0.35, 0, 0, 0, 129, 15))
	f.Add(marginSeed(asm.MarginArcEasy, 1, 0.3, 0, 0, 0, 9, 1, 0, -0, 1e-40, -1e-40))
	f.Add(marginSeed(asm.MarginCombined, 1, 0.5, 0.1, 0, 0, 33, 2))
	f.Add(marginSeed(asm.MarginArcClip, 2, -0.4, 0.8, 0, 0, 65, 7, 0.999, 0.9991, -0.999, 0.95, 0.5))
	tab := table[marginBody](f, "MarginForwardRows")
	errorBound := hook[marginRowErrorBound](f, "Margin.RowErrorBound")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{byteReader{b: data}}
		kind := asm.MarginKind(r.u8() % 7)
		m1 := r.float()
		switch v := math.Float32bits(m1) % 4; {
		case v < 2:
			m1 = 1
		case v == 2:
			m1 = 1e-3 // AdaFaceEps
		}
		base, base3 := r.float(), r.float()
		n, off := int(r.u8())%(2*16*4+2), int(r.u8()%16)
		buf, m2, m3 := make([]float32, off+n), make([]float32, n), make([]float32, n)
		for i := range buf {
			if len(r.b) >= 4 {
				buf[i] = r.float()
			} else {
				buf[i] = marginSpecials[i%len(marginSpecials)]
			}
		}
		for i := range m2 {
			m2[i], m3[i] = base, base3
			if len(r.b) >= 8 {
				m2[i], m3[i] = r.float(), r.float()
			} else if i%3 == 1 {
				m2[i], m3[i] = base*float32(i)/7, base3*float32(i%5)/3
			}
		}
		ts := buf[off:]
		var g asm.Margin
		g.SetRows(kind, float64(m1), m2, m3)
		gen, _ := tab.At(simd.Generic)
		wantP, wantD := make([]float32, n), make([]float32, n)
		gen(wantP, wantD, ts, &g)
		for _, l := range tab.Levels() {
			if l == simd.Generic {
				continue
			}
			body, _ := tab.At(l)
			p, d := make([]float32, n+1), make([]float32, n+1)
			p[n], d[n] = 42, 42
			body(p[:n], d[:n], ts, &g)
			if p[n] != 42 || d[n] != 42 {
				t.Fatalf("%v %v: wrote past the outputs", l, kind)
			}
			for i, tv := range ts {
				bp, bd := errorBound(&g, i, tv)
				check := func(what string, got, want float32, bound float64) {
					if (got != got) != (want != want) {
						t.Fatalf("%v %v m1=%v m2=%v m3=%v t=%v %s: got %v, generic %v", l, kind, m1, m2[i], m3[i], tv, what, got, want)
					}
					if got == want || got != got {
						return
					}
					if e := math.Abs(float64(got) - float64(want)); !(e <= bound) {
						t.Fatalf("%v %v m1=%v m2=%v m3=%v t=%v %s: got %v, generic %v: error %.3g exceeds the bound %.3g", l, kind, m1, m2[i], m3[i], tv, what, got, want, e, bound)
					}
				}
				check("φ", p[i], wantP[i], bp)
				check("φ′", d[i], wantD[i], bd)
			}
		}
	})
}
