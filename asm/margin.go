package asm

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/internal/kconst"
	"github.com/marginloss/marginloss/internal/simd"
)

// MarginKind selects the target-logit function φ(t) of a margin softmax.
type MarginKind int

// The margin functions. t is cos θ of the target class.
const (
	// MarginArc: φ = cos(θ+m) when t > cos(π−m), else t − m·sin m
	// (insightface's threshold fallback, which keeps φ decreasing in θ).
	MarginArc MarginKind = iota
	// MarginArcEasy: φ = cos(θ+m) when t > 0, else t.
	MarginArcEasy
	// MarginCos: φ = t − m.
	MarginCos
	// MarginCombined: φ = cos(m1·θ + m2) − m3, no fallback.
	MarginCombined
	// MarginPsi: φ = (λ·t + ψ(θ))/(1+λ) with ψ(θ) = (−1)^k·cos(mθ) − 2k,
	// k = ⌊mθ/π⌋ and integer m (SphereFace, L-Softmax). cos(mθ) is the
	// Chebyshev polynomial T_m(t), so neither φ nor φ′ needs acos.
	MarginPsi
	// MarginArcClip: φ = cos(clip(acos c + m2, ε, π−ε)) − m3 with
	// c = clamp(t, −1+ε, 1−ε) and ε = m1 (AdaFace's margin, whose m2 and m3
	// are per row: −m·ŝ and m + m·ŝ). φ′ = sin θ′/sin θ, and 0 where either
	// clamp acts (torch's clamp passes the gradient at its bounds, so the
	// bounds are inside).
	MarginArcClip
)

// String returns the constant's name without the Margin prefix ("Arc"),
// or MarginKind(n) for an unknown kind.
func (k MarginKind) String() string {
	switch k {
	case MarginArc:
		return "Arc"
	case MarginArcEasy:
		return "ArcEasy"
	case MarginCos:
		return "Cos"
	case MarginCombined:
		return "Combined"
	case MarginPsi:
		return "Psi"
	case MarginArcClip:
		return "ArcClip"
	}
	return fmt.Sprintf("MarginKind(%d)", int(k))
}

// Margin is a margin function φ with its parameters and the constants
// derived from them, which every level reads. Build it with NewMargin; it
// cannot be changed afterwards, so that the levels always agree. The zero
// Margin lacks the derived constants: it is only a placeholder.
type Margin struct {
	kind       MarginKind
	m1, m2, m3 float64 // Arc*, Cos: m2 = m. Combined: m1, m2, m3. ArcClip: ε = m1, m2, m3.
	intM       int     // Psi: the integer m, 1..8
	lambda     float64 // Psi: λ ≥ 0
	// derived
	cosM, sinM, th, mm float64
	kcos               [9]float64   // Psi: cos(kπ/m) for k = 0..m
	clip               arcClip      // ArcClip: its regions
	vec                marginParams // what the assembly bodies read
	rows               marginRows   // the per-row form (SetRows)
}

// NewMargin returns φ of the given kind with its derived constants.
// The parameters each kind reads:
//
//	MarginArc, MarginArcEasy, MarginCos: m = m2
//	MarginCombined:                      m1, m2, m3
//	MarginPsi:                           m = intM (1..8), λ = lambda ≥ 0
//	MarginArcClip:                       ε = m1, m2, m3
//
// The others are kept (Params) but unused. Parameters outside what the
// assembly bodies handle (Psi with m outside 1..8 or λ < 0, |m1| > 2¹⁶, a
// constant that is not a finite, zero or normal float32) make every level
// run the Go body; m > 8 is outside φ's domain altogether.
func NewMargin(kind MarginKind, m1, m2, m3 float64, intM int, lambda float64) Margin {
	g := Margin{kind: kind, m1: m1, m2: m2, m3: m3, intM: intM, lambda: lambda}
	g.cosM, g.sinM = math.Cos(m2), math.Sin(m2)
	g.th = math.Cos(math.Pi - m2)
	g.mm = math.Sin(math.Pi-m2) * m2
	if kind == MarginPsi && intM >= 1 && intM <= 8 {
		for k := 0; k <= intM; k++ {
			g.kcos[k] = math.Cos(float64(k) * math.Pi / float64(intM))
		}
	}
	if kind == MarginArcClip {
		g.clip = newArcClip(m1, m2, m3)
	}
	g.vec = newMarginParams(&g)
	return g
}

// Kind returns the kind of φ.
func (g Margin) Kind() MarginKind { return g.kind }

// Params returns the parameters g was built with, in NewMargin's order.
func (g Margin) Params() (m1, m2, m3 float64, intM int, lambda float64) {
	return g.m1, g.m2, g.m3, g.intM, g.lambda
}

// String describes φ by its kind and the parameters that kind reads, for
// example "Arc(m=0.5)" or "Psi(m=4, λ=5)".
func (g Margin) String() string {
	if g.rows.on {
		return fmt.Sprintf("%v(%d rows)", g.kind, g.rows.n)
	}
	switch g.kind {
	case MarginArc, MarginArcEasy, MarginCos:
		return fmt.Sprintf("%v(m=%g)", g.kind, g.m2)
	case MarginCombined:
		return fmt.Sprintf("Combined(m1=%g, m2=%g, m3=%g)", g.m1, g.m2, g.m3)
	case MarginPsi:
		return fmt.Sprintf("Psi(m=%d, λ=%g)", g.intM, g.lambda)
	case MarginArcClip:
		return fmt.Sprintf("ArcClip(ε=%g, m2=%g, m3=%g)", g.m1, g.m2, g.m3)
	}
	return fmt.Sprintf("%v(m1=%g, m2=%g, m3=%g, intM=%d, λ=%g)", g.kind, g.m1, g.m2, g.m3, g.intM, g.lambda)
}

// ClampEps bounds sin θ away from 0 in φ′ for the acos-based margins: t is
// clamped to [−1+ClampEps, 1−ClampEps] inside the derivative only, so φ′ is
// exact for |t| < 1 − ClampEps and finite everywhere.
const ClampEps = 1e-6

var marginImpl = simd.NewTable("MarginForward", marginForwardGeneric)

// MarginForward evaluates the margin function g on the target cosines t,
// and its derivative when dphi is non-nil:
//
//	for i, v := range t {
//		c := min(max(float64(v), -1), 1) // rounding overshoot
//		phi[i] = float32(φ(c))
//		if dphi != nil {
//			dphi[i] = float32(φ′(c))
//		}
//	}
//
// where φ is g's function (see MarginKind), or row i's when g is a per-row
// margin (SetRows: one parameter set per element of t, so per sample), and
// φ′ = dφ/dt; the acos-based
// kinds evaluate φ′ at t clamped to ±(1 − ClampEps), so that its 1/sin θ
// stays finite at |t| = 1. The Go body computes in float64 and rounds once; the assembly levels compute in
// float32, within a first-order rounding-error bound of it: a few 2⁻²³ of
// the magnitudes of the terms φ combines (φ′ of the acos-based kinds grows
// like 1/sin θ, up to about 700, near |t| = 1, and its error with it). A
// NaN t gives a NaN φ at every level; φ′ is then 1 for MarginArc,
// MarginArcEasy, MarginCos and MarginPsi with m = 1 (whose φ′ is the
// constant 1 for λ ≥ 0), and NaN for MarginCombined and MarginPsi with
// m ≥ 2, and 0 for MarginArcClip. Every level evaluates a per-row margin
// by the same rules and bounds, from each row's float32 constants read as
// vectors (see SetRows for the forms with a vector body). It panics when g
// is nil, when a per-row g does not hold len(t) rows, or when phi, or a
// non-nil dphi, is shorter than t; phi[len(t):] and dphi[len(t):] are not
// touched.
func MarginForward(phi, dphi, t []float32, g *Margin) {
	if g == nil {
		panicf("MarginForward: g is nil")
	}
	checkAtLeast("MarginForward", "phi", len(phi), "t", len(t))
	if dphi != nil {
		checkAtLeast("MarginForward", "dphi", len(dphi), "t", len(t))
	}
	if g.rows.on {
		if g.rows.n != len(t) {
			panicf("MarginForward: g holds %d rows, t has %d", g.rows.n, len(t))
		}
		marginRowsImpl.Get()(phi, dphi, t, g)
		return
	}
	marginImpl.Get()(phi, dphi, t, g)
}

// marginForwardGeneric evaluates φ and φ′ in float64 per element and rounds
// once to float32.
func marginForwardGeneric(phi, dphi, t []float32, g *Margin) {
	for i, tv := range t {
		p, d := g.eval(float64(tv))
		phi[i] = float32(p)
		if dphi != nil {
			dphi[i] = float32(d)
		}
	}
}

// eval returns φ(t) and φ′(t) in float64: the generic twin before its
// rounding to float32.
func (g *Margin) eval(t float64) (phi, dphi float64) {
	if t > 1 {
		t = 1
	} else if t < -1 {
		t = -1
	}
	// sin θ from the clamped t, for the derivative; exact sin θ for φ.
	sinTheta := func(t float64) float64 { return math.Sqrt((1 - t) * (1 + t)) }
	clamped := math.Max(-1+ClampEps, math.Min(1-ClampEps, t))
	switch g.kind {
	case MarginArc, MarginArcEasy:
		limit := g.th
		if g.kind == MarginArcEasy {
			limit = 0
		}
		if t > limit {
			phi = t*g.cosM - sinTheta(t)*g.sinM
			dphi = g.cosM + clamped*g.sinM/sinTheta(clamped)
			return
		}
		if g.kind == MarginArcEasy {
			return t, 1
		}
		return t - g.mm, 1
	case MarginCos:
		return t - g.m2, 1
	case MarginCombined:
		a := g.m1*math.Acos(t) + g.m2
		phi = math.Cos(a) - g.m3
		ac := g.m1*math.Acos(clamped) + g.m2
		dphi = math.Sin(ac) * g.m1 / sinTheta(clamped)
		return
	case MarginPsi:
		m := g.intM
		// k = ⌊mθ/π⌋ = number of j in 1..m with θ ≥ jπ/m, i.e. t ≤ cos(jπ/m).
		k := 0
		for j := 1; j <= m; j++ {
			if t <= g.kcos[j] {
				k = j
			}
		}
		tm, um1 := chebyshev(m, t)
		sign := 1.0
		if k&1 == 1 {
			sign = -1
		}
		psi := sign*tm - 2*float64(k)
		dpsi := sign * float64(m) * um1
		return (g.lambda*t + psi) / (1 + g.lambda), (g.lambda + dpsi) / (1 + g.lambda)
	case MarginArcClip:
		return g.clip.eval(t)
	}
	return t, 1
}

// chebyshev returns T_m(t) and U_{m−1}(t), so that cos(mθ) = T_m(cos θ) and
// d/dt T_m(t) = m·U_{m−1}(t).
func chebyshev(m int, t float64) (tm, um1 float64) {
	t0, t1 := 1.0, t // T_0, T_1
	u0, u1 := 1.0, 2*t
	if m == 1 {
		return t1, u0
	}
	for k := 2; k <= m; k++ {
		t0, t1 = t1, 2*t*t1-t0
		if k < m {
			u0, u1 = u1, 2*t*u1-u0
		}
	}
	// after the loop u0 = U_{m−2}, u1 = U_{m−1} for m ≥ 2
	return t1, u1
}

// The bodies of the vector levels. The arc body also serves ArcEasy and Cos
// (see marginParams); an unknown kind gets none.
// The numbers come from internal/kconst, which the generators read too.
const (
	marginBodyNone     = kconst.MarginBodyNone // no vector body: the level falls back to the generic twin
	marginBodyArc      = kconst.MarginBodyArc
	marginBodyCombined = kconst.MarginBodyCombined
	marginBodyPsi      = kconst.MarginBodyPsi
)

// marginParams is what the assembly bodies read: every constant of φ and φ′
// computed in float64 and rounded once to float32, so that the bodies never
// touch float64. Thresholds are rounded down (roundDown32), so that the
// float32 comparisons t > th and t ≤ th choose the same branch as the
// generic twin's float64 comparisons for every float32 t.
//
// The arc body computes
//
//	φ  = t·cosM − sinθ·sinM          if t > th, else t − sub
//	φ′ = cosM + t̃·sinM/sin θ̃        if t > th, else 1
//
// (t̃, θ̃ clamped as in eval), which is ArcFace (th = cos(π−m) rounded down,
// sub = m·sin m), ArcEasy (th = 0, sub = 0) and CosFace (th = +Inf,
// sub = m). An unknown kind has no body (marginBodyNone): every level runs
// the generic twin.
//
// The field layout is read by the generated assembly by name; go vet's
// asmdecl checks every offset against this declaration.
type marginParams struct {
	body int32 // marginBody*
	m    int32 // Psi: the integer m, 1..8

	// arc body
	cosM, sinM, th, sub float32

	// Combined: φ = cos(m1·θ + m2) − m3 with m2 reduced to [−π, π]
	m1, m2, m3 float32

	// Psi: φ = a·t + b·ψ, φ′ = a + bm·(−1)^k·U_{m−1}(t), and
	// k = #{j : t ≤ kthr[j]}; kthr[j] = cos((j+1)π/m) rounded down for
	// j < m, −Inf beyond.
	a, b, bm float32
	kthr     [8]float32

	// the clamp of φ′: |t| > clampTh (the largest float32 ≤ 1 − ClampEps)
	// is clamped to ±clampT, where sin θ = clampSin and θ = clampTheta0
	// (t > 0) or clampThetaPi (t < 0).
	clampTh, clampT, clampSin, clampTheta0, clampThetaPi float32
}

// marginMaxM1 bounds |m1| on the vector path: the bodies reduce
// m1·θ + m2 by π/2 with a two-part Cody–Waite constant, which stays within
// one rounding of the reduced argument while the quadrant is below 2¹⁷.
const marginMaxM1 = kconst.MarginMaxM1

// newMarginParams derives the float32 constants of g. It returns a
// marginBodyNone params when g is outside what the bodies handle (Psi with
// m outside 1..8, λ < 0, |m1| > marginMaxM1, or any constant that is not a
// finite float32 that is zero or normal), so that every level then runs the
// generic twin.
func newMarginParams(g *Margin) marginParams {
	inf := float32(math.Inf(1))
	c := 1 - ClampEps
	p := marginParams{
		clampTh:      roundDown32(c),
		clampT:       float32(c),
		clampSin:     float32(math.Sqrt(ClampEps * (2 - ClampEps))),
		clampTheta0:  float32(math.Acos(c)),
		clampThetaPi: float32(math.Acos(-c)),
	}
	var finite []float32
	switch g.kind {
	case MarginArc, MarginArcEasy:
		p.body = marginBodyArc
		p.cosM, p.sinM = float32(g.cosM), float32(g.sinM)
		p.th, p.sub = roundDown32(g.th), float32(g.mm)
		if g.kind == MarginArcEasy {
			p.th, p.sub = 0, 0
		}
		finite = []float32{p.cosM, p.sinM, p.th, p.sub}
	case MarginCos:
		p.body = marginBodyArc
		p.th, p.sub = inf, float32(g.m2)
		finite = []float32{p.sub}
	case MarginCombined:
		p.body = marginBodyCombined
		// cos is 2π-periodic; math.Sin and math.Cos reduce any float64
		// argument accurately, so this is m2 mod 2π to float64 accuracy.
		m2 := math.Atan2(math.Sin(g.m2), math.Cos(g.m2))
		p.m1, p.m2, p.m3 = float32(g.m1), float32(m2), float32(g.m3)
		finite = []float32{p.m1, p.m2, p.m3}
		if !(math.Abs(g.m1) <= marginMaxM1) {
			return marginParams{}
		}
	case MarginPsi:
		if g.intM < 1 || g.intM > 8 || !(g.lambda >= 0) {
			return marginParams{}
		}
		p.body, p.m = marginBodyPsi, int32(g.intM)
		p.a = float32(g.lambda / (1 + g.lambda))
		p.b = float32(1 / (1 + g.lambda))
		p.bm = float32(float64(g.intM) / (1 + g.lambda))
		for j := range p.kthr {
			p.kthr[j] = -inf
			if j < g.intM {
				p.kthr[j] = roundDown32(g.kcos[j+1])
			}
		}
		finite = []float32{p.a, p.b, p.bm}
	default:
		// A kind no body knows (not one of the constants above) fails
		// closed: every level runs the generic twin, never another kind's
		// body.
		return marginParams{}
	}
	for _, v := range finite {
		// finite and zero or normal: a subnormal constant would carry more
		// than errorBound's relative error u
		if a := math.Abs(float64(v)); !(a <= math.MaxFloat32) || (a != 0 && a < 0x1p-126) {
			return marginParams{}
		}
	}
	return p
}

// roundDown32 returns the largest float32 ≤ x. For every float32 t,
// t > x ⇔ t > roundDown32(x) and t ≤ x ⇔ t ≤ roundDown32(x).
func roundDown32(x float64) float32 {
	f := float32(x)
	if float64(f) > x {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

// errorBound returns bounds on |φ − φ_generic| and |φ′ − φ′_generic| that
// every vector level of MarginForward meets at t, where φ_generic is the
// generic twin's float64 value rounded once to float32. Both are 0 where the
// levels run the generic twin itself; NaN t (NaN results at every level
// alike) gives 0.
//
// The bounds are first-order rounding-error analyses of the float32 bodies,
// with u = 2⁻²⁴ the unit roundoff (eps = 2u). Every float32 operation
// contributes at most u times its result, every constant rounded from
// float64 u times itself, and the generic's final rounding u|φ|. A bound is
// therefore eps times the magnitudes of the terms being combined, never of
// the result alone: φ crosses zero where those terms cancel. With S = sin θ,
// C = cos m, M = sin m, t̃ and S̃ the clamped t and sin θ of φ′:
//
//   - Arc branch: sin θ = sqrt(fma(−t, t, 1)) is within 1.5u; φ = fma(t, C,
//     −S·M) gives |Δφ| ≤ eps·(1.5|t·C| + 2.75|S·M|). φ′ = t̃·M/S̃ + C, whose
//     quotient is within 4.5u: |Δφ′| ≤ eps·(3.25|t̃·M/S̃| + 1.5|C|). The
//     1/S̃ in the term is the growth of φ′ near |t| = 1 (up to 1/sqrt(2e-6)).
//   - Arc fallback and Cos: φ = t − c: |Δφ| ≤ eps·(|t| + 1.5|c|); φ′ = 1
//     exactly, as is ArcEasy's φ = t.
//   - Combined: θ = acos t is within 3u·θ (range-reduced asin polynomial),
//     α = fma(m1, θ, m2 mod 2π) within Δα = eps·(2.5|m1·θ| + |m2 mod 2π|),
//     and cos, sin after Cody–Waite reduction within 4u absolute (the
//     polynomial terms are ≤ 1). |Δφ| ≤ |sin α|·Δα + Δα²/2 + eps·(3 +
//     1.5|m3|), and φ′ = m1·sin α/S̃ with S̃ within 1.5u:
//     |Δφ′| ≤ (|m1|/S̃)·(|cos α|·Δα + Δα²/2 + eps·(2 + 2.75|sin α|)).
//   - Psi: the recurrence X_{j+1} = fma(2t, X_j, −X_{j−1}) rounds each
//     X_j once, and an error in X_j reaches T_m multiplied by U_{m−j}(t), so
//     |ΔT_m| ≤ u·Σ_{j=2..m} |T_j·U_{m−j}| =: u·E_T and likewise
//     |ΔU_{m−1}| ≤ u·Σ_{j=2..m−1} |U_j·U_{m−1−j}| =: u·E_U. With
//     a = λ/(1+λ), b = 1/(1+λ): |Δφ| ≤ eps·(b·E_T/2 + 2.5|b·ψ| + 1.5|a·t|)
//     and |Δφ′| ≤ eps·(m·b·E_U/2 + 1.5(|m·b·U_{m−1}| + |a|)).
//
// Each bound is scaled by 1 + 1/64, which covers the second-order terms and
// the float64 reference's own rounding (a few 2⁻⁵³ of the same terms). When
// t is tiny, gradual underflow replaces an operation's relative error u by
// an absolute 2⁻¹⁵⁰; at most about 16 such operations per evaluation,
// amplified by |U_j| ≤ 9 and m·b ≤ 8 at worst (Psi), stay below 2⁻¹³⁹,
// which is added to every bound that is not exact.
func (g *Margin) errorBound(t float32) (phi, dphi float64) {
	if g.vec.body == marginBodyNone || t != t {
		return 0, 0
	}
	const eps = 0x1p-23
	const slack = 1 + 1.0/64
	x := math.Max(-1, math.Min(1, float64(t)))
	xc := math.Max(-1+ClampEps, math.Min(1-ClampEps, x))
	s := math.Sqrt((1 - x) * (1 + x))
	sc := math.Sqrt((1 - xc) * (1 + xc))
	abs := math.Abs
	switch g.vec.body {
	case marginBodyArc:
		if x > float64(g.vec.th) {
			phi = eps * (1.5*abs(x*g.cosM) + 2.75*abs(s*g.sinM))
			dphi = eps * (3.25*abs(xc*g.sinM/sc) + 1.5*abs(g.cosM))
		} else {
			phi = eps * (abs(x) + 1.5*abs(float64(g.vec.sub)))
		}
	case marginBodyCombined:
		m2 := abs(math.Atan2(math.Sin(g.m2), math.Cos(g.m2)))
		alpha := func(x float64) (a, da float64) {
			th := math.Acos(x)
			return g.m1*th + g.m2, eps * (2.5*abs(g.m1*th) + m2)
		}
		a, da := alpha(x)
		phi = abs(math.Sin(a))*da + da*da/2 + eps*(3+1.5*abs(g.m3))
		// the float64 reference's rounding of m1·θ + m2 when |m2| is huge
		phi += 0x1p-51 * abs(g.m2)
		ac, dac := alpha(xc)
		dphi = abs(g.m1) / sc * (abs(math.Cos(ac))*dac + dac*dac/2 + eps*(2+2.75*abs(math.Sin(ac))) + 0x1p-51*abs(g.m2))
	case marginBodyPsi:
		m := g.intM
		var tj, uj [10]float64 // T_j, U_j for j = 0..m
		tj[0], tj[1], uj[0], uj[1] = 1, x, 1, 2*x
		for j := 2; j <= m; j++ {
			tj[j] = 2*x*tj[j-1] - tj[j-2]
			uj[j] = 2*x*uj[j-1] - uj[j-2]
		}
		var et, eu float64
		for j := 2; j <= m; j++ {
			et += abs(tj[j] * uj[m-j])
		}
		for j := 2; j <= m-1; j++ {
			eu += abs(uj[j] * uj[m-1-j])
		}
		k := 0
		for j := 1; j <= m; j++ {
			if x <= g.kcos[j] {
				k = j
			}
		}
		psi := tj[m] - 2*float64(k)
		if k&1 == 1 {
			psi = -tj[m] - 2*float64(k)
		}
		a := g.lambda / (1 + g.lambda)
		b := 1 / (1 + g.lambda)
		mb := float64(m) * b
		phi = eps * (b*et/2 + 2.5*abs(b*psi) + 1.5*abs(a*x))
		dphi = eps * (mb*eu/2 + 1.5*(abs(mb*uj[m-1])+abs(a)))
	}
	const underflow = 0x1p-139
	if phi != 0 {
		phi = phi*slack + underflow
	}
	if dphi != 0 {
		dphi = dphi*slack + underflow
	}
	return phi, dphi
}
