package optim_test

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

type goldenPoly struct {
	Base          float32
	Total, Warmup int
	Power         float64
	LR            []float64
}

type goldenClip struct {
	MaxNorm float32 `json:"max_norm"`
	Grads   [][]float32
	Total   float32
	Clipped [][]float32
}

type goldenExtra struct {
	Poly []goldenPoly
	Clip []goldenClip
}

func loadExtra(t *testing.T) goldenExtra {
	t.Helper()
	var d goldenExtra
	loadJSON(t, &d)
	if len(d.Poly) == 0 || len(d.Clip) == 0 {
		t.Fatal("no PolyLR or ClipGradNorm goldens")
	}
	return d
}

// TestGoldenPolyLR: the lr torch's optimizer holds at each step of
// arcface_torch's loop (opt.step(); scheduler.step()) is At(max(k−1, 0)),
// the float64 value rounded to float32 as torch's kernels round it.
func TestGoldenPolyLR(t *testing.T) {
	for _, c := range loadExtra(t).Poly {
		s := optim.PolyLR{Base: c.Base, Warmup: c.Warmup, Total: c.Total, Power: c.Power}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		for k, want := range c.LR {
			if got := s.At(max(k-1, 0)); got != float32(want) {
				t.Fatalf("%+v step %d: At = %v, torch's lr %v", s, k, got, want)
			}
		}
	}
}

func TestPolyLR(t *testing.T) {
	s := optim.PolyLR{Base: 0.1, Warmup: 10, Total: 110}
	for k, want := range map[int]float64{-3: 0, 0: 0, 5: 0.05, 10: 0.1, 60: 0.025, 110: 0, 111: 0, math.MaxInt32: 0} {
		if got := s.At(k); got != float32(want) {
			t.Errorf("At(%d) = %v, want %v", k, got, want)
		}
	}
	if got := (optim.PolyLR{Base: 1, Total: 4, Power: 1}).At(1); got != 0.75 {
		t.Errorf("power 1, no warm-up: At(1) = %v, want 0.75", got)
	}
	if got := (optim.PolyLR{Base: 1, Total: 4, Power: 0.5}).At(3); got != 0.5 {
		t.Errorf("power ½: At(3) = %v, want 0.5", got)
	}
	for _, bad := range []optim.PolyLR{{Base: -1, Total: 5}, {Base: 1, Warmup: 5, Total: 5}, {Base: 1, Warmup: -1, Total: 5},
		{Base: 1, Total: 5, Power: -1}, {Base: float32(math.NaN()), Total: 5}, {Base: 1, Total: 5, Power: math.Inf(1)}} {
		if err := bad.Validate(); !errors.Is(err, loss.ErrParam) {
			t.Errorf("%+v: %v", bad, err)
		}
		if bad.At(1) != 0 {
			t.Errorf("%+v: At(1) = %v for an invalid schedule", bad, bad.At(1))
		}
	}
}

// TestGoldenClipGradNorm against torch.nn.utils.clip_grad_norm_. torch
// reduces in float32 in its own order, so total and coef may differ in the
// last bits: total within (n+9)·2⁻²³ relative (the bound of the per-tensor
// norms, n the largest tensor; torch's error is of the same order), and
// each clipped value within that plus two roundings (the coefficient's
// reciprocal and the product); from a total equal to torch's, the clipped
// values must be torch's bits.
func TestGoldenClipGradNorm(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		for i, c := range loadExtra(t).Clip {
			gs := make([][]float32, len(c.Grads))
			n := 0
			for k, g := range c.Grads {
				gs[k] = slices.Clone(g)
				n = max(n, len(g))
			}
			total, err := optim.ClipGradNorm(c.MaxNorm, gs...)
			if err != nil {
				t.Fatal(err)
			}
			rel := float64(n+9) * 0x1p-23
			if d := math.Abs(float64(total) - float64(c.Total)); d > rel*float64(c.Total) {
				t.Fatalf("case %d: total %v, torch %v (%.3g relative, bound %.3g)", i, total, c.Total, d/float64(c.Total), rel)
			}
			clipped := float64(c.MaxNorm) < float64(c.Total)
			for k, g := range gs {
				for e, v := range g {
					want := c.Clipped[k][e]
					if !clipped {
						if v != c.Grads[k][e] || want != c.Grads[k][e] {
							t.Fatalf("case %d: not clipping, yet [%d][%d] changed: %v, torch %v", i, k, e, v, want)
						}
						continue
					}
					if total == c.Total && math.Float32bits(v) != math.Float32bits(want) {
						// the same total: the same float32 coefficient and product
						t.Fatalf("case %d: [%d][%d] = %v, torch %v, from the same total", i, k, e, v, want)
					}
					if d := math.Abs(float64(v) - float64(want)); d > (rel+3*0x1p-24)*math.Abs(float64(want)) {
						t.Fatalf("case %d: [%d][%d] = %v, torch %v", i, k, e, v, want)
					}
				}
			}
		}
	})
}

func TestClipGradNormErrors(t *testing.T) {
	g := []float32{3, 4}
	for _, m := range []float32{0, -1, float32(math.NaN()), float32(math.Inf(1))} {
		if _, err := optim.ClipGradNorm(m, g); !errors.Is(err, loss.ErrParam) {
			t.Errorf("maxNorm %v: %v", m, err)
		}
	}
	h := []float32{1, float32(math.NaN())}
	if _, err := optim.ClipGradNorm(1, g, h); !errors.Is(err, loss.ErrNonFinite) {
		t.Errorf("NaN: %v", err)
	}
	if g[0] != 3 || g[1] != 4 {
		t.Errorf("written on error: %v", g)
	}
	total, err := optim.ClipGradNorm(1, g)
	if err != nil || total != 5 || g[0] != float32(3*float32(1/float32(5+1e-6))) {
		t.Errorf("total %v err %v g %v", total, err, g)
	}
	if total, err := optim.ClipGradNorm(1); err != nil || total != 0 {
		t.Errorf("no tensors: %v %v", total, err)
	}
}

// TestNormal: deterministic for a seed whatever GOMAXPROCS, different for
// another seed, and the sample moments of 2¹⁸ draws within 5 standard errors
// of N(mean, std²).
func TestNormal(t *testing.T) {
	const n = 1 << 18
	var ref []float32
	for _, procs := range []int{1, 2, 5} {
		prev := runtime.GOMAXPROCS(procs)
		w := make([]float32, n)
		if err := optim.Normal(w, 0.5, 0.01, 42); err != nil {
			t.Fatal(err)
		}
		runtime.GOMAXPROCS(prev)
		if ref == nil {
			ref = w
			continue
		}
		sameBits(t, "Normal", w, ref)
	}
	var s, s2 float64
	for _, v := range ref {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	mean := s / n
	sd := math.Sqrt(s2/n - mean*mean)
	if math.Abs(mean-0.5) > 5*0.01/math.Sqrt(n) || math.Abs(sd-0.01) > 5*0.01/math.Sqrt(2*n) {
		t.Errorf("mean %v sd %v", mean, sd)
	}
	other := make([]float32, 64)
	if err := optim.Normal(other, 0.5, 0.01, 43); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(other, ref[:64]) {
		t.Error("seed 43 gives seed 42's values")
	}
	w := []float32{7, 7}
	for _, bad := range [][2]float32{{0, -1}, {float32(math.NaN()), 1}, {0, float32(math.Inf(1))}} {
		if err := optim.Normal(w, bad[0], bad[1], 1); !errors.Is(err, loss.ErrParam) || w[0] != 7 {
			t.Errorf("mean %v std %v: %v, w %v", bad[0], bad[1], err, w)
		}
	}
}
