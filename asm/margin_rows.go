package asm

import (
	"math"

	"github.com/marginloss/marginloss/internal/simd"
)

// marginRows is the per-row form of a Margin (SetRows): row i's φ is
// NewMargin(kind, m1, m2[i], m3[i], 0, 0)'s.
type marginRows struct {
	on     bool
	n      int
	m1     float64
	m2, m3 []float64
	// the row body's float32 constants, one slice each (rowConsts)
	c   [rowConstCount][]float32
	vec bool // every row has them: the vector levels run the row body
}

// The row body's constants per row. It computes, with t clamped to [−1, 1],
//
//	t > hi:      φ = cHi,                        φ′ = 0
//	t > lo:      φ = t·cosM − sin θ·sinM − off,  φ′ = cosM + t̃·sinM/sin θ̃
//	otherwise:   φ = slope·t + icept,            φ′ = slope
//
// (t̃, θ̃ clamped as in MarginForward), which is the arc body (hi = +Inf,
// lo = th, slope = 1, icept = −sub, off = 0: bit for bit its results),
// cos(θ + m2) − m3 (lo = −Inf, off = m3) and ArcClip (lo and hi its
// regions, slope = 0, icept = cLo). A NaN t takes the last line.
const (
	rowCosM = iota
	rowSinM
	rowOff
	rowLo
	rowSlope
	rowIcept
	rowHi
	rowCHi
	rowConstCount
)

// rowConsts returns the row body's constants for g, and false where the
// body does not compute g's φ (Combined with m1 ≠ 1, Psi, an unknown kind)
// or a constant is not a finite normal or zero float32.
func rowConsts(g *Margin) (c [rowConstCount]float32, ok bool) {
	inf := float32(math.Inf(1))
	c[rowHi], c[rowSlope] = inf, 1
	var finite []float32
	switch g.kind {
	case MarginArc, MarginArcEasy, MarginCos:
		p := g.vec
		if p.body != marginBodyArc {
			return c, false
		}
		c[rowCosM], c[rowSinM], c[rowLo], c[rowIcept] = p.cosM, p.sinM, p.th, -p.sub
		return c, true // newMarginParams checked them
	case MarginCombined:
		if g.m1 != 1 {
			return c, false
		}
		c[rowCosM], c[rowSinM], c[rowOff], c[rowLo] = float32(g.cosM), float32(g.sinM), float32(g.m3), -inf
		// only a NaN t takes the last line: φ′ NaN, as the twin's
		c[rowSlope] = float32(math.NaN())
		finite = c[rowCosM:rowLo]
	case MarginArcClip:
		k := &g.clip
		if !k.ok {
			return c, false
		}
		c[rowCosM], c[rowSinM], c[rowOff] = k.cosM32, k.sinM32, k.off32
		c[rowLo], c[rowSlope], c[rowIcept], c[rowHi], c[rowCHi] = k.lo32, 0, k.cLo32, k.hi32, k.cHi32
		finite = []float32{k.cosM32, k.sinM32, k.off32, k.cLo32, k.cHi32}
	default:
		return c, false
	}
	for _, v := range finite {
		if a := math.Abs(float64(v)); !(a <= math.MaxFloat32) || (a != 0 && a < 0x1p-126) {
			return c, false
		}
	}
	return c, true
}

// SetRows makes g the per-row margin of kind over len(m2) rows: row i's φ
// is that of NewMargin(kind, m1, m2[i], m3[i], 0, 0), and MarginForward
// then evaluates t[i] under row i's margin. m3 may be nil (zeros);
// otherwise it has len(m2) values. SetRows reuses g's buffers, so that a
// call per training step allocates nothing once they have grown.
//
// The vector levels have a body for the per-row forms that the adaptive
// margins use: MarginArc, MarginArcEasy and MarginCos (m2[i] the margin;
// ArcFace's per-row threshold fallback), MarginCombined with m1 = 1
// (cos(θ + m2[i]) − m3[i], no fallback) and MarginArcClip. Any other form,
// or a row whose constants fall outside what the body handles, makes every
// level run the generic twin for the call (fail closed). It panics when
// m3 is non-nil and its length differs from m2's.
func (g *Margin) SetRows(kind MarginKind, m1 float64, m2, m3 []float32) {
	if m3 != nil && len(m3) != len(m2) {
		panicf("Margin.SetRows: m3 has %d values, m2 %d", len(m3), len(m2))
	}
	n := len(m2)
	*g = Margin{kind: kind, m1: m1, rows: g.rows} // the buffers stay
	r := &g.rows
	r.on, r.n, r.m1 = true, n, m1
	r.m2, r.m3 = growF64(r.m2, n), growF64(r.m3, n)
	for k := range r.c {
		r.c[k] = growF32(r.c[k], n)
	}
	r.vec = true
	for i := range n {
		r.m2[i], r.m3[i] = float64(m2[i]), 0
		if m3 != nil {
			r.m3[i] = float64(m3[i])
		}
		row := g.row(i)
		c, ok := rowConsts(&row)
		r.vec = r.vec && ok
		for k := range c {
			r.c[k][i] = c[k]
		}
	}
}

// Rows returns the number of rows of a per-row margin (SetRows), and −1
// for a margin of one parameter set (NewMargin).
func (g *Margin) Rows() int {
	if !g.rows.on {
		return -1
	}
	return g.rows.n
}

// row returns row i's Margin.
func (g *Margin) row(i int) Margin {
	r := &g.rows
	return NewMargin(g.kind, r.m1, r.m2[i], r.m3[i], 0, 0)
}

// rowErrorBound is errorBound for row i of a per-row margin: the bound the
// row body meets at t where it runs (vec), 0 where the levels run the
// generic twin.
func (g *Margin) rowErrorBound(i int, t float32) (phi, dphi float64) {
	if !g.rows.vec || t != t {
		return 0, 0
	}
	row := g.row(i)
	if row.kind == MarginArc || row.kind == MarginArcEasy || row.kind == MarginCos {
		return row.errorBound(t)
	}
	r := &g.rows
	if t > 1 { // the body compares the clamped t
		t = 1
	} else if t < -1 {
		t = -1
	}
	if t > r.c[rowHi][i] || !(t > r.c[rowLo][i]) {
		return 0, 0 // the constants, exact
	}
	const eps = 0x1p-23
	const slack = 1 + 1.0/64
	x := math.Max(-1, math.Min(1, float64(t)))
	xc := math.Max(-1+ClampEps, math.Min(1-ClampEps, x))
	s := math.Sqrt((1 - x) * (1 + x))
	sc := math.Sqrt((1 - xc) * (1 + xc))
	tc, sm := math.Abs(x*row.cosM), math.Abs(s*row.sinM)
	off := math.Abs(r.m3[i])
	phi = eps * (2.5*tc + 3.75*sm + 1.5*off)
	dphi = eps * (3.25*math.Abs(xc*row.sinM/sc) + 1.5*math.Abs(row.cosM))
	if row.kind == MarginCombined {
		// the twin's float64 rounding of acos t + m2, which matters when
		// φ is tiny or |m2| huge (the row body reads cos m2 and sin m2,
		// exact to float32)
		ref := 0x1p-51 * (math.Abs(row.m2) + math.Pi)
		phi += ref
		dphi += ref / sc
	}
	const underflow = 0x1p-139
	return phi*slack + underflow, dphi*slack + underflow
}

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

// marginRowsImpl is MarginForward's table for the per-row form.
var marginRowsImpl = simd.NewTable("MarginForwardRows", marginForwardRowsGeneric)

// marginForwardRowsGeneric evaluates each row's φ and φ′ in float64 and
// rounds once to float32.
func marginForwardRowsGeneric(phi, dphi, t []float32, g *Margin) {
	for i, tv := range t {
		row := g.row(i)
		p, d := row.eval(float64(tv))
		phi[i] = float32(p)
		if dphi != nil {
			dphi[i] = float32(d)
		}
	}
}

// rowBody is a vector level's row body: phi, a non-nil dphi and every
// constant slice hold at least len(t) values.
type rowBody func(phi, dphi, t, cosM, sinM, off, lo, slope, icept, hi, cHi []float32, clampTh, clampT, clampSin float32)

// marginRowsVector adapts a vector level's row body to the kernel
// signature: it passes the rows' constants and the clamp's, or runs the
// generic twin when g has no vector constants.
func marginRowsVector(body rowBody) func(phi, dphi, t []float32, g *Margin) {
	c := 1 - ClampEps
	clampTh, clampT := roundDown32(c), float32(c)
	clampSin := float32(math.Sqrt(ClampEps * (2 - ClampEps)))
	return func(phi, dphi, t []float32, g *Margin) {
		r := &g.rows
		if !r.vec {
			marginForwardRowsGeneric(phi, dphi, t, g)
			return
		}
		k := r.c
		body(phi, dphi, t, k[rowCosM], k[rowSinM], k[rowOff], k[rowLo], k[rowSlope], k[rowIcept], k[rowHi], k[rowCHi], clampTh, clampT, clampSin)
	}
}
