package loss_test

import (
	"errors"
	"fmt"
	"math/rand"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/loss"
)

// A full training step: a linear layer maps inputs to embeddings, ArcFace
// scores them against the class weights, and SGD updates both from the
// gradients. Center loss, weighted by λ = 0.01, adds λ·∂Lc/∂emb into the
// same dx buffer (Accumulate), so the step needs one gradient buffer per
// tensor.
func Example_trainingStep() {
	const (
		n, in, d, c = 32, 16, 8, 4 // batch, input width, embedding, classes
		lr          = 0.05
	)
	r := rand.New(rand.NewSource(1))
	randn := func(k int, sd float64) []float32 {
		v := make([]float32, k)
		for i := range v {
			v[i] = float32(r.NormFloat64() * sd)
		}
		return v
	}
	// Inputs: four noisy prototypes, one per class.
	protos := randn(c*in, 1)
	inputs := make([]float32, n*in)
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(i % c)
		for k := 0; k < in; k++ {
			inputs[i*in+k] = protos[int(labels[i])*in+k] + float32(r.NormFloat64()*0.8)
		}
	}
	layer := randn(d*in, 0.25) // D×in, embeddings = inputs·layerᵀ
	w := loss.Matrix{Rows: c, Cols: d, Data: randn(c*d, 1)}

	head := loss.ArcFace(16, 0.3)
	center := &loss.Center{Centers: loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}, Alpha: 0.5, Lambda: 0.01, Accumulate: true}
	if err := errors.Join(head.Validate(), center.Validate()); err != nil {
		panic(err) // reject bad hyper-parameters before any data is loaded
	}
	emb := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
	demb := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
	dw := loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
	dlayer := make([]float32, d*in)

	for step := 0; step < 30; step++ {
		// forward: emb = inputs·layerᵀ (N×D)
		asm.GemmNT(n, d, in, 1, inputs, in, layer, in, 0, emb.Data, d)
		l, err := head.Loss(emb, w, labels, &demb, &dw) // demb = ∂L/∂emb
		if err != nil {
			panic(err)
		}
		lc, err := center.Loss(emb, labels, &demb) // demb += λ·∂Lc/∂emb; lc = λ·Lc
		if err != nil {
			panic(err)
		}
		if err := center.Update(emb, labels); err != nil {
			panic(err)
		}
		if step%10 == 0 || step == 29 {
			fmt.Printf("step %2d arcface %.2f center %.4f\n", step, l, lc)
		}
		// backward through the layer: dlayer = dembᵀ·inputs (D×in)
		asm.GemmTN(d, in, n, 1, demb.Data, d, inputs, in, 0, dlayer, in)
		// SGD
		for k, g := range dlayer {
			layer[k] -= lr * g
		}
		for k, g := range dw.Data {
			w.Data[k] -= lr * g
		}
	}
	// Output:
	// step  0 arcface 5.91 center 0.0564
	// step 10 arcface 0.05 center 0.0188
	// step 20 arcface 0.02 center 0.0185
	// step 29 arcface 0.02 center 0.0183
}
