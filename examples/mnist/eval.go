package main

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
)

// verifyPairs is the number of test pairs of the verification score, half
// with the same digit and half with different digits.
const (
	verifyPairs = 6000
	verifySeed  = 20150320 // fixed: the same pairs for every run and -seed
)

// evalResult holds the test metrics.
type evalResult struct {
	Accuracy  float64 // nearest class weight by cosine
	Verify    float64 // pair verification accuracy at the best threshold
	Threshold float64 // that threshold on the cosine
}

// normalizeRows returns a copy of the n×d matrix with each row scaled to
// unit length (zero rows stay zero).
func normalizeRows(a []float32, d int) []float32 {
	out := make([]float32, len(a))
	for i := 0; i+d <= len(a); i += d {
		var s float64
		for _, v := range a[i : i+d] {
			s += float64(v) * float64(v)
		}
		if s == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(s))
		for j, v := range a[i : i+d] {
			out[i+j] = v * inv
		}
	}
	return out
}

func dot(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

// evaluate scores test embeddings emb (n×d) with labels against the class
// weights w (C×d): the accuracy of the nearest class by cosine, and the
// verification accuracy on a fixed set of same/different pairs at the best
// cosine threshold.
func evaluate(emb []float32, labels []int32, w []float32, d int) evalResult {
	n := len(labels)
	e := normalizeRows(emb, d)
	wn := normalizeRows(w, d)
	C := len(w) / d
	correct := 0
	for i := 0; i < n; i++ {
		best, arg := math.Inf(-1), -1
		for j := 0; j < C; j++ {
			if c := dot(e[i*d:(i+1)*d], wn[j*d:(j+1)*d]); c > best {
				best, arg = c, j
			}
		}
		if int32(arg) == labels[i] {
			correct++
		}
	}
	r := evalResult{Accuracy: float64(correct) / float64(max(n, 1))}
	r.Verify, r.Threshold = verification(e, labels, d)
	return r
}

// scoredPair is one verification pair: its cosine and whether the two
// images show the same digit.
type scoredPair struct {
	cos  float64
	same bool
}

// samplePairs draws verifyPairs index pairs (i ≠ j) from labels, half of the
// same class and half of different classes, with a fixed seed.
func samplePairs(labels []int32) [][2]int {
	byClass := make([][]int, mnistmlp.NumClass)
	for i, y := range labels {
		byClass[y] = append(byClass[y], i)
	}
	rng := rand.New(rand.NewPCG(verifySeed, 1))
	pairs := make([][2]int, 0, verifyPairs)
	n := len(labels)
	if n < 2 {
		return nil
	}
	for tries := 0; len(pairs) < verifyPairs/2 && tries < 100*verifyPairs; tries++ {
		i := rng.IntN(n)
		cls := byClass[labels[i]]
		if len(cls) < 2 {
			continue
		}
		j := cls[rng.IntN(len(cls))]
		if j != i {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	for tries := 0; len(pairs) < verifyPairs && tries < 100*verifyPairs; tries++ {
		i, j := rng.IntN(n), rng.IntN(n)
		if labels[i] != labels[j] {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	return pairs
}

// verification returns the share of pairs judged correctly (same when the
// cosine exceeds the threshold) at the best threshold, and that threshold.
// e holds unit rows.
func verification(e []float32, labels []int32, d int) (acc, threshold float64) {
	pairs := samplePairs(labels)
	if len(pairs) == 0 {
		return 0, 0
	}
	sp := make([]scoredPair, len(pairs))
	nSame := 0
	for k, p := range pairs {
		sp[k] = scoredPair{
			cos:  dot(e[p[0]*d:(p[0]+1)*d], e[p[1]*d:(p[1]+1)*d]),
			same: labels[p[0]] == labels[p[1]],
		}
		if sp[k].same {
			nSame++
		}
	}
	slices.SortStableFunc(sp, func(a, b scoredPair) int {
		switch {
		case a.cos < b.cos:
			return -1
		case a.cos > b.cos:
			return 1
		}
		return 0
	})
	// Threshold below everything: all pairs judged "same".
	best, bestT := nSame, sp[0].cos-1e-6
	correct := nSame
	for k := 0; k < len(sp); k++ {
		// Move the threshold to sp[k].cos: pair k becomes "different".
		if sp[k].same {
			correct--
		} else {
			correct++
		}
		if k+1 < len(sp) && sp[k+1].cos == sp[k].cos {
			continue // ties move together
		}
		if correct > best {
			best = correct
			if k+1 < len(sp) {
				bestT = (sp[k].cos + sp[k+1].cos) / 2
			} else {
				bestT = sp[k].cos + 1e-6
			}
		}
	}
	return float64(best) / float64(len(sp)), bestT
}
