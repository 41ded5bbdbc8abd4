package asm

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// rowForm is one per-row form of MarginForward with a vector body, and how
// its rows' parameters are drawn.
type rowForm struct {
	kind MarginKind
	m1   float64
	draw func(r *rand.Rand, t float32, i int) (m2, m3 float32)
}

// rowForms are the per-row forms with a row body: the arc family with a
// margin per row (ElasticCosFace, MagFace), cos(θ + m2) − m3 (ElasticArcFace,
// CurricularFace's threshold) and AdaFace's clipped form.
func rowForms() []rowForm {
	arc := func(r *rand.Rand, t float32, i int) (float32, float32) {
		m := float32(1.5 * r.Float64())
		if i%5 == 0 {
			m = float32(0.5 + 0.05*r.NormFloat64())
		}
		if i%7 == 3 && t < 0 && t > -1 {
			m = float32(math.Pi - math.Acos(-float64(t))) // t on cos(π − m)
		}
		return m, 0
	}
	comb := func(r *rand.Rand, t float32, i int) (float32, float32) {
		return float32(0.5 + 0.4*r.NormFloat64()), float32(0.3 * r.NormFloat64())
	}
	ada := func(r *rand.Rand, t float32, i int) (float32, float32) {
		sh := math.Max(-1, math.Min(1, 1.5*r.NormFloat64()))
		m := 0.4
		if i%4 == 0 {
			m = 1.5 * r.Float64() // up to |m2| < π/2
		}
		if i%9 == 2 && t > -0.99 && t < 0.99 {
			// t on a θ clip: acos t + m2 = ε or π − ε
			m2 := AdaEps - math.Acos(float64(t))
			if t < 0 {
				m2 = math.Pi - AdaEps - math.Acos(float64(t))
			}
			if math.Abs(m2) < 1.5 {
				return float32(m2), float32(m + m*sh)
			}
		}
		return float32(-m * sh), float32(m + m*sh)
	}
	return []rowForm{
		{MarginArc, 1, arc}, {MarginArcEasy, 1, arc}, {MarginCos, 1, arc},
		{MarginCombined, 1, comb}, {MarginArcClip, AdaEps, ada},
	}
}

// AdaEps is AdaFace's ε, which the clipped form's tests use.
const AdaEps = 1e-3

// rowsInputs is, for a per-row form, a batch of target cosines with their
// rows' parameters: marginInputs of a middle margin (the dense grid, ±1 and
// their neighbours, NaN, values outside [−1, 1]) plus, for ArcClip, the
// cosine clamp ±(1 − ε) with its neighbours, each with a row drawn by the
// form (some on their branch points).
func rowsInputs(r *rand.Rand, f rowForm) (ts, m2, m3 []float32) {
	g := NewMargin(f.kind, f.m1, 0.5, 0, 0, 0)
	ts = marginInputs(&g)
	if f.kind == MarginArcClip {
		for _, p := range []float32{float32(1 - AdaEps), float32(-1 + AdaEps)} {
			up, down := p, p
			for k := 0; k < 4; k++ {
				ts = append(ts, up, down)
				up, down = math.Nextafter32(up, 2), math.Nextafter32(down, -2)
			}
		}
	}
	m2, m3 = make([]float32, len(ts)), make([]float32, len(ts))
	for i, tv := range ts {
		m2[i], m3[i] = f.draw(r, tv, i)
	}
	return ts, m2, m3
}

// TestMarginRowsLevels: every vector level of MarginForward's per-row form
// within each row's error bound of the generic twin, which is itself
// MarginForward of that row's margin bit for bit.
func TestMarginRowsLevels(t *testing.T) {
	r := rand.New(rand.NewSource(51))
	for _, f := range rowForms() {
		ts, m2, m3 := rowsInputs(r, f)
		var rows Margin
		rows.SetRows(f.kind, f.m1, m2, m3)
		require.True(t, rows.rows.vec, "%v", f.kind)
		require.Equal(t, len(ts), rows.Rows())
		wantP, wantD := make([]float32, len(ts)), make([]float32, len(ts))
		marginForwardRowsGeneric(wantP, wantD, ts, &rows)
		for i, tv := range ts {
			g := NewMargin(f.kind, f.m1, float64(m2[i]), float64(m3[i]), 0, 0)
			p, d := make([]float32, 1), make([]float32, 1)
			marginForwardGeneric(p, d, ts[i:i+1], &g)
			require.Equal(t, math.Float32bits(p[0]), math.Float32bits(wantP[i]), "%v m=%v t=%v", f.kind, m2[i], tv)
			require.Equal(t, math.Float32bits(d[0]), math.Float32bits(wantD[i]), "%v m=%v t=%v", f.kind, m2[i], tv)
		}
		for _, l := range marginRowsImpl.Levels() {
			body, _ := marginRowsImpl.At(l)
			p, d := make([]float32, len(ts)), make([]float32, len(ts))
			body(p, d, ts, &rows)
			for i, tv := range ts {
				bp, bd := rows.rowErrorBound(i, tv)
				msg := func(what string) func() string {
					return func() string {
						return fmt.Sprintf("%v %v m2=%v m3=%v t=%v (%#x) %s", l, f.kind, m2[i], m3[i], tv, math.Float32bits(tv), what)
					}
				}
				marginWithin(t, p[i], wantP[i], bp, msg("φ"))
				marginWithin(t, d[i], wantD[i], bd, msg("φ′"))
			}
			pn := make([]float32, len(ts))
			body(pn, nil, ts, &rows)
			for i := range ts {
				require.Equal(t, math.Float32bits(p[i]), math.Float32bits(pn[i]), "%v dphi=nil t=%v", l, ts[i])
			}
		}
	}
}

// TestMarginRowsArcBitwise: the row body on the arc family's rows is the
// scalar arc body bit for bit, at every level: a per-row margin whose rows
// are all m is MarginForward of m.
func TestMarginRowsArcBitwise(t *testing.T) {
	for _, kind := range []MarginKind{MarginArc, MarginArcEasy, MarginCos} {
		g := NewMargin(kind, 1, float64(float32(0.45)), 0, 0, 0)
		ts := marginInputs(&g)
		ms := make([]float32, len(ts))
		for i := range ms {
			ms[i] = 0.45
		}
		var rows Margin
		rows.SetRows(kind, 1, ms, nil)
		for _, l := range marginRowsImpl.Levels() {
			rb, _ := marginRowsImpl.At(l)
			sb, _ := marginImpl.At(l)
			p, d := make([]float32, len(ts)), make([]float32, len(ts))
			sp, sd := make([]float32, len(ts)), make([]float32, len(ts))
			rb(p, d, ts, &rows)
			sb(sp, sd, ts, &g)
			for i := range ts {
				require.Equal(t, math.Float32bits(sp[i]), math.Float32bits(p[i]), "%v %v t=%v φ", l, kind, ts[i])
				require.Equal(t, math.Float32bits(sd[i]), math.Float32bits(d[i]), "%v %v t=%v φ′", l, kind, ts[i])
			}
		}
	}
}

// TestArcClipRegions: the twin's regions of t are AdaFace's formula (both
// clamps, the gradient zero where either acts, bounds inside): float64
// agreement away from the region boundaries, over the domain and outside it
// (where eval takes the formula itself).
func TestArcClipRegions(t *testing.T) {
	r := rand.New(rand.NewSource(53))
	for k := 0; k < 400; k++ {
		eps := []float64{AdaEps, ClampEps, 0.25, 0.05}[k%4]
		m2 := (2*r.Float64() - 1) * 1.57
		m3 := r.NormFloat64()
		if k%10 == 9 {
			m2 = 4 * r.NormFloat64() // outside the domain
		}
		g := NewMargin(MarginArcClip, eps, m2, m3, 0, 0)
		require.Equal(t, math.Abs(m2) < math.Pi/2, g.clip.ok, "m2=%v", m2)
		for j := 0; j < 200; j++ {
			x := 2*r.Float64() - 1
			if j < 4 {
				x = []float64{-1, 1, -1 + eps, 1 - eps}[j]
			}
			if math.Abs(x-g.clip.lo) < 1e-9 || math.Abs(x-g.clip.hi) < 1e-9 {
				continue
			}
			p, d := g.eval(x)
			wp, wd := g.clip.direct(x)
			require.InDelta(t, wp, p, 1e-12, "ε=%v m2=%v t=%v φ", eps, m2, x)
			require.InDelta(t, wd, d, 1e-9*math.Max(1, math.Abs(wd)), "ε=%v m2=%v t=%v φ′", eps, m2, x)
		}
		p, d := g.eval(math.NaN())
		require.True(t, math.IsNaN(p), "NaN t")
		require.Zero(t, d, "NaN t")
	}
	// AdaFace at ŝ = 1, m = 0.4: θ′ = clip(θ − 0.4, ε, π − ε), φ = cos θ′ − 0.8.
	g := NewMargin(MarginArcClip, AdaEps, -0.4, 0.8, 0, 0)
	p, d := g.eval(0.95) // θ = 0.3176 < 0.4 + ε: clipped to ε
	require.InDelta(t, math.Cos(AdaEps)-0.8, p, 1e-15)
	require.Zero(t, d)
	p, d = g.eval(0.5) // θ = π/3: cos(π/3 − 0.4) − 0.8, φ′ = sin(π/3 − 0.4)/sin(π/3)
	require.InDelta(t, math.Cos(math.Pi/3-0.4)-0.8, p, 1e-15)
	require.InDelta(t, math.Sin(math.Pi/3-0.4)/math.Sin(math.Pi/3), d, 1e-15)
	p, d = g.eval(0.9995) // the cosine clamp: c = 1 − ε, θ′ clipped to ε
	require.InDelta(t, math.Cos(AdaEps)-0.8, p, 1e-15)
	require.Zero(t, d)
}

// TestMarginRowsShapes: every level on every shape (lengths, offsets, guard
// pages on t, phi and dphi) reproduces its own whole-input output bit for
// bit, and writes nothing outside phi and dphi.
func TestMarginRowsShapes(t *testing.T) {
	r := rand.New(rand.NewSource(52))
	src := make([]float32, shapeMaxLen+shapeOffsets)
	for i := range src {
		src[i] = float32(r.Float64()*2.2 - 1.1)
	}
	for _, f := range rowForms() {
		m2, m3 := make([]float32, len(src)), make([]float32, len(src))
		for i, tv := range src {
			m2[i], m3[i] = f.draw(r, tv, i)
		}
		rig := newShapeRig(t, [][]float32{src}, 2)
		for _, l := range marginRowsImpl.Levels() {
			body, _ := marginRowsImpl.At(l)
			var whole Margin
			whole.SetRows(f.kind, f.m1, m2, m3)
			require.True(t, whole.rows.vec, "%v", f.kind)
			wp, wd := make([]float32, len(src)), make([]float32, len(src))
			body(wp, wd, src, &whole)
			rig.run(t, func(s shape, in, out [][]float32) {
				rows := whole.sliceRows(s.off, s.n)
				dphi := out[1]
				if s.pick(2) == 1 {
					dphi = nil
				}
				body(out[0], dphi, in[0], rows)
				for k := 0; k < s.n; k++ {
					if math.Float32bits(out[0][k]) != math.Float32bits(wp[s.off+k]) ||
						dphi != nil && math.Float32bits(dphi[k]) != math.Float32bits(wd[s.off+k]) {
						t.Fatalf("%v %v %v: element %d differs from the whole input's", l, f.kind, s, k)
					}
				}
				if dphi == nil {
					for k := range out[1] {
						out[1][k] = math.Float32frombits(sentinelBits) // untouched: the rig checks the rest
					}
				}
			})
		}
	}
}

// TestMarginRowsFailClosed: a per-row form without a row body (Combined
// with m1 ≠ 1, Psi, an unknown kind, ArcClip outside its domain), or a row
// whose constants the body cannot take, runs the generic twin at every
// level.
func TestMarginRowsFailClosed(t *testing.T) {
	ts := []float32{-1, -0.3, 0, 0.4, 1, float32(math.NaN())}
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, c := range []struct {
		kind MarginKind
		m1   float64
		m2   float32
	}{
		{MarginCombined, 0.9, 0.5}, {MarginPsi, 1, 2}, {MarginKind(99), 1, 0.5}, {MarginCos, 1, inf},
		{MarginArc, 1, nan}, {MarginCombined, 1, nan}, {MarginArcClip, AdaEps, 1.6}, {MarginArcClip, 0.3, 0.1},
		{MarginArcClip, 1e-7, 0.1},
	} {
		ms := make([]float32, len(ts))
		for i := range ms {
			ms[i] = 0.3
		}
		ms[2] = c.m2
		var rows Margin
		rows.SetRows(c.kind, c.m1, ms, nil)
		require.False(t, rows.rows.vec, "%v %v", c.kind, c.m2)
		wp, wd := make([]float32, len(ts)), make([]float32, len(ts))
		marginForwardRowsGeneric(wp, wd, ts, &rows)
		for _, l := range marginRowsImpl.Levels() {
			body, _ := marginRowsImpl.At(l)
			p, d := make([]float32, len(ts)), make([]float32, len(ts))
			body(p, d, ts, &rows)
			for i := range ts {
				require.Equal(t, math.Float32bits(wp[i]), math.Float32bits(p[i]), "%v %v", l, c.kind)
				require.Equal(t, math.Float32bits(wd[i]), math.Float32bits(d[i]), "%v %v", l, c.kind)
			}
			bp, bd := rows.rowErrorBound(1, ts[1])
			require.Zero(t, bp)
			require.Zero(t, bd)
		}
	}
	var rows Margin
	rows.SetRows(MarginArc, 1, []float32{0.5, 0.5, 0.5}, nil)
	require.Panics(t, func() { MarginForward(make([]float32, 2), nil, make([]float32, 2), &rows) }, "3 rows, 2 cosines")
	require.Panics(t, func() { rows.SetRows(MarginArc, 1, []float32{0.5}, []float32{1, 2}) })
	require.Panics(t, func() { MarginForward(nil, nil, nil, nil) })
}

// TestSetRowsReuse: SetRows of a smaller batch, then of a larger one,
// allocates only when the buffers grow, and a Margin set back to a scalar
// one by NewMargin is that margin again.
func TestSetRowsReuse(t *testing.T) {
	m := make([]float32, 64)
	for i := range m {
		m[i] = 0.3 + float32(i)/200
	}
	var rows Margin
	rows.SetRows(MarginArcClip, AdaEps, m, m)
	allocs := testing.AllocsPerRun(20, func() {
		rows.SetRows(MarginCombined, 1, m[:40], nil)
		rows.SetRows(MarginArcClip, AdaEps, m, m)
	})
	require.Zero(t, allocs)
	require.Equal(t, "ArcClip(64 rows)", rows.String())
	ts := make([]float32, 64)
	phi, dphi := make([]float32, 64), make([]float32, 64)
	allocs = testing.AllocsPerRun(20, func() { MarginForward(phi, dphi, ts, &rows) })
	require.Zero(t, allocs)
	g := NewMargin(MarginArc, 1, 0.5, 0, 0, 0)
	require.Equal(t, -1, g.Rows())
}

// sliceRows returns rows off..off+n of a per-row g, sharing its buffers: what
// SetRows of those rows' parameters builds (TestSetRowsSlice), without
// SetRows' per-row constants, which the shape tests would recompute for
// every shape.
func (g *Margin) sliceRows(off, n int) *Margin {
	s := *g
	r := &s.rows
	r.n = n
	r.m2, r.m3 = r.m2[off:off+n], r.m3[off:off+n]
	for k := range r.c {
		r.c[k] = r.c[k][off : off+n]
	}
	return &s
}

// TestSetRowsSlice: sliceRows is SetRows of the rows' parameters, field for
// field.
func TestSetRowsSlice(t *testing.T) {
	r := rand.New(rand.NewSource(54))
	for _, f := range rowForms() {
		ts, m2, m3 := rowsInputs(r, f)
		var whole, part Margin
		whole.SetRows(f.kind, f.m1, m2, m3)
		for _, sh := range [][2]int{{0, 0}, {3, 17}, {100, 1}, {len(ts) - 40, 40}} {
			off, n := sh[0], sh[1]
			part.SetRows(f.kind, f.m1, m2[off:off+n], m3[off:off+n])
			got := whole.sliceRows(off, n)
			require.Equal(t, part.rows.n, got.rows.n)
			require.Equal(t, part.rows.vec, got.rows.vec)
			require.True(t, slices.Equal(part.rows.m2, got.rows.m2), "%v m2", f.kind)
			require.True(t, slices.Equal(part.rows.m3, got.rows.m3), "%v m3", f.kind)
			for k := range part.rows.c {
				// bitwise: NaN slopes (Combined) compare equal
				a, b := part.rows.c[k], got.rows.c[k]
				require.Equal(t, len(a), len(b))
				for i := range a {
					require.Equal(t, math.Float32bits(a[i]), math.Float32bits(b[i]), "%v constant %d row %d", f.kind, k, i)
				}
			}
		}
	}
}
