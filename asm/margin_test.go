package asm

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/internal/simd"
)

// directPhi is φ written from θ = acos t, as the papers state it.
func directPhi(g *Margin, t float64) float64 {
	th := math.Acos(t)
	switch g.kind {
	case MarginArc:
		if t > math.Cos(math.Pi-g.m2) {
			return math.Cos(th + g.m2)
		}
		return t - g.m2*math.Sin(g.m2)
	case MarginArcEasy:
		if t > 0 {
			return math.Cos(th + g.m2)
		}
		return t
	case MarginCos:
		return t - g.m2
	case MarginCombined:
		return math.Cos(g.m1*th+g.m2) - g.m3
	case MarginPsi:
		m := float64(g.intM)
		k := math.Floor(m * th / math.Pi)
		psi := math.Pow(-1, k)*math.Cos(m*th) - 2*k
		return (g.lambda*t + psi) / (1 + g.lambda)
	}
	panic("kind")
}

// nearBranch reports whether t is within r of a point where φ changes
// branch.
func nearBranch(g *Margin, t, r float64) bool {
	var pts []float64
	switch g.kind {
	case MarginArc:
		pts = []float64{math.Cos(math.Pi - g.m2)}
	case MarginArcEasy:
		pts = []float64{0}
	case MarginPsi:
		for k := 1; k < g.intM; k++ {
			pts = append(pts, math.Cos(float64(k)*math.Pi/float64(g.intM)))
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
			phi, dphi := g.eval(tv)
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

// levelMargins covers every kind and every vector body: Arc with small and
// large m (large m puts much of [−1, 1] on the fallback branch), ArcEasy,
// Cos, Combined (m1 up to 8 as loss allows, and far beyond to exercise the
// reduction; m2 = 0, negative and beyond 2π), Psi for every
// m with several λ, and an unknown kind (eval's identity, on the generic
// twin at every level).
func levelMargins() []Margin {
	var ms []Margin
	for _, m := range []float64{0.05, 0.5, 1, 1.5, 2, 3} {
		ms = append(ms, NewMargin(MarginArc, 1, m, 0, 0, 0))
	}
	for _, m := range []float64{0.3, 0.5, 1.2} {
		ms = append(ms, NewMargin(MarginArcEasy, 1, m, 0, 0, 0))
	}
	for _, m := range []float64{0, 0.35} {
		ms = append(ms, NewMargin(MarginCos, 1, m, 0, 0, 0))
	}
	for _, c := range [][3]float64{{1, 0.3, 0.2}, {0.9, 0.4, 0.15}, {1.2, 0, 0.1}, {2, 0.5, 0},
		{8, 0, 0}, {0.5, -2.5, 0.3}, {1, 10, 0}, {3.7, 1.1, -0.4},
		{64, 0.2, 0}, {60000, 0, 0}} { // large m1: quadrants up to 2¹⁷
		ms = append(ms, NewMargin(MarginCombined, c[0], c[1], c[2], 0, 0))
	}
	for m := 1; m <= 8; m++ {
		for _, lam := range []float64{0, 0.5, 5, 1000} {
			ms = append(ms, NewMargin(MarginPsi, 0, 0, 0, m, lam))
		}
	}
	return append(ms, NewMargin(MarginKind(99), 1, 0.5, 0, 0, 0))
}

// marginInputs is a dense grid over [−1, 1] (every multiple of 2⁻¹², so
// ±1, 0 and ±1/2, acos's switch, included), random points, every float32
// within 64 ulps of ±1 (the clamp of φ′ is 17 ulps in), each branch point of
// g and the clamp bound with their float32 neighbours, and values outside
// [−1, 1] (±Inf and NaN included).
func marginInputs(g *Margin) []float32 {
	var ts []float32
	for i := -4096; i <= 4096; i++ {
		ts = append(ts, float32(i)/4096)
	}
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 2000; i++ {
		ts = append(ts, float32(2*r.Float64()-1))
	}
	for k := 0; k <= 64; k++ {
		ts = append(ts, 1-float32(k)*0x1p-24, -1+float32(k)*0x1p-24)
	}
	pts := []float64{0, 1 - ClampEps, -1 + ClampEps, g.th, math.Cos(g.m2)}
	pts = append(pts, g.kcos[:]...)
	for _, p := range pts {
		up, down := float32(p), float32(p)
		for k := 0; k < 4; k++ {
			ts = append(ts, up, down)
			up, down = math.Nextafter32(up, 2), math.Nextafter32(down, -2)
		}
	}
	inf := float32(math.Inf(1))
	return append(ts, 1.0000001, -1.0000001, 1.5, -1.5, inf, -inf, float32(math.NaN()))
}

// marginWithin checks got against the generic's want with the bound of
// errorBound: NaN exactly where the generic has NaN, equal infinities, and
// |got − want| ≤ bound otherwise (a zero bound means bit-exact). It returns
// the error as a fraction of the bound and in units of eps·max(1, |want|).
func marginWithin(t testing.TB, got, want float32, bound float64, msg func() string) (ratio, epsErr float64) {
	t.Helper()
	gn, wn := got != got, want != want
	if gn || wn {
		if gn != wn {
			t.Fatalf("%s: got %v, generic %v", msg(), got, want)
		}
		return 0, 0
	}
	if got == want {
		return 0, 0
	}
	e := math.Abs(float64(got) - float64(want))
	if !(e <= bound) {
		t.Fatalf("%s: got %v, generic %v: error %.3g = %.3g eps exceeds the bound %.3g", msg(), got, want, e, e/eps32, bound)
	}
	return e / bound, e / (eps32 * math.Max(1, math.Abs(float64(want))))
}

// TestMarginLevels compares every level of MarginForward with the float64
// generic twin, element by element, within errorBound (see its comment for
// the derivation: eps times the magnitudes of the terms that are combined,
// with 1/sin θ growth of φ′ near |t| = 1 where acos is involved). It logs
// the worst error per margin and level, as a fraction of the bound and in
// eps·max(1, |generic|).
func TestMarginLevels(t *testing.T) {
	type worst struct{ phiR, dphiR, phiE, dphiE float64 }
	summary := map[string]*worst{}
	for _, g := range levelMargins() {
		ts := marginInputs(&g)
		wantP, wantD := make([]float32, len(ts)), make([]float32, len(ts))
		marginForwardGeneric(wantP, wantD, ts, &g)
		for _, l := range marginImpl.Levels() {
			if l == simd.Generic {
				continue
			}
			f, _ := marginImpl.At(l)
			p, d := make([]float32, len(ts)), make([]float32, len(ts))
			f(p, d, ts, &g)
			var w worst
			for i, tv := range ts {
				bp, bd := g.errorBound(tv)
				msg := func(what string) func() string {
					return func() string {
						return fmt.Sprintf("%v %s t=%v (%#x) %s", l, g.String(), tv, math.Float32bits(tv), what)
					}
				}
				r, e := marginWithin(t, p[i], wantP[i], bp, msg("φ"))
				w.phiR, w.phiE = math.Max(w.phiR, r), math.Max(w.phiE, e)
				r, e = marginWithin(t, d[i], wantD[i], bd, msg("φ′"))
				w.dphiR, w.dphiE = math.Max(w.dphiR, r), math.Max(w.dphiE, e)
			}
			// dphi nil: φ unchanged, nothing else written
			pn := make([]float32, len(ts))
			f(pn, nil, ts, &g)
			for i := range ts {
				require.Equal(t, math.Float32bits(p[i]), math.Float32bits(pn[i]), "%v %s dphi=nil t=%v", l, g.String(), ts[i])
			}
			key := fmt.Sprintf("%-24s %v", g.String(), l)
			summary[key] = &w
		}
	}
	keys := make([]string, 0, len(summary))
	for k := range summary {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		w := summary[k]
		t.Logf("%s  φ: %.2f of bound (%.3g eps)  φ′: %.2f of bound (%.3g eps)", k, w.phiR, w.phiE, w.dphiR, w.dphiE)
	}
}

// TestMarginShapes runs every vector level on lengths 0..2·16·4+1 (and
// 1000, 4097) from start offsets 0..15, flush against a PROT_NONE guard
// page before or after the slices, with dphi on every other shape (nil on
// the rest). Lanes are independent, so each shape must reproduce, bit for
// bit, the same level's output on the whole input; nothing outside the
// outputs may be written (the rig's sentinel check) and nothing outside
// the slices read (the guard pages fault).
func TestMarginShapes(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	src := make([]float32, shapeMaxLen+shapeOffsets)
	for i := range src {
		src[i] = float32(2.2*r.Float64() - 1.1) // a few outside [−1, 1]
	}
	rig := newShapeRig(t, [][]float32{src}, 2)
	for _, g := range []Margin{
		NewMargin(MarginArc, 1, 0.5, 0, 0, 0),
		NewMargin(MarginArcEasy, 1, 0.5, 0, 0, 0),
		NewMargin(MarginCos, 1, 0.35, 0, 0, 0),
		NewMargin(MarginCombined, 0.9, 0.4, 0.15, 0, 0),
		NewMargin(MarginPsi, 0, 0, 0, 5, 0.5),
	} {
		for _, l := range marginImpl.Levels() {
			if l == simd.Generic {
				continue
			}
			f, _ := marginImpl.At(l)
			refP, refD := make([]float32, len(src)), make([]float32, len(src))
			f(refP, refD, src, &g)
			rig.run(t, func(s shape, in, out [][]float32) {
				phi, dphi := out[0], out[1]
				withD := s.pick(2) == 0
				var d []float32
				if withD {
					d = dphi
				}
				f(phi, d, in[0], &g)
				for k := range phi {
					wd := uint32(sentinelBits)
					if withD {
						wd = math.Float32bits(refD[s.off+k])
					}
					if math.Float32bits(phi[k]) != math.Float32bits(refP[s.off+k]) || math.Float32bits(dphi[k]) != wd {
						t.Fatalf("%v %s %v dphi=%v: element %d is (%#x, %#x), want (%#x, %#x)", l, g.String(), s, withD, k,
							math.Float32bits(phi[k]), math.Float32bits(dphi[k]), math.Float32bits(refP[s.off+k]), wd)
					}
				}
			})
		}
	}
}

// TestMarginGenericFallback: margins outside what the vector bodies handle
// (and a Margin not built by NewMargin) run the generic twin at every level.
func TestMarginGenericFallback(t *testing.T) {
	for _, g := range []Margin{
		NewMargin(MarginPsi, 0, 0, 0, 0, 0), // (m > 8 is out of eval's contract too)
		NewMargin(MarginPsi, 0, 0, 0, 3, -0.5),
		NewMargin(MarginCombined, 1e6, 0, 0, 0, 0),
		NewMargin(MarginCombined, 1, math.Inf(1), 0, 0, 0),
		NewMargin(MarginCos, 1, 1e39, 0, 0, 0),
		NewMargin(MarginArc, 1, math.NaN(), 0, 0, 0),
		{kind: MarginCos, m2: 0.35},
		// an unknown kind fails closed: no body (not the arc body)
		NewMargin(MarginKind(99), 1, 0.5, 0, 0, 0),
		NewMargin(MarginKind(-1), 1, 0.5, 0, 0, 0),
	} {
		require.Equal(t, int32(marginBodyNone), g.vec.body, "%+v", g)
		ts := marginInputs(&g)
		wantP, wantD := make([]float32, len(ts)), make([]float32, len(ts))
		marginForwardGeneric(wantP, wantD, ts, &g)
		for _, l := range marginImpl.Levels() {
			f, _ := marginImpl.At(l)
			p, d := make([]float32, len(ts)), make([]float32, len(ts))
			f(p, d, ts, &g)
			for i := range ts {
				require.Equal(t, math.Float32bits(wantP[i]), math.Float32bits(p[i]), "%v %+v t=%v", l, g, ts[i])
				require.Equal(t, math.Float32bits(wantD[i]), math.Float32bits(d[i]), "%v %+v t=%v", l, g, ts[i])
			}
		}
	}
}

// TestRoundDown32: the float32 thresholds choose the same branch as the
// float64 ones for every float32 t.
func TestRoundDown32(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for i := 0; i < 10000; i++ {
		x := 2*r.Float64() - 1
		f := roundDown32(x)
		require.LessOrEqual(t, float64(f), x)
		require.Greater(t, float64(math.Nextafter32(f, 2)), x)
		for _, tv := range []float32{f, math.Nextafter32(f, 2), math.Nextafter32(f, -2)} {
			require.Equal(t, float64(tv) > x, tv > f)
			require.Equal(t, float64(tv) <= x, tv <= f)
		}
	}
	require.Equal(t, float32(0.5), roundDown32(0.5))
}

// TestMarginAssembly checks the generated margin_amd64.s: the AVX2 body
// uses only X0–X15/Y0–Y15 (avo hands out X16+/Y16+ under register pressure,
// which needs AVX-512) and no K or Z registers, no legacy SSE instruction
// appears, and every RET follows a VZEROUPPER.
func TestMarginAssembly(t *testing.T) {
	src, err := os.ReadFile("margin_amd64.s")
	if err != nil {
		t.Skip("no margin_amd64.s:", err)
	}
	text := string(src)
	start := strings.Index(text, "TEXT ·marginForwardAVX2(SB)")
	end := strings.Index(text, "TEXT ·marginForwardAVX512(SB)")
	require.True(t, start >= 0 && end > start, "bodies not found")
	avx2 := text[start:end]
	bad := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[0-7])\b`)
	require.Empty(t, bad.FindAllString(avx2, -1), "AVX2 body uses AVX-512 registers")
	vecReg := regexp.MustCompile(`\b[XYZ][0-9]+\b`)
	prev := ""
	for _, line := range strings.Split(text[start:], "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasSuffix(f[0], ":") || f[0] == "TEXT" || strings.HasPrefix(f[0], "//") {
			continue
		}
		if !strings.HasPrefix(f[0], "V") && !strings.HasPrefix(f[0], "K") && vecReg.MatchString(line) {
			t.Errorf("legacy SSE instruction: %s", strings.TrimSpace(line))
		}
		if f[0] == "RET" && prev != "VZEROUPPER" {
			t.Errorf("RET without VZEROUPPER")
		}
		prev = f[0]
	}
}

// TestMarginNaNRule checks MarginForward's documented result for a NaN t
// at every level: φ is NaN, and φ′ is 1 for Arc, ArcEasy, Cos and Psi with
// m = 1, NaN for Combined and Psi with m ≥ 2.
func TestMarginNaNRule(t *testing.T) {
	nan := float32(math.NaN())
	cases := []struct {
		g       Margin
		dphiOne bool
	}{
		{NewMargin(MarginArc, 1, 0.5, 0, 0, 0), true},
		{NewMargin(MarginArcEasy, 1, 0.5, 0, 0, 0), true},
		{NewMargin(MarginCos, 1, 0.35, 0, 0, 0), true},
		{NewMargin(MarginPsi, 0, 0, 0, 1, 0), true},
		{NewMargin(MarginPsi, 0, 0, 0, 1, 2.5), true},
		{NewMargin(MarginCombined, 1, 0.3, 0.2, 0, 0), false},
		{NewMargin(MarginCombined, 2, 0.3, 0.2, 0, 0), false},
		{NewMargin(MarginPsi, 0, 0, 0, 2, 0), false},
		{NewMargin(MarginPsi, 0, 0, 0, 4, 1), false},
	}
	for _, l := range simd.Usable() {
		restore, err := simd.Force(l)
		require.NoError(t, err)
		for _, c := range cases {
			for _, n := range []int{1, 7, 8, 16, 37} { // scalar tails and full vectors
				ts := make([]float32, n)
				for i := range ts {
					ts[i] = nan
				}
				phi, dphi := make([]float32, n), make([]float32, n)
				MarginForward(phi, dphi, ts, &c.g)
				for i := range ts {
					require.True(t, math.IsNaN(float64(phi[i])), "%v %v n=%d: φ[%d] = %v", l, c.g.String(), n, i, phi[i])
					if c.dphiOne {
						require.Equal(t, float32(1), dphi[i], "%v %v n=%d: φ′[%d]", l, c.g.String(), n, i)
					} else {
						require.True(t, math.IsNaN(float64(dphi[i])), "%v %v n=%d: φ′[%d] = %v", l, c.g.String(), n, i, dphi[i])
					}
				}
			}
		}
		restore()
	}
}
