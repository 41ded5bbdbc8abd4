package optim_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// The goldens are torch.optim.SGD and torch.optim.AdamW themselves (torch
// 1.13, float32 tensors, the single-tensor CPU path), from
// testdata/optim_golden.py. The bound is 0 ulp: every value is compared bit
// for bit, at every SIMD level. That is the right bound, not a lucky one:
//
//   - each element is a fixed chain of float32 operations, each correctly
//     rounded (IEEE multiply, add, divide, sqrt, and fused multiply-add,
//     which torch's AVX2 kernels use through vec::fmadd and which GCC also
//     contracts in their scalar tails: the sizes 1, 37 and 67 run those),
//     in torch's order, so equal inputs give equal bits;
//   - the scalars are the same float32 values: torch computes them in
//     Python floats (float64) from float32-representable hyper-parameters
//     and rounds them once when the kernel reads them, as coef does, and
//     β^t is the correctly rounded float64 power on both sides (Python's **
//     is the C library's pow).
//
// One flipped operation (no FMA in addcmul, a float32 bias correction, a
// product rounded before the add) changes bits within a few steps, which
// the mutation checks done when this test was written confirmed.

type goldenHP struct {
	LR, Momentum, Dampening, WeightDecay float32
	Nesterov                             bool
	Beta1, Beta2, Eps                    float32
}

func (h goldenHP) sgd() optim.SGD {
	return optim.SGD{LR: h.LR, Momentum: h.Momentum, Dampening: h.Dampening, WeightDecay: h.WeightDecay, Nesterov: h.Nesterov}
}

func (h goldenHP) adamw() optim.AdamW {
	return optim.AdamW{LR: h.LR, Beta1: h.Beta1, Beta2: h.Beta2, Eps: h.Eps, WeightDecay: h.WeightDecay}
}

type goldenFlat struct {
	Name, Kind string
	HP         goldenHP `json:"hp"`
	N, Steps   int
	P0         []float32
	Grads      [][]float32
	After      []struct {
		Step int
		P    []float32
	}
}

type goldenRows struct {
	Name, Kind string
	HP         goldenHP `json:"hp"`
	R, D       int
	P0         []float32
	Calls      []struct {
		Rows  []int32
		Grads []float32
	}
	P []float32
}

type goldenDoc struct {
	Torch string
	Flat  []goldenFlat
	Rows  []goldenRows
}

func (h *goldenHP) UnmarshalJSON(b []byte) error {
	var m struct {
		LR          float32 `json:"lr"`
		Momentum    float32 `json:"momentum"`
		Dampening   float32 `json:"dampening"`
		WeightDecay float32 `json:"weight_decay"`
		Nesterov    bool    `json:"nesterov"`
		Beta1       float32 `json:"beta1"`
		Beta2       float32 `json:"beta2"`
		Eps         float32 `json:"eps"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*h = goldenHP{m.LR, m.Momentum, m.Dampening, m.WeightDecay, m.Nesterov, m.Beta1, m.Beta2, m.Eps}
	return nil
}

func loadJSON(t *testing.T, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "golden_optim.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func loadGolden(t *testing.T) goldenDoc {
	t.Helper()
	var d goldenDoc
	loadJSON(t, &d)
	if len(d.Flat) == 0 || len(d.Rows) == 0 {
		t.Fatal("no golden cases")
	}
	return d
}

func forEachLevel(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, l := range simd.Usable() {
		t.Run(l.String(), func(t *testing.T) {
			restore, err := simd.Force(l)
			if err != nil {
				t.Fatal(err)
			}
			defer restore()
			f(t)
		})
	}
}

// sameBits fails t at the first element whose bits differ.
func sameBits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for k := range want {
		if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
			t.Fatalf("%s: [%d] = %.9g (%#x), torch %.9g (%#x)", what, k, got[k], math.Float32bits(got[k]), want[k], math.Float32bits(want[k]))
		}
	}
}

func TestGoldenStep(t *testing.T) {
	doc := loadGolden(t)
	forEachLevel(t, func(t *testing.T) {
		for _, c := range doc.Flat {
			p := append([]float32(nil), c.P0...)
			var st optim.State
			next := 0
			for s := 1; s <= c.Steps; s++ {
				var err error
				if c.Kind == "sgd" {
					err = c.HP.sgd().Step(p, c.Grads[s-1], &st)
				} else {
					err = c.HP.adamw().Step(p, c.Grads[s-1], &st)
				}
				if err != nil {
					t.Fatalf("%s step %d: %v", c.Name, s, err)
				}
				if next < len(c.After) && c.After[next].Step == s {
					sameBits(t, c.Name+" after step "+itoa(s), p, c.After[next].P)
					next++
				}
			}
			if next != len(c.After) {
				t.Fatalf("%s: %d of %d checkpoints reached", c.Name, next, len(c.After))
			}
		}
	})
}

func TestGoldenStepRows(t *testing.T) {
	doc := loadGolden(t)
	forEachLevel(t, func(t *testing.T) {
		for _, c := range doc.Rows {
			for _, compact := range []bool{false, true} {
				p := loss.Matrix{Rows: c.R, Cols: c.D, Data: append([]float32(nil), c.P0...)}
				var st optim.State
				for i, call := range c.Calls {
					g := loss.Matrix{Rows: len(call.Rows), Cols: c.D, Data: call.Grads}
					if !compact {
						// p's shape, NaN outside the listed rows: never read
						g = loss.Matrix{Rows: c.R, Cols: c.D, Data: make([]float32, c.R*c.D)}
						for k := range g.Data {
							g.Data[k] = float32(math.NaN())
						}
						for k, r := range call.Rows {
							copy(g.Row(int(r)), call.Grads[k*c.D:(k+1)*c.D])
						}
					}
					var err error
					if c.Kind == "sgd" {
						err = c.HP.sgd().StepRows(p, g, call.Rows, &st)
					} else {
						err = c.HP.adamw().StepRows(p, g, call.Rows, &st)
					}
					if err != nil {
						t.Fatalf("%s call %d: %v", c.Name, i, err)
					}
				}
				sameBits(t, c.Name, p.Data, c.P)
			}
		}
	})
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
