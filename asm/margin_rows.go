package asm

import (
	"math"

	"github.com/marginloss/marginloss/internal/simd"
)

// MarginRows holds a per-row margin of the arc family for
// MarginForwardRows: row i's φ is the Margin of kind MarginArc (threshold
// fallback), MarginArcEasy or MarginCos with m = m[i], as NewMargin(kind,
// 1, m[i], 0, 0, 0) builds it. Set fills it, reusing its buffers, so that a
// call per training step does not allocate.
type MarginRows struct {
	kind MarginKind
	m    []float64
	// per row, the arc body's float32 constants (see marginParams)
	cosM, sinM, th, sub []float32
	vec                 bool // every constant is one the bodies handle
}

// Set makes r the margins m of kind. A kind outside the arc family
// (Combined, Psi, unknown), or a margin whose constants are not finite
// normal float32 values, makes every level run the generic twin (fail
// closed).
func (r *MarginRows) Set(kind MarginKind, m []float32) {
	n := len(m)
	r.kind = kind
	r.m = growF64(r.m, n)
	r.cosM, r.sinM, r.th, r.sub = growF32(r.cosM, n), growF32(r.sinM, n), growF32(r.th, n), growF32(r.sub, n)
	r.vec = kind == MarginArc || kind == MarginArcEasy || kind == MarginCos
	for i, v := range m {
		g := NewMargin(kind, 1, float64(v), 0, 0, 0)
		r.m[i] = float64(v)
		p := g.vec
		if p.body != marginBodyArc {
			r.vec = false
		}
		r.cosM[i], r.sinM[i], r.th[i], r.sub[i] = p.cosM, p.sinM, p.th, p.sub
	}
}

// Len is the number of rows.
func (r *MarginRows) Len() int { return len(r.m) }

// row returns row i's Margin.
func (r *MarginRows) row(i int) Margin { return NewMargin(r.kind, 1, r.m[i], 0, 0, 0) }

func growF64(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

var marginRowsImpl = simd.NewTable("MarginForwardRows", marginForwardRowsGeneric)

// MarginForwardRows is MarginForward with a margin per row: φ(t[i]) and,
// when dphi is non-nil, φ′(t[i]) of row i's margin in r,
//
//	for i, v := range t {
//		g := NewMargin(kind, 1, m[i], 0, 0, 0)
//		phi[i], dphi[i] = MarginForward's φ(v), φ′(v) of g
//	}
//
// with MarginForward's clamps, NaN rule and error bounds (the assembly
// levels read each row's float32 constants as vectors, the generic twin
// computes in float64 and rounds once). It panics when r is nil, when r
// does not hold len(t) rows, or when phi, or a non-nil dphi, is shorter
// than t.
func MarginForwardRows(phi, dphi, t []float32, r *MarginRows) {
	if r == nil {
		panicf("MarginForwardRows: r is nil")
	}
	if r.Len() != len(t) {
		panicf("MarginForwardRows: r holds %d rows, t has %d", r.Len(), len(t))
	}
	checkAtLeast("MarginForwardRows", "phi", len(phi), "t", len(t))
	if dphi != nil {
		checkAtLeast("MarginForwardRows", "dphi", len(dphi), "t", len(t))
	}
	marginRowsImpl.Get()(phi, dphi, t, r)
}

// marginForwardRowsGeneric evaluates each row's φ and φ′ in float64 and
// rounds once to float32.
func marginForwardRowsGeneric(phi, dphi, t []float32, r *MarginRows) {
	for i, tv := range t {
		g := r.row(i)
		p, d := g.eval(float64(tv))
		phi[i] = float32(p)
		if dphi != nil {
			dphi[i] = float32(d)
		}
	}
}

// marginRowsVector adapts a vector level's body to the kernel signature:
// it passes the rows' constants and the clamp's, or runs the generic twin
// when r has no vector constants.
func marginRowsVector(body func(phi, dphi, t, cosM, sinM, th, sub []float32, clampTh, clampT, clampSin float32)) func(phi, dphi, t []float32, r *MarginRows) {
	c := 1 - ClampEps
	clampTh, clampT := roundDown32(c), float32(c)
	clampSin := float32(math.Sqrt(ClampEps * (2 - ClampEps)))
	return func(phi, dphi, t []float32, r *MarginRows) {
		if !r.vec {
			marginForwardRowsGeneric(phi, dphi, t, r)
			return
		}
		body(phi, dphi, t, r.cosM, r.sinM, r.th, r.sub, clampTh, clampT, clampSin)
	}
}
