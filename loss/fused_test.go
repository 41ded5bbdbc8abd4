package loss_test

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

// The fused W step (MarginSoftmax.FusedStep): each tile of W is stepped as
// soon as its gradient is complete, so dw need not exist. Against the
// separate path (Loss into dw, then the optimizer's Step or, under Partial
// FC, StepRows on the sampled rows): the loss and dx bitwise, and W bit
// for bit as well, since the fused path computes each dW row with the same
// GEMM and normalisation backward into a scratch block and steps it with
// the same elementwise kernel. (The GEMM gives an output row the same bits
// whatever block of rows it computes: each element is one dot product over
// N in the packed order. If that ever changed, the bound would be one
// float32 rounding of dW per element, amplified by the optimizer's lr.)

type fusedOpt struct {
	name  string
	fused func(st *optim.State) loss.WeightStepper
	step  func(p, g []float32, st *optim.State) error
	rows  func(p, g loss.Matrix, rows []int32, st *optim.State) error
}

func fusedOpts() []fusedOpt {
	sgd := optim.SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4}
	nest := optim.SGD{LR: 0.05, Momentum: 0.8, Nesterov: true}
	adam := optim.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05}
	return []fusedOpt{
		{"sgd", sgd.Fused, sgd.Step, sgd.StepRows},
		{"nesterov", nest.Fused, nest.Step, nest.StepRows},
		{"adamw", adam.Fused, adam.Step, adam.StepRows},
	}
}

func fusedBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for k := range want {
		if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
			t.Fatalf("%s: [%d] = %v, separate path %v", what, k, got[k], want[k])
		}
	}
}

// TestFusedMatchesSeparate: every kind, sub-centers and smoothing, both
// tile paths, every level, three steps per optimizer, with dw = nil, with
// dw given, and with Accumulate.
func TestFusedMatchesSeparate(t *testing.T) { forEachLevelAndPath(t, testFusedMatchesSeparate) }

func testFusedMatchesSeparate(t *testing.T) {
	r := rand.New(rand.NewSource(181))
	const n, c, d = 19, 1100, 24 // several tiles and shards
	x := randMatrix(r, n, d)
	labels := randLabels(r, n, c)
	heads := allHeads()
	heads["arcface-k2-smooth"] = func() *loss.MarginSoftmax {
		h := loss.ArcFace(30, 0.5)
		h.SubCenters, h.LabelSmoothing, h.TileBudget = 2, 0.1, tileBudget
		return h
	}
	for name, mk := range heads {
		k := max(mk().SubCenters, 1)
		w0 := randMatrix(r, c*k, d)
		for _, o := range fusedOpts() {
			for _, mode := range []string{"nil-dw", "dw", "accumulate"} {
				sep, fus := mk(), mk()
				wS, wF := slices.Clone(w0.Data), slices.Clone(w0.Data)
				var stS, stF optim.State
				fus.FusedStep = o.fused(&stF)
				dw := make([]float32, len(w0.Data))
				dwF := make([]float32, len(w0.Data))
				if mode == "accumulate" {
					sep.Accumulate, fus.Accumulate = true, true
				}
				for step := 0; step < 3; step++ {
					dxS, dxF := make([]float32, n*d), make([]float32, n*d)
					if mode == "accumulate" {
						for i := range dxS {
							dxS[i] = float32(i%7) * 0.01
						}
						copy(dxF, dxS)
						clear(dw)
					}
					ls, err := sep.Loss(x, loss.Matrix{Rows: c * k, Cols: d, Data: wS}, labels,
						&loss.Matrix{Rows: n, Cols: d, Data: dxS}, &loss.Matrix{Rows: c * k, Cols: d, Data: dw})
					if err != nil {
						t.Fatal(err)
					}
					if err := o.step(wS, dw, &stS); err != nil {
						t.Fatal(err)
					}
					var dwp *loss.Matrix
					if mode == "dw" {
						dwp = &loss.Matrix{Rows: c * k, Cols: d, Data: dwF}
					}
					lf, err := fus.Loss(x, loss.Matrix{Rows: c * k, Cols: d, Data: wF}, labels,
						&loss.Matrix{Rows: n, Cols: d, Data: dxF}, dwp)
					if err != nil {
						t.Fatal(err)
					}
					if ls != lf {
						t.Fatalf("%s %s %s step %d: loss %v, separate %v", name, o.name, mode, step, lf, ls)
					}
					fusedBits(t, name+" "+o.name+" "+mode+" dx", dxF, dxS)
					if mode == "dw" {
						fusedBits(t, name+" "+o.name+" dw", dwF, dw)
					}
					fusedBits(t, name+" "+o.name+" "+mode+" W", wF, wS)
				}
			}
		}
	}
}

// TestFusedPartialFC: Partial FC with a fused step equals Partial FC into
// dw followed by StepRows on the W rows of Sampled() (K per class), bit for
// bit; the rows outside S and their state are untouched. Both sampling
// paths (rate < 1 and rate 1) and sub-centers.
func TestFusedPartialFC(t *testing.T) {
	r := rand.New(rand.NewSource(182))
	const n, c, d = 23, 700, 16
	x := randMatrix(r, n, d)
	for _, k := range []int{1, 3} {
		for _, rate := range []float32{0.2, 1} {
			w0 := randMatrix(r, c*k, d)
			for _, o := range fusedOpts() {
				mk := func() *loss.PartialFC {
					h := loss.ArcFace(30, 0.5)
					h.SubCenters = k
					return &loss.PartialFC{Head: h, SampleRate: rate, Seed: 9}
				}
				sep, fus := mk(), mk()
				wS, wF := slices.Clone(w0.Data), slices.Clone(w0.Data)
				var stS, stF optim.State
				fus.Head.FusedStep = o.fused(&stF)
				dw := make([]float32, len(w0.Data))
				touched := make([]bool, c*k)
				for step := 0; step < 4; step++ {
					labels := randLabels(r, n, c)
					dxS, dxF := make([]float32, n*d), make([]float32, n*d)
					W := loss.Matrix{Rows: c * k, Cols: d, Data: wS}
					ls, err := sep.Loss(x, W, labels, &loss.Matrix{Rows: n, Cols: d, Data: dxS}, &loss.Matrix{Rows: c * k, Cols: d, Data: dw})
					if err != nil {
						t.Fatal(err)
					}
					var rows []int32
					for _, cl := range sep.Sampled() {
						for q := 0; q < k; q++ {
							rows = append(rows, cl*int32(k)+int32(q))
							touched[int(cl)*k+q] = true
						}
					}
					if err := o.rows(W, loss.Matrix{Rows: c * k, Cols: d, Data: dw}, rows, &stS); err != nil {
						t.Fatal(err)
					}
					lf, err := fus.Loss(x, loss.Matrix{Rows: c * k, Cols: d, Data: wF}, labels, &loss.Matrix{Rows: n, Cols: d, Data: dxF}, nil)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(sep.Sampled(), fus.Sampled()) || ls != lf {
						t.Fatalf("k=%d rate=%v %s step %d: loss %v, separate %v (or another S)", k, rate, o.name, step, lf, ls)
					}
					fusedBits(t, "Partial FC dx", dxF, dxS)
					fusedBits(t, "Partial FC W", wF, wS)
				}
				if rate < 1 {
					for row, tt := range touched {
						if !tt {
							fusedBits(t, "a row never sampled", wF[row*d:(row+1)*d], w0.Data[row*d:(row+1)*d])
						}
					}
				}
			}
		}
	}
}

// TestFusedErrors: a State that does not fit W fails the call before
// anything is written (dx, W); so does an invalid optimizer.
func TestFusedErrors(t *testing.T) {
	r := rand.New(rand.NewSource(183))
	const n, c, d = 5, 40, 8
	x := randMatrix(r, n, d)
	labels := randLabels(r, n, c)
	w := randMatrix(r, c, d)
	var st optim.State
	sgd := optim.SGD{LR: 0.1, Momentum: 0.9}
	if err := sgd.Step(make([]float32, 7), make([]float32, 7), &st); err != nil { // sized for 7 floats
		t.Fatal(err)
	}
	for _, tc := range []struct {
		step loss.WeightStepper
		want error
	}{{sgd.Fused(&st), loss.ErrShape}, {optim.AdamW{LR: -1}.Fused(new(optim.State)), loss.ErrParam}, {optim.AdamW{LR: 1}.Fused(&st), loss.ErrParam}} {
		h := loss.ArcFace(30, 0.5)
		h.FusedStep = tc.step
		dx := filled(n, d, 3)
		before := slices.Clone(w.Data)
		_, err := h.Loss(x, w, labels, &dx, nil)
		if !errors.Is(err, tc.want) {
			t.Fatalf("got %v, want %v", err, tc.want)
		}
		fusedBits(t, "W after a failed call", w.Data, before)
		fusedBits(t, "dx after a failed call", dx.Data, filled(n, d, 3).Data)
	}
}

// TestFusedOverlap: a fused step writes W, so x inside W is ErrOverlap
// (without a fused step both are inputs and may share memory).
func TestFusedOverlap(t *testing.T) {
	r := rand.New(rand.NewSource(186))
	const c, d = 30, 8
	w := randMatrix(r, c, d)
	x := loss.Matrix{Rows: 4, Cols: d, Data: w.Data[8 : 8+4*d]}
	labels := []int32{1, 2, 3, 4}
	before := slices.Clone(w.Data)
	h := loss.ArcFace(30, 0.5)
	h.FusedStep = optim.SGD{LR: 0.1}.Fused(new(optim.State))
	if _, err := h.Loss(x, w, labels, nil, nil); !errors.Is(err, loss.ErrOverlap) {
		t.Fatalf("head: %v", err)
	}
	p := &loss.PartialFC{Head: h, SampleRate: 0.5}
	if _, err := p.Loss(x, w, labels, nil, nil); !errors.Is(err, loss.ErrOverlap) {
		t.Fatalf("PartialFC: %v", err)
	}
	fusedBits(t, "W", w.Data, before)
	h.FusedStep = nil
	if _, err := h.Loss(x, w, labels, nil, nil); err != nil {
		t.Fatalf("no fused step: %v", err)
	}
}

// TestFusedNoAllocs: a fused step allocates nothing once the State is
// sized.
func TestFusedNoAllocs(t *testing.T) {
	r := rand.New(rand.NewSource(184))
	const n, c, d = 32, 2000, 32
	x := randMatrix(r, n, d)
	labels := randLabels(r, n, c)
	w := randMatrix(r, c, d)
	for _, o := range fusedOpts() {
		var st optim.State
		h := loss.ArcFace(30, 0.5)
		h.FusedStep = o.fused(&st)
		dx := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
		call := func() {
			if _, err := h.Loss(x, w, labels, &dx, nil); err != nil {
				t.Fatal(err)
			}
		}
		call()
		if a := testing.AllocsPerRun(5, call); a != 0 {
			t.Errorf("%s: %v allocations per fused step", o.name, a)
		}
	}
}

// TestFusedDeterministic: the same W for GOMAXPROCS 1, 2 and 5.
func TestFusedDeterministic(t *testing.T) {
	r := rand.New(rand.NewSource(185))
	const n, c, d = 40, 3000, 32
	x := randMatrix(r, n, d)
	labels := randLabels(r, n, c)
	w0 := randMatrix(r, c, d)
	var ref []float32
	for _, procs := range []int{1, 2, 5} {
		prev := runtime.GOMAXPROCS(procs)
		w := slices.Clone(w0.Data)
		var st optim.State
		h := loss.CosFace(30, 0.35)
		h.FusedStep = optim.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Fused(&st)
		for range 2 {
			if _, err := h.Loss(x, loss.Matrix{Rows: c, Cols: d, Data: w}, labels, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GOMAXPROCS(prev)
		if ref == nil {
			ref = w
			continue
		}
		fusedBits(t, "W", w, ref)
	}
}
