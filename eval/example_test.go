package eval_test

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/eval"
	"github.com/marginloss/marginloss/loss"
)

// Verification on 200 pairs of 2-D embeddings: a same pair differs by a
// small angle, a different pair by a large one, but one pair in ten is a
// different pair nearly as close as a same pair. (The figures agree with
// insightface's evaluate() on the same float32 inputs.)
func ExampleVerification() {
	const n = 200
	a := loss.Matrix{Rows: n, Cols: 2, Data: make([]float32, 2*n)}
	b := loss.Matrix{Rows: n, Cols: 2, Data: make([]float32, 2*n)}
	same := make([]bool, n)
	for i := range n {
		base := float64(i) * 0.7
		same[i] = i%2 == 0
		gap := 0.02 + 0.002*float64(i%50) // same: 0.02 … 0.118 rad
		switch {
		case i%10 == 1:
			gap = 0.1 + 0.001*float64(i%50) // close different: 0.101 … 0.141 rad
		case !same[i]:
			gap = 1 + 0.01*float64(i%50) // different: 1 … 1.49 rad
		}
		a.Data[2*i], a.Data[2*i+1] = float32(math.Cos(base)), float32(math.Sin(base))
		b.Data[2*i], b.Data[2*i+1] = float32(math.Cos(base+gap)), float32(math.Sin(base+gap))
	}
	r, err := eval.Verification(a, b, same, eval.VerifyOptions{}) // 10 folds, FAR 1e-3
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("accuracy %.4f ± %.4f at squared distance %.3f\n", r.Accuracy, r.AccuracyStd, r.Threshold)
	fmt.Printf("VAL %.4f ± %.4f @ FAR %.4f\n", r.VAL, r.VALStd, r.FAR)
	// Output:
	// accuracy 0.9200 ± 0.0980 at squared distance 0.010
	// VAL 0.8400 ± 0.1960 @ FAR 0.0000
}

// Top1 scores embeddings against class centres, here the rows of a
// classifier's weight matrix.
func ExampleTop1() {
	centers := loss.Matrix{Rows: 3, Cols: 2, Data: []float32{1, 0, 0, 1, -1, -1}}
	emb := loss.Matrix{Rows: 4, Cols: 2, Data: []float32{0.9, 0.2, 0.1, 0.8, -0.5, -0.7, 0.6, 0.5}}
	acc, err := eval.Top1(emb, centers, []int32{0, 1, 2, 1})
	fmt.Println(acc, err)
	// Output: 0.75 <nil>
}
