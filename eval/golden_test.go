package eval

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// The goldens come from a verbatim copy of insightface's verification
// functions run by testdata/eval_golden.py; regenerate them with
//
//	/usr/bin/python3 testdata/eval_golden.py

type goldenEvalCase struct {
	Name        string
	Note        string
	Folds       int
	FARTarget   float64 `json:"far_target"`
	Rows, Cols  int
	A, B        []int32
	Same        []bool
	Accuracy    float64
	AccuracyStd float64 `json:"accuracy_std"`
	Threshold   float64
	VAL         float64 `json:"val"`
	VALStd      float64 `json:"val_std"`
	FAR         float64 `json:"far"`
	TPR         []float64
	FPR         []float64
	Raises      string
}

type goldenEvalDoc struct {
	Scale  float64
	Cases  []goldenEvalCase
	Errors []goldenEvalCase
}

func loadGoldenEval(t *testing.T) goldenEvalDoc {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "golden_eval.json"))
	if err != nil {
		t.Fatalf("missing golden file; regenerate with /usr/bin/python3 testdata/eval_golden.py: %v", err)
	}
	var doc goldenEvalDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Cases) == 0 || len(doc.Errors) == 0 || doc.Scale != 1.0/256 {
		t.Fatalf("golden file holds %d cases, %d error cases, scale %v", len(doc.Cases), len(doc.Errors), doc.Scale)
	}
	return doc
}

func (c goldenEvalCase) inputs(scale float64) (a, b loss.Matrix, opt VerifyOptions) {
	conv := func(v []int32) []float32 {
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(float64(x) * scale) // exact: |x| < 2^15 on a 2^-8 grid
		}
		return out
	}
	a = loss.Matrix{Rows: c.Rows, Cols: c.Cols, Data: conv(c.A)}
	b = loss.Matrix{Rows: c.Rows, Cols: c.Cols, Data: conv(c.B)}
	return a, b, VerifyOptions{Folds: c.Folds, FARTarget: c.FARTarget}
}

// TestVerificationGolden compares every output with insightface's. They are
// all ratios of counts combined in numpy's order, so they must agree to the
// bit; only a distance within an ulp of a threshold could move a count, and
// the generator rejects cases where the normalisation's rounding matters.
func TestVerificationGolden(t *testing.T) {
	doc := loadGoldenEval(t)
	for _, c := range doc.Cases {
		t.Run(c.Name, func(t *testing.T) {
			a, b, opt := c.inputs(doc.Scale)
			got, err := Verification(a, b, c.Same, opt)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct {
				name      string
				got, want float64
			}{
				{"Accuracy", got.Accuracy, c.Accuracy},
				{"AccuracyStd", got.AccuracyStd, c.AccuracyStd},
				{"Threshold", got.Threshold, c.Threshold},
				{"VAL", got.VAL, c.VAL},
				{"VALStd", got.VALStd, c.VALStd},
				{"FAR", got.FAR, c.FAR},
			} {
				if f.got != f.want {
					t.Errorf("%s = %.17g, insightface %.17g (%s)", f.name, f.got, f.want, c.Note)
				}
			}
			if len(got.TPR) != ROCThresholds || len(c.TPR) != ROCThresholds || len(got.FPR) != ROCThresholds || len(c.FPR) != ROCThresholds {
				t.Fatalf("ROC lengths: got %d/%d, golden %d/%d", len(got.TPR), len(got.FPR), len(c.TPR), len(c.FPR))
			}
			for i := range got.TPR {
				if got.TPR[i] != c.TPR[i] || got.FPR[i] != c.FPR[i] {
					t.Fatalf("ROC at t=%v: TPR %.17g FPR %.17g, insightface %.17g %.17g", rocThreshold(i), got.TPR[i], got.FPR[i], c.TPR[i], c.FPR[i])
				}
			}
		})
	}
}

// TestVerificationGoldenErrors: where insightface raises, Verification
// returns ErrParam.
func TestVerificationGoldenErrors(t *testing.T) {
	doc := loadGoldenEval(t)
	for _, c := range doc.Errors {
		t.Run(c.Name, func(t *testing.T) {
			a, b, opt := c.inputs(doc.Scale)
			if c.Rows == 0 {
				a.Cols, b.Cols = 2, 2
			}
			_, err := Verification(a, b, c.Same, opt)
			if !errors.Is(err, loss.ErrParam) {
				t.Fatalf("err = %v, want ErrParam (insightface: %s)", err, c.Raises)
			}
			t.Logf("%v (insightface: %s)", err, c.Raises)
		})
	}
}

// TestVerificationGoldenDeterministic: the same bits on every call, whatever
// the scheduler does.
func TestVerificationGoldenDeterministic(t *testing.T) {
	doc := loadGoldenEval(t)
	c := doc.Cases[0]
	a, b, opt := c.inputs(doc.Scale)
	first, err := Verification(a, b, c.Same, opt)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, _ := Verification(a, b, c.Same, opt)
		if math.Float64bits(again.Accuracy) != math.Float64bits(first.Accuracy) || math.Float64bits(again.VAL) != math.Float64bits(first.VAL) {
			t.Fatal("results differ between calls")
		}
	}
}
