package loss_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/marginloss/marginloss/loss"
)

// The same ArcFace head at both precisions on random data (N=64, D=128,
// C=1000): BFloat16 rounds the GEMM operands to bfloat16, so its loss
// differs from Float32's in the fourth or fifth significant digit.
func ExampleMarginSoftmax_precision() {
	rng := rand.New(rand.NewPCG(1, 2))
	n, d, c := 64, 128, 1000
	x, w := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}, loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
	for _, m := range []loss.Matrix{x, w} {
		for i := range m.Data {
			m.Data[i] = float32(rng.NormFloat64())
		}
	}
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(rng.IntN(c))
	}
	head := loss.ArcFace(64, 0.5)
	l32, err := head.Loss(x, w, labels, nil, nil)
	if err != nil {
		panic(err)
	}
	head.Precision = loss.BFloat16
	l16, err := head.Loss(x, w, labels, nil, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("float32 %.2f, bfloat16 %.2f, within 1e-3 relative: %v\n", l32, l16, math.Abs(float64(l16-l32)) <= 1e-3*float64(l32))
	// Output: float32 49.30, bfloat16 49.30, within 1e-3 relative: true
}
