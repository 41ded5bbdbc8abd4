package asm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// rowsInputs is, for the kinds of the arc family, a batch of target
// cosines with a margin per row: marginInputs of a middle margin (the
// dense grid, ±1 and their neighbours, NaN, values outside [−1, 1]), each
// paired with a margin from a spread over [0, 1.5) (paper draws around 0.5
// included) or, for every 7th row, the margin whose branch point the
// cosine sits on.
func rowsInputs(r *rand.Rand, kind MarginKind) (ts, ms []float32) {
	g := NewMargin(kind, 1, 0.5, 0, 0, 0)
	ts = marginInputs(&g)
	ms = make([]float32, len(ts))
	for i := range ts {
		ms[i] = float32(1.5 * r.Float64())
		if i%5 == 0 {
			ms[i] = float32(0.5 + 0.05*r.NormFloat64())
		}
		if i%7 == 3 && kind == MarginArc && ts[i] < 0 && ts[i] > -1 {
			ms[i] = float32(math.Pi - math.Acos(-float64(ts[i]))) // t on cos(π − m)
		}
	}
	return ts, ms
}

// TestMarginRowsLevels: every vector level of MarginForwardRows within
// each row's MarginForward error bound of the generic twin, which is itself
// MarginForward of that row's margin bit for bit.
func TestMarginRowsLevels(t *testing.T) {
	r := rand.New(rand.NewSource(51))
	for _, kind := range []MarginKind{MarginArc, MarginArcEasy, MarginCos} {
		ts, ms := rowsInputs(r, kind)
		var rows MarginRows
		rows.Set(kind, ms)
		require.True(t, rows.vec, "%v", kind)
		wantP, wantD := make([]float32, len(ts)), make([]float32, len(ts))
		marginForwardRowsGeneric(wantP, wantD, ts, &rows)
		for i, tv := range ts {
			g := NewMargin(kind, 1, float64(ms[i]), 0, 0, 0)
			p, d := make([]float32, 1), make([]float32, 1)
			marginForwardGeneric(p, d, ts[i:i+1], &g)
			require.Equal(t, math.Float32bits(p[0]), math.Float32bits(wantP[i]), "%v m=%v t=%v", kind, ms[i], tv)
			require.Equal(t, math.Float32bits(d[0]), math.Float32bits(wantD[i]), "%v m=%v t=%v", kind, ms[i], tv)
		}
		for _, l := range marginRowsImpl.Levels() {
			f, _ := marginRowsImpl.At(l)
			p, d := make([]float32, len(ts)), make([]float32, len(ts))
			f(p, d, ts, &rows)
			for i, tv := range ts {
				g := NewMargin(kind, 1, float64(ms[i]), 0, 0, 0)
				bp, bd := g.errorBound(tv)
				msg := func(what string) func() string {
					return func() string {
						return fmt.Sprintf("%v %v m=%v t=%v (%#x) %s", l, kind, ms[i], tv, math.Float32bits(tv), what)
					}
				}
				marginWithin(t, p[i], wantP[i], bp, msg("φ"))
				marginWithin(t, d[i], wantD[i], bd, msg("φ′"))
			}
			pn := make([]float32, len(ts))
			f(pn, nil, ts, &rows)
			for i := range ts {
				require.Equal(t, math.Float32bits(p[i]), math.Float32bits(pn[i]), "%v dphi=nil t=%v", l, ts[i])
			}
		}
	}
}

// TestMarginRowsShapes: every level on every shape (lengths, offsets, guard
// pages on t, phi and dphi) reproduces its own whole-input output bit for
// bit, and writes nothing outside phi and dphi.
func TestMarginRowsShapes(t *testing.T) {
	r := rand.New(rand.NewSource(52))
	src := make([]float32, shapeMaxLen+shapeOffsets)
	ms := make([]float32, len(src))
	for i := range src {
		src[i] = float32(r.Float64()*2.2 - 1.1)
		ms[i] = float32(1.4 * r.Float64())
	}
	rig := newShapeRig(t, [][]float32{src}, 2)
	for _, kind := range []MarginKind{MarginArc, MarginArcEasy, MarginCos} {
		for _, l := range marginRowsImpl.Levels() {
			f, _ := marginRowsImpl.At(l)
			var whole MarginRows
			whole.Set(kind, ms)
			wp, wd := make([]float32, len(src)), make([]float32, len(src))
			f(wp, wd, src, &whole)
			var rows MarginRows
			rig.run(t, func(s shape, in, out [][]float32) {
				rows.Set(kind, ms[s.off:s.off+s.n])
				dphi := out[1]
				if s.pick(2) == 1 {
					dphi = nil
				}
				f(out[0], dphi, in[0], &rows)
				for k := 0; k < s.n; k++ {
					if math.Float32bits(out[0][k]) != math.Float32bits(wp[s.off+k]) ||
						dphi != nil && math.Float32bits(dphi[k]) != math.Float32bits(wd[s.off+k]) {
						t.Fatalf("%v %v %v: element %d differs from the whole input's", l, kind, s, k)
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

// TestMarginRowsFailClosed: a kind outside the arc family, or a margin the
// bodies cannot take, runs the generic twin at every level.
func TestMarginRowsFailClosed(t *testing.T) {
	ts := []float32{-1, -0.3, 0, 0.4, 1, float32(math.NaN())}
	for _, c := range []struct {
		kind MarginKind
		m    float32
	}{{MarginCombined, 0.5}, {MarginPsi, 2}, {MarginKind(99), 0.5}, {MarginCos, float32(math.Inf(1))}, {MarginArc, float32(math.NaN())}} {
		ms := make([]float32, len(ts))
		for i := range ms {
			ms[i] = 0.3
		}
		ms[2] = c.m
		var rows MarginRows
		rows.Set(c.kind, ms)
		require.False(t, rows.vec, "%v %v", c.kind, c.m)
		wp, wd := make([]float32, len(ts)), make([]float32, len(ts))
		marginForwardRowsGeneric(wp, wd, ts, &rows)
		for _, l := range marginRowsImpl.Levels() {
			f, _ := marginRowsImpl.At(l)
			p, d := make([]float32, len(ts)), make([]float32, len(ts))
			f(p, d, ts, &rows)
			for i := range ts {
				require.Equal(t, math.Float32bits(wp[i]), math.Float32bits(p[i]), "%v %v", l, c.kind)
				require.Equal(t, math.Float32bits(wd[i]), math.Float32bits(d[i]), "%v %v", l, c.kind)
			}
		}
	}
	require.Panics(t, func() { MarginForwardRows(make([]float32, 2), nil, make([]float32, 2), &MarginRows{}) })
	require.Panics(t, func() { MarginForwardRows(nil, nil, nil, nil) })
}
