package eval

import (
	"math/rand/v2"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// BenchmarkVerification: an LFW-sized protocol, 6000 pairs of 512-d
// embeddings, 10 folds.
func BenchmarkVerification(b *testing.B) {
	const n, d = 6000, 512
	r := rand.New(rand.NewPCG(1, 2))
	x := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
	y := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
	same := make([]bool, n)
	for i := range n {
		same[i] = i%2 == 0
		for k := range d {
			v := float32(r.NormFloat64())
			x.Data[i*d+k] = v
			y.Data[i*d+k] = float32(r.NormFloat64())
			if same[i] {
				y.Data[i*d+k] = v + 0.8*y.Data[i*d+k]
			}
		}
	}
	for b.Loop() {
		if _, err := Verification(x, y, same, VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
