package eval

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// TestInterpSlinear18Rules checks the plateau and end rules stated on
// Verification on hand-made curves (y_i = i, so the result names the index).
func TestInterpSlinear18Rules(t *testing.T) {
	idx := func(i int) float64 { return float64(i) }
	for _, c := range []struct {
		name string
		x    []float64
		f    float64
		want float64
	}{
		{"strictly inside a segment", []float64{0, 0.25, 0.75, 1}, 0.5, 1.5},
		{"on a plateau: its last point", []float64{0, 0, 0.5, 0.5, 0.5, 1}, 0.5, 4},
		{"on the zero plateau: its last point", []float64{0, 0, 0, 0.5, 1}, 0, 2},
		{"between plateaus: last of the lower to first of the upper", []float64{0, 0.25, 0.25, 0.75, 0.75, 1}, 0.5, 2.5},
		{"at the maximum, rising end: the last point", []float64{0, 0.5, 0.5, 1}, 1, 3},
		{"at the maximum, flat top: 0", []float64{0, 0.5, 1, 1}, 1, 0},
		{"flat everywhere: 0", []float64{0, 0, 0, 0}, 0, 0},
	} {
		if got := interpSlinear18(c.x, idx, c.f); got != c.want {
			t.Errorf("%s: interp(%v, %v) = %v, want %v", c.name, c.x, c.f, got, c.want)
		}
	}
}

// TestKFold: sklearn's fold sizes.
func TestKFold(t *testing.T) {
	got := kfold(53, 7)
	want := []fold{{0, 8}, {8, 16}, {16, 24}, {24, 32}, {32, 39}, {39, 46}, {46, 53}}
	if !slices.Equal(got, want) {
		t.Fatalf("kfold(53, 7) = %v, want %v", got, want)
	}
}

// TestPairwiseSumOrder: numpy's order, checked where it differs from a plain
// loop (1e16 absorbs a 1 added to it, but not 1+1 added first).
func TestPairwiseSumOrder(t *testing.T) {
	v := []float64{1e16, 0, 1, 1, 0, 0, 0, 0} // (1e16+0) + (1+1): 1e16+2; a plain loop loses both 1s
	if got := pairwiseSum(v); got != 1e16+2 {
		t.Fatalf("pairwiseSum = %v, want 1e16+2", got)
	}
	var plain float64
	for _, x := range v {
		plain += x
	}
	if plain == 1e16+2 {
		t.Fatal("the case does not tell the orders apart")
	}
}

func pairs2D() (a, b loss.Matrix, same []bool) {
	a = loss.Matrix{Rows: 8, Cols: 2, Data: []float32{1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 2, 2, 0, 2, 0}}
	b = loss.Matrix{Rows: 8, Cols: 2, Data: []float32{1, 0.1, 0, 1, 0, 2, -1, 0, 1, 0.9, 3, 0, 3, 0.2, -3, 0}}
	same = []bool{true, false, true, false, true, false, true, false}
	return a, b, same
}

func TestVerificationErrors(t *testing.T) {
	a, b, same := pairs2D()
	bad := func(m loss.Matrix, i int, v float32) loss.Matrix {
		m.Data = slices.Clone(m.Data)
		m.Data[i] = v
		return m
	}
	for _, c := range []struct {
		name string
		a, b loss.Matrix
		same []bool
		opt  VerifyOptions
		want error
	}{
		{"b rows", a, loss.Matrix{Rows: 7, Cols: 2, Data: b.Data[:14]}, same, VerifyOptions{Folds: 2}, loss.ErrShape},
		{"b cols", a, loss.Matrix{Rows: 16, Cols: 1, Data: b.Data}, same, VerifyOptions{Folds: 2}, loss.ErrShape},
		{"data length", loss.Matrix{Rows: 8, Cols: 2, Data: a.Data[:15]}, b, same, VerifyOptions{Folds: 2}, loss.ErrShape},
		{"same length", a, b, same[:7], VerifyOptions{Folds: 2}, loss.ErrShape},
		{"NaN in a", bad(a, 3, float32(math.NaN())), b, same, VerifyOptions{Folds: 2}, loss.ErrNonFinite},
		{"Inf in b", a, bad(b, 0, float32(math.Inf(-1))), same, VerifyOptions{Folds: 2}, loss.ErrNonFinite},
		{"negative folds", a, b, same, VerifyOptions{Folds: -1}, loss.ErrParam},
		{"default 10 folds > 8 pairs", a, b, same, VerifyOptions{}, loss.ErrParam},
		{"9 folds > 8 pairs", a, b, same, VerifyOptions{Folds: 9}, loss.ErrParam},
		{"FAR < 0", a, b, same, VerifyOptions{Folds: 2, FARTarget: -1e-3}, loss.ErrParam},
		{"FAR NaN", a, b, same, VerifyOptions{Folds: 2, FARTarget: math.NaN()}, loss.ErrParam},
		{"no pairs", loss.Matrix{Cols: 2}, loss.Matrix{Cols: 2}, nil, VerifyOptions{Folds: 1}, loss.ErrParam},
		{"a fold of one kind (8 folds of 1)", a, b, same, VerifyOptions{Folds: 8}, loss.ErrParam},
		{"no different pair at all (one fold)", a, b, []bool{true, true, true, true, true, true, true, true}, VerifyOptions{Folds: 1}, loss.ErrParam},
	} {
		before := [][]float32{slices.Clone(c.a.Data), slices.Clone(c.b.Data)}
		_, err := Verification(c.a, c.b, c.same, c.opt)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
		if !sameBits(before[0], c.a.Data) || !sameBits(before[1], c.b.Data) {
			t.Errorf("%s: inputs changed", c.name)
		}
	}
	// The same pairs are fine with 4 folds of 2 (one of each kind in each).
	if _, err := Verification(a, b, same, VerifyOptions{Folds: 4}); err != nil {
		t.Fatalf("4 folds: %v", err)
	}
}

func sameBits(x, y []float32) bool {
	return slices.EqualFunc(x, y, func(p, q float32) bool { return math.Float32bits(p) == math.Float32bits(q) })
}

// TestVerificationHand: a case small enough to do by hand. One fold, so
// train = test. Distances: pairs 0, 2, 4, 6 (same) are ≈ 0.0099, 0, 0.0028,
// 0.0044 and pairs 1, 3, 5, 7 (different) are 2, 2, 2, 4 (orthogonal or
// opposite, exact). Every threshold in (0.0099, 2] separates them; the
// first is 0.01.
func TestVerificationHand(t *testing.T) {
	a, b, same := pairs2D()
	r, err := Verification(a, b, same, VerifyOptions{Folds: 1, FARTarget: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Accuracy != 1 || r.AccuracyStd != 0 || r.Threshold != 0.01 {
		t.Errorf("accuracy %v ± %v at %v, want 1 ± 0 at 0.01", r.Accuracy, r.AccuracyStd, r.Threshold)
	}
	// FAR is 0 up to t = 2.000 and 3/4 from 2.001 on: the target 0.5 lies
	// between, so the threshold interpolates into (2.000, 2.001), which
	// accepts the three different pairs at distance 2.
	if r.VAL != 1 || r.VALStd != 0 || r.FAR != 0.75 {
		t.Errorf("VAL %v ± %v at FAR %v, want 1 ± 0 at 0.75", r.VAL, r.VALStd, r.FAR)
	}
	if r.TPR[0] != 0 || r.FPR[0] != 0 || r.TPR[1] != 1 || r.FPR[200] != 0 || r.FPR[201] != 0.75 || r.FPR[399] != 0.75 {
		t.Errorf("ROC: TPR[0..1] %v, FPR[200..201] %v, FPR[399] %v", r.TPR[:2], r.FPR[200:202], r.FPR[399])
	}
	// At FAR 0.75 = the curve's maximum, a flat top: threshold 0, nothing accepted.
	r, _ = Verification(a, b, same, VerifyOptions{Folds: 1, FARTarget: 0.75})
	if r.VAL != 0 || r.FAR != 0 {
		t.Errorf("flat top: VAL %v at FAR %v, want 0 at 0", r.VAL, r.FAR)
	}
}
