package main

import (
	"fmt"

	"github.com/marginloss/marginloss/eval"
	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
	"github.com/marginloss/marginloss/loss"
)

// evalResult holds the test metrics.
type evalResult struct {
	Accuracy float64 // nearest class weight by cosine (eval.Top1)
	// Verification by insightface's protocol (eval.Verification, 10 folds)
	// on disjoint test pairs, half same digit, half different; Pairs is
	// their number and Err says why there is no score (too few images).
	Verify eval.VerifyResult
	Pairs  int
	Err    error
}

// evaluate scores test embeddings emb (n×d) with labels against the class
// weights w (C×d): the accuracy of the nearest class by cosine, and the
// verification of the pairs of mnistmlp.VerificationPairs.
func evaluate(emb []float32, labels []int32, w []float32, d int) evalResult {
	n := len(labels)
	var r evalResult
	if n > 0 {
		r.Accuracy, r.Err = eval.Top1(loss.Matrix{Rows: n, Cols: d, Data: emb}, loss.Matrix{Rows: len(w) / d, Cols: d, Data: w}, labels)
	}
	ia, ib, same := mnistmlp.VerificationPairs(labels)
	r.Pairs = len(same)
	a := loss.Matrix{Rows: len(same), Cols: d, Data: make([]float32, len(same)*d)}
	b := loss.Matrix{Rows: len(same), Cols: d, Data: make([]float32, len(same)*d)}
	for k := range same {
		copy(a.Row(k), emb[ia[k]*d:(ia[k]+1)*d])
		copy(b.Row(k), emb[ib[k]*d:(ib[k]+1)*d])
	}
	v, err := eval.Verification(a, b, same, eval.VerifyOptions{})
	if r.Err == nil {
		r.Verify, r.Err = v, err
	}
	return r
}

// verifyDesc is the verification part of the result line.
func (r evalResult) verifyDesc() string {
	if r.Err != nil {
		return fmt.Sprintf("verification n/a (%v)", r.Err)
	}
	v := r.Verify
	return fmt.Sprintf("verification %.4f ± %.4f, VAL %.4f ± %.4f @ FAR %.0e (%d disjoint pairs, %d folds)",
		v.Accuracy, v.AccuracyStd, v.VAL, v.VALStd, eval.DefaultFARTarget, r.Pairs, eval.DefaultFolds)
}
