package optim_test

import (
	"errors"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"testing"

	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

func randSlice(r *rand.Rand, n int, sd float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64() * sd)
	}
	return s
}

var (
	testSGD   = optim.SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4}
	testAdamW = optim.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}
)

// stepper is Step of either optimizer.
type stepper interface {
	Step(p, g []float32, st *optim.State) error
	StepRows(p, g loss.Matrix, rows []int32, st *optim.State) error
}

var optimizers = []struct {
	name string
	o    stepper
}{{"sgd", testSGD}, {"sgd-nesterov", optim.SGD{LR: 0.05, Momentum: 0.9, Nesterov: true}}, {"adamw", testAdamW}}

// TestDeterministic: many chunks (n ≫ the chunk size), the same bits for
// GOMAXPROCS 1, 2 and 7, for Step and StepRows.
func TestDeterministic(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	const rows, cols = 300, 257
	p0 := randSlice(r, rows*cols, 1)
	gs := [][]float32{randSlice(r, rows*cols, 0.1), randSlice(r, rows*cols, 0.1), randSlice(r, rows*cols, 0.1)}
	sel := []int32{0, 3, 4, 100, 101, 102, 250, 299}
	for _, o := range optimizers {
		var ref, refRows []float32
		for _, procs := range []int{1, 2, 7} {
			prev := runtime.GOMAXPROCS(procs)
			p := slices.Clone(p0)
			pr := loss.Matrix{Rows: rows, Cols: cols, Data: slices.Clone(p0)}
			var st, str optim.State
			for _, g := range gs {
				if err := o.o.Step(p, g, &st); err != nil {
					t.Fatal(err)
				}
				all := make([]int32, 0, rows)
				for i := range int32(rows) {
					if i%3 != 1 {
						all = append(all, i)
					}
				}
				for _, rs := range [][]int32{all, sel} {
					if err := o.o.StepRows(pr, loss.Matrix{Rows: rows, Cols: cols, Data: g}, rs, &str); err != nil {
						t.Fatal(err)
					}
				}
			}
			runtime.GOMAXPROCS(prev)
			if ref == nil {
				ref, refRows = p, pr.Data
				continue
			}
			sameBits(t, o.name+" Step", p, ref)
			sameBits(t, o.name+" StepRows", pr.Data, refRows)
		}
	}
}

// TestStepRowsEqualsStep: listing every row on every call is Step.
func TestStepRowsEqualsStep(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	const rows, cols = 9, 33
	p0 := randSlice(r, rows*cols, 1)
	all := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8}
	for _, o := range optimizers {
		p, pr := slices.Clone(p0), loss.Matrix{Rows: rows, Cols: cols, Data: slices.Clone(p0)}
		var st, str optim.State
		for range 5 {
			g := randSlice(r, rows*cols, 0.3)
			if err := o.o.Step(p, g, &st); err != nil {
				t.Fatal(err)
			}
			if err := o.o.StepRows(pr, loss.Matrix{Rows: rows, Cols: cols, Data: g}, all, &str); err != nil {
				t.Fatal(err)
			}
		}
		sameBits(t, o.name, pr.Data, p)
	}
}

// TestNoAllocs: after the first step sizes the State, steps allocate
// nothing.
func TestNoAllocs(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	const rows, cols = 64, 512 // several chunks
	p := loss.Matrix{Rows: rows, Cols: cols, Data: randSlice(r, rows*cols, 1)}
	g := loss.Matrix{Rows: rows, Cols: cols, Data: randSlice(r, rows*cols, 0.01)}
	sel := []int32{1, 5, 9, 60}
	for _, o := range optimizers {
		var st, str optim.State
		step := func() {
			if err := o.o.Step(p.Data, g.Data, &st); err != nil {
				t.Fatal(err)
			}
			if err := o.o.StepRows(p, g, sel, &str); err != nil {
				t.Fatal(err)
			}
		}
		step()
		if a := testing.AllocsPerRun(20, step); a != 0 {
			t.Errorf("%s: %v allocations per step", o.name, a)
		}
	}
}

// TestErrors: every error wraps its sentinel, and nothing is written: not
// p, and not the State (the next good step gives what it gives on a fresh
// history).
func TestErrors(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	p0 := randSlice(r, 12, 1)
	g0 := randSlice(r, 12, 0.1)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	withAt := func(s []float32, k int, v float32) []float32 { s = slices.Clone(s); s[k] = v; return s }
	m := func(rows int, d []float32) loss.Matrix { return loss.Matrix{Rows: rows, Cols: 12 / rows, Data: d} }

	type call func(st *optim.State, p []float32) error
	cases := []struct {
		name string
		want error
		f    call
	}{
		{"sgd len", loss.ErrShape, func(st *optim.State, p []float32) error { return testSGD.Step(p, g0[:11], st) }},
		{"adamw len", loss.ErrShape, func(st *optim.State, p []float32) error { return testAdamW.Step(p, g0[:11], st) }},
		{"sgd NaN g", loss.ErrNonFinite, func(st *optim.State, p []float32) error { return testSGD.Step(p, withAt(g0, 7, nan), st) }},
		{"adamw Inf g", loss.ErrNonFinite, func(st *optim.State, p []float32) error { return testAdamW.Step(p, withAt(g0, 11, -inf), st) }},
		{"sgd lr<0", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.SGD{LR: -1}.Step(p, g0, st) }},
		{"sgd lr NaN", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.SGD{LR: nan}.Step(p, g0, st) }},
		{"sgd momentum<0", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.SGD{LR: 1, Momentum: -0.1}.Step(p, g0, st) }},
		{"sgd wd<0", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.SGD{LR: 1, WeightDecay: -1}.Step(p, g0, st) }},
		{"nesterov no momentum", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.SGD{LR: 1, Nesterov: true}.Step(p, g0, st) }},
		{"nesterov dampening", loss.ErrParam, func(st *optim.State, p []float32) error {
			return optim.SGD{LR: 1, Momentum: 0.9, Dampening: 0.1, Nesterov: true}.Step(p, g0, st)
		}},
		{"adamw beta1=1", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.AdamW{LR: 1, Beta1: 1}.Step(p, g0, st) }},
		{"adamw beta2<0", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.AdamW{LR: 1, Beta2: -0.5}.Step(p, g0, st) }},
		{"adamw eps<0", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.AdamW{LR: 1, Eps: -1}.Step(p, g0, st) }},
		{"adamw wd Inf", loss.ErrParam, func(st *optim.State, p []float32) error { return optim.AdamW{LR: 1, WeightDecay: inf}.Step(p, g0, st) }},
		{"overlap", loss.ErrOverlap, func(st *optim.State, p []float32) error {
			var fresh optim.State
			return testSGD.Step(p[:6], p[3:9], &fresh)
		}},
		{"rows unsorted", loss.ErrParam, func(st *optim.State, p []float32) error {
			return testSGD.StepRows(m(4, p), m(4, g0), []int32{2, 1}, st)
		}},
		{"rows repeated", loss.ErrParam, func(st *optim.State, p []float32) error {
			return testAdamW.StepRows(m(4, p), m(4, g0), []int32{1, 1}, st)
		}},
		{"rows out of range", loss.ErrParam, func(st *optim.State, p []float32) error {
			return testAdamW.StepRows(m(4, p), m(4, g0), []int32{0, 4}, st)
		}},
		{"rows negative", loss.ErrParam, func(st *optim.State, p []float32) error { return testSGD.StepRows(m(4, p), m(4, g0), []int32{-1}, st) }},
		{"rows g shape", loss.ErrShape, func(st *optim.State, p []float32) error {
			return testSGD.StepRows(m(4, p), loss.Matrix{Rows: 3, Cols: 3, Data: g0[:9]}, []int32{0}, st)
		}},
		{"rows g cols", loss.ErrShape, func(st *optim.State, p []float32) error { return testSGD.StepRows(m(4, p), m(2, g0), []int32{0}, st) }},
		{"rows bad matrix", loss.ErrShape, func(st *optim.State, p []float32) error {
			return testSGD.StepRows(loss.Matrix{Rows: 5, Cols: 3, Data: p}, m(4, g0), []int32{0}, st)
		}},
		{"rows NaN listed", loss.ErrNonFinite, func(st *optim.State, p []float32) error {
			return testAdamW.StepRows(m(4, p), m(4, withAt(g0, 4, nan)), []int32{0, 1}, st)
		}},
		{"rows NaN p listed", loss.ErrNonFinite, func(st *optim.State, p []float32) error {
			p[10] = nan // row 3
			return testSGD.StepRows(m(4, p), m(4, g0), []int32{3}, st)
		}},
		{"nil state", loss.ErrParam, func(_ *optim.State, p []float32) error { return testSGD.Step(p, g0, nil) }},
	}
	for _, c := range cases {
		for _, warm := range []bool{false, true} {
			p := slices.Clone(p0)
			var st, ref optim.State
			pref := slices.Clone(p0)
			good := func(s *optim.State, q []float32) {
				var err error
				switch {
				case c.name[:2] == "ad" || c.name == "rows repeated" || c.name == "rows out of range" || c.name == "rows NaN listed":
					if c.name[:4] == "rows" {
						err = testAdamW.StepRows(m(4, q), m(4, g0), []int32{0, 1, 3}, s)
					} else {
						err = testAdamW.Step(q, g0, s)
					}
				case c.name[:4] == "rows":
					err = testSGD.StepRows(m(4, q), m(4, g0), []int32{0, 1, 3}, s)
				default:
					err = testSGD.Step(q, g0, s)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if warm { // a State with history: the failed call must not advance it
				good(&st, p)
				good(&ref, pref)
			}
			before := slices.Clone(p)
			err := c.f(&st, p)
			if !errors.Is(err, c.want) {
				t.Fatalf("%s (warm %v): got %v, want %v", c.name, warm, err, c.want)
			}
			if c.name == "rows NaN p listed" || c.name == "nil state" {
				continue
			}
			sameBits(t, c.name+" p", p, before)
			good(&st, p) // the State is as it was: the same next step as ref's
			good(&ref, pref)
			sameBits(t, c.name+" next step", p, pref)
		}
	}
}

// TestStateOwnership: a State belongs to one optimizer, one form and one
// size.
func TestStateOwnership(t *testing.T) {
	p, g := make([]float32, 8), make([]float32, 8)
	var st optim.State
	if err := testSGD.Step(p, g, &st); err != nil {
		t.Fatal(err)
	}
	if err := testSGD.Step(p[:4], g[:4], &st); !errors.Is(err, loss.ErrShape) {
		t.Fatalf("another size: %v", err)
	}
	if err := testAdamW.Step(p, g, &st); !errors.Is(err, loss.ErrParam) {
		t.Fatalf("another optimizer: %v", err)
	}
	pm, gm := loss.Matrix{Rows: 2, Cols: 4, Data: p}, loss.Matrix{Rows: 2, Cols: 4, Data: g}
	if err := testSGD.StepRows(pm, gm, []int32{0}, &st); !errors.Is(err, loss.ErrShape) {
		t.Fatalf("StepRows on a Step state: %v", err)
	}
	var sr optim.State
	if err := testAdamW.StepRows(pm, gm, []int32{1}, &sr); err != nil {
		t.Fatal(err)
	}
	if err := testAdamW.StepRows(loss.Matrix{Rows: 4, Cols: 2, Data: p}, loss.Matrix{Rows: 4, Cols: 2, Data: g}, []int32{1}, &sr); !errors.Is(err, loss.ErrShape) {
		t.Fatalf("StepRows with another shape: %v", err)
	}
	if err := testAdamW.Step(p, g, &sr); !errors.Is(err, loss.ErrShape) {
		t.Fatalf("Step on a StepRows state: %v", err)
	}
}

// TestStepRowsLazy: rows not listed keep their values and their state:
// stepping row 1 on calls 1 and 3 equals stepping a one-row tensor twice.
func TestStepRowsLazy(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	const cols = 21
	p0 := randSlice(r, 3*cols, 1)
	g1, g2, g3 := randSlice(r, 3*cols, 0.2), randSlice(r, 3*cols, 0.2), randSlice(r, 3*cols, 0.2)
	for _, o := range optimizers {
		pm := loss.Matrix{Rows: 3, Cols: cols, Data: slices.Clone(p0)}
		var st optim.State
		for i, call := range []struct {
			g    []float32
			rows []int32
		}{{g1, []int32{1}}, {g2, []int32{0, 2}}, {g3, []int32{1, 2}}} {
			if err := o.o.StepRows(pm, loss.Matrix{Rows: 3, Cols: cols, Data: call.g}, call.rows, &st); err != nil {
				t.Fatal(i, err)
			}
		}
		row := slices.Clone(p0[cols : 2*cols])
		var s1 optim.State
		for _, g := range [][]float32{g1, g3} {
			if err := o.o.Step(row, g[cols:2*cols], &s1); err != nil {
				t.Fatal(err)
			}
		}
		sameBits(t, o.name+" row 1", pm.Row(1), row)
		row0 := slices.Clone(p0[:cols])
		var s0 optim.State
		if err := o.o.Step(row0, g2[:cols], &s0); err != nil {
			t.Fatal(err)
		}
		sameBits(t, o.name+" row 0", pm.Row(0), row0)
	}
}
