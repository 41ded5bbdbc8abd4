package asm

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// directPhi is φ written from θ = acos t, as the papers state it.
func directPhi(g *Margin, t float64) float64 {
	th := math.Acos(t)
	switch g.Kind {
	case MarginArc:
		if t > math.Cos(math.Pi-g.M2) {
			return math.Cos(th + g.M2)
		}
		return t - g.M2*math.Sin(g.M2)
	case MarginArcEasy:
		if t > 0 {
			return math.Cos(th + g.M2)
		}
		return t
	case MarginCos:
		return t - g.M2
	case MarginCombined:
		return math.Cos(g.M1*th+g.M2) - g.M3
	case MarginPsi:
		m := float64(g.IntM)
		k := math.Floor(m * th / math.Pi)
		psi := math.Pow(-1, k)*math.Cos(m*th) - 2*k
		return (g.Lambda*t + psi) / (1 + g.Lambda)
	}
	panic("kind")
}

// nearBranch reports whether t is within r of a point where φ changes
// branch.
func nearBranch(g *Margin, t, r float64) bool {
	var pts []float64
	switch g.Kind {
	case MarginArc:
		pts = []float64{math.Cos(math.Pi - g.M2)}
	case MarginArcEasy:
		pts = []float64{0}
	case MarginPsi:
		for k := 1; k < g.IntM; k++ {
			pts = append(pts, math.Cos(float64(k)*math.Pi/float64(g.IntM)))
		}
	}
	for _, p := range pts {
		if math.Abs(t-p) < r {
			return true
		}
	}
	return false
}

func allMargins() []Margin {
	ms := []Margin{
		NewMargin(MarginArc, 1, 0.5, 0, 0, 0),
		NewMargin(MarginArc, 1, 1.5, 0, 0, 0),
		NewMargin(MarginArcEasy, 1, 0.3, 0, 0, 0),
		NewMargin(MarginCos, 1, 0.35, 0, 0, 0),
		NewMargin(MarginCombined, 0.9, 0.4, 0.15, 0, 0),
		NewMargin(MarginCombined, 1.2, 0, 0.1, 0, 0),
	}
	for m := 1; m <= 8; m++ {
		for _, lam := range []float64{0, 0.5, 5} {
			ms = append(ms, NewMargin(MarginPsi, 0, 0, 0, m, lam))
		}
	}
	return ms
}

// TestMarginEval checks φ against the acos form and φ′ against central
// differences of the acos form, in float64, away from branch points.
func TestMarginEval(t *testing.T) {
	for _, g := range allMargins() {
		for i := 1; i < 2000; i++ {
			tv := -1 + 2*float64(i)/2000
			phi, dphi := g.Eval(tv)
			require.InDelta(t, directPhi(&g, tv), phi, 1e-12, "%+v t=%v", g, tv)
			h := 1e-6
			fd := (directPhi(&g, tv+h) - directPhi(&g, tv-h)) / (2 * h)
			// skip points within 2h of a branch switch (φ′ or φ″ jumps there)
			if nearBranch(&g, tv, 2*h) {
				continue
			}
			require.InDelta(t, fd, dphi, 1e-5*math.Max(1, math.Abs(fd)), "%+v t=%v", g, tv)
		}
	}
}

// TestMarginFiniteAtPoles: t = ±1 and beyond (rounding overshoot) give
// finite φ and φ′.
func TestMarginFiniteAtPoles(t *testing.T) {
	for _, g := range allMargins() {
		for _, tv := range []float32{-1.0000001, -1, -0.9999999, 0.9999999, 1, 1.0000001} {
			phi, dphi := make([]float32, 1), make([]float32, 1)
			MarginForward(phi, dphi, []float32{tv}, &g)
			require.False(t, math.IsNaN(float64(phi[0])) || math.IsInf(float64(phi[0]), 0), "%+v t=%v", g, tv)
			require.False(t, math.IsNaN(float64(dphi[0])) || math.IsInf(float64(dphi[0]), 0), "%+v t=%v", g, tv)
		}
	}
}

func TestChebyshev(t *testing.T) {
	for m := 1; m <= 8; m++ {
		for th := 0.0; th <= math.Pi; th += 0.01 {
			tm, um1 := chebyshev(m, math.Cos(th))
			require.InDelta(t, math.Cos(float64(m)*th), tm, 1e-12)
			if s := math.Sin(th); s > 1e-3 {
				require.InDelta(t, math.Sin(float64(m)*th)/s, um1, 1e-9)
			}
		}
	}
}

// TestMarginLevels compares every level of MarginForward with generic.
// φ and φ′ are within 4 ULP of the generic values (both are within 2 ULP of
// the exact ones).
func TestMarginLevels(t *testing.T) {
	ts := make([]float32, 0, 4001)
	for i := 0; i <= 4000; i++ {
		ts = append(ts, float32(-1+2*float64(i)/4000))
	}
	for _, g := range allMargins() {
		wantP, wantD := make([]float32, len(ts)), make([]float32, len(ts))
		marginForwardGeneric(wantP, wantD, ts, &g)
		for _, l := range marginImpl.Levels() {
			f, _ := marginImpl.At(l)
			p, d := make([]float32, len(ts)), make([]float32, len(ts))
			f(p, d, ts, &g)
			for i := range ts {
				require.LessOrEqual(t, ulpDiff(abs32(p[i]), abs32(wantP[i])), int64(4), "%v %+v t=%v", l, g, ts[i])
				require.LessOrEqual(t, ulpDiff(abs32(d[i]), abs32(wantD[i])), int64(4), "%v %+v t=%v", l, g, ts[i])
			}
		}
	}
}

func abs32(v float32) float32 { return float32(math.Abs(float64(v))) }
