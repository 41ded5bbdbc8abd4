package asm

import (
	"math"

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
)

// Margin holds the parameters of φ. Build it with NewMargin so that the
// derived constants are consistent.
type Margin struct {
	Kind       MarginKind
	M1, M2, M3 float64 // Arc*, Cos: M2 = m. Combined: m1, m2, m3.
	IntM       int     // Psi: the integer m, 1..8
	Lambda     float64 // Psi: λ ≥ 0
	// derived
	cosM, sinM, th, mm float64
	kcos               [9]float64 // Psi: cos(kπ/m) for k = 0..m
}

// NewMargin returns the parameters of φ with its derived constants filled.
func NewMargin(kind MarginKind, m1, m2, m3 float64, intM int, lambda float64) Margin {
	g := Margin{Kind: kind, M1: m1, M2: m2, M3: m3, IntM: intM, Lambda: lambda}
	g.cosM, g.sinM = math.Cos(m2), math.Sin(m2)
	g.th = math.Cos(math.Pi - m2)
	g.mm = math.Sin(math.Pi-m2) * m2
	if kind == MarginPsi && intM >= 1 && intM <= 8 {
		for k := 0; k <= intM; k++ {
			g.kcos[k] = math.Cos(float64(k) * math.Pi / float64(intM))
		}
	}
	return g
}

// SinEps bounds sin θ away from 0 in φ′ for the acos-based margins: t is
// clamped to [−1+ClampEps, 1−ClampEps] inside the derivative only, so φ′ is
// exact for |t| < 1 − ClampEps and finite everywhere.
const ClampEps = 1e-6

var marginImpl = simd.NewTable("MarginForward", marginForwardGeneric)

// MarginForward writes phi[i] = φ(t[i]) and, when dphi is non-nil,
// dphi[i] = dφ/dt at t[i]. t values outside [−1, 1] (rounding overshoot) are
// clamped to it. It panics when phi or a non-nil dphi is shorter than t.
func MarginForward(phi, dphi, t []float32, g *Margin) {
	if len(phi) < len(t) || (dphi != nil && len(dphi) < len(t)) {
		panic("asm: MarginForward: output shorter than t")
	}
	marginImpl.Get()(phi, dphi, t, g)
}

// marginForwardGeneric evaluates φ and φ′ in float64 per element and rounds
// once to float32.
func marginForwardGeneric(phi, dphi, t []float32, g *Margin) {
	for i, tv := range t {
		p, d := g.Eval(float64(tv))
		phi[i] = float32(p)
		if dphi != nil {
			dphi[i] = float32(d)
		}
	}
}

// Eval returns φ(t) and φ′(t) in float64.
func (g *Margin) Eval(t float64) (phi, dphi float64) {
	if t > 1 {
		t = 1
	} else if t < -1 {
		t = -1
	}
	// sin θ from the clamped t, for the derivative; exact sin θ for φ.
	sinTheta := func(t float64) float64 { return math.Sqrt((1 - t) * (1 + t)) }
	clamped := math.Max(-1+ClampEps, math.Min(1-ClampEps, t))
	switch g.Kind {
	case MarginArc, MarginArcEasy:
		limit := g.th
		if g.Kind == MarginArcEasy {
			limit = 0
		}
		if t > limit {
			phi = t*g.cosM - sinTheta(t)*g.sinM
			dphi = g.cosM + clamped*g.sinM/sinTheta(clamped)
			return
		}
		if g.Kind == MarginArcEasy {
			return t, 1
		}
		return t - g.mm, 1
	case MarginCos:
		return t - g.M2, 1
	case MarginCombined:
		a := g.M1*math.Acos(t) + g.M2
		phi = math.Cos(a) - g.M3
		ac := g.M1*math.Acos(clamped) + g.M2
		dphi = math.Sin(ac) * g.M1 / sinTheta(clamped)
		return
	case MarginPsi:
		m := g.IntM
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
		return (g.Lambda*t + psi) / (1 + g.Lambda), (g.Lambda + dpsi) / (1 + g.Lambda)
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
