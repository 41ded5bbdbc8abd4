package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/marginloss/marginloss/eval"
	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
	"github.com/marginloss/marginloss/loss"
)

// verifySeed fixes the verification pairs: the same pairs for every run and
// -seed.
const verifySeed = 20150320

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
// verification of the pairs of verificationPairs.
func evaluate(emb []float32, labels []int32, w []float32, d int) evalResult {
	n := len(labels)
	var r evalResult
	if n > 0 {
		r.Accuracy, r.Err = eval.Top1(loss.Matrix{Rows: n, Cols: d, Data: emb}, loss.Matrix{Rows: len(w) / d, Cols: d, Data: w}, labels)
	}
	ia, ib, same := verificationPairs(labels)
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

// verificationPairs splits the test images into disjoint pairs (no image in
// two pairs), as many same-digit pairs as different-digit ones, about n/4
// of each, interleaved (same, different, same, …) so that every fold of
// the protocol holds both kinds. The split depends on the labels and
// verifySeed alone: a fixed permutation orders the images; walking it, an
// image pairs with the waiting image of its digit until the same pairs are
// done; the images left pair, in order, with the latest unpaired image of
// another digit.
func verificationPairs(labels []int32) (ia, ib []int, same []bool) {
	n := len(labels)
	half := n / 4
	perm := rand.New(rand.NewPCG(verifySeed, 1)).Perm(n)
	var waiting [mnistmlp.NumClass]int
	for c := range waiting {
		waiting[c] = -1
	}
	var sa, sb, rest []int
	for _, i := range perm {
		c := labels[i]
		switch {
		case len(sa) == half:
			rest = append(rest, i)
		case waiting[c] >= 0:
			sa, sb = append(sa, waiting[c]), append(sb, i)
			waiting[c] = -1
		default:
			waiting[c] = i
		}
	}
	for _, i := range waiting {
		if i >= 0 {
			rest = append(rest, i)
		}
	}
	var da, db, open []int
	for _, i := range rest {
		if len(da) == len(sa) {
			break
		}
		k := len(open) - 1
		for k >= 0 && labels[open[k]] == labels[i] {
			k--
		}
		if k < 0 {
			open = append(open, i)
			continue
		}
		da, db = append(da, open[k]), append(db, i)
		open = append(open[:k], open[k+1:]...)
	}
	m := min(len(sa), len(da))
	for k := 0; k < m; k++ {
		ia, ib, same = append(ia, sa[k], da[k]), append(ib, sb[k], db[k]), append(same, true, false)
	}
	return ia, ib, same
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
