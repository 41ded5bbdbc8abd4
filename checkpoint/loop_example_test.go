package checkpoint_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/eval"
	"github.com/marginloss/marginloss/loss"
)

// A training loop around the head: Partial FC over ArcFace, an SGD step on
// W, verification by insightface's protocol, and a checkpoint that a later
// run resumes from. The embeddings x stand for a backbone's output.
func Example_trainingLoop() {
	const n, d, c = 400, 8, 20
	r := rand.New(rand.NewPCG(1, 2))
	x := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
	w := loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
	dw := loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
	for i := range w.Data {
		w.Data[i] = float32(r.NormFloat64()) // the initial W: the class prototypes' stand-in
	}
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(i % c)
		for k := range d { // a class prototype plus noise
			x.Data[i*d+k] = w.Data[int(labels[i])*d+k] + float32(r.NormFloat64()*0.15)
		}
	}
	for i := range w.Data {
		w.Data[i] = float32(r.NormFloat64()) // W starts random
	}
	pfc := &loss.PartialFC{Head: loss.ArcFace(16, 0.2), SampleRate: 0.5, Seed: 7}
	for range 100 {
		if _, err := pfc.Loss(x, w, labels, nil, &dw); err != nil {
			panic(err)
		}
		for k, g := range dw.Data {
			w.Data[k] -= 2 * g // SGD; an optimiser's step goes here
		}
	}
	top1, _ := eval.Top1(x, w, labels)
	// Pairs: rows i and i+c are the same class, rows i and i+1 are not.
	a := loss.Matrix{Rows: n - c, Cols: d, Data: x.Data[:(n-c)*d]}
	b := loss.Matrix{Rows: n - c, Cols: d, Data: make([]float32, (n-c)*d)}
	same := make([]bool, n-c)
	for i := range same {
		same[i] = i%2 == 0
		j := i + 1 + (c-1)*(1-i%2) // i+c or i+1
		copy(b.Data[i*d:(i+1)*d], x.Data[j*d:(j+1)*d])
	}
	v, err := eval.Verification(a, b, same, eval.VerifyOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("top-1 %.2f, verification %.2f, VAL@FAR=1e-3 %.2f\n", top1, v.Accuracy, v.VAL)

	path := filepath.Join(os.TempDir(), "marginloss-example.safetensors")
	defer os.Remove(path)
	var f checkpoint.File
	f.PutMatrix("w", w)
	f.Save("partialfc.", checkpoint.PartialFC(pfc))
	if err := f.WriteFile(path); err != nil {
		panic(err)
	}
	// A later run: the same configuration, then the saved state.
	g, err := checkpoint.ReadFile(path)
	if err != nil {
		panic(err)
	}
	w2 := loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
	pfc2 := &loss.PartialFC{Head: loss.ArcFace(16, 0.2), SampleRate: 0.5, Seed: 7}
	fmt.Println(g.Matrix("w", w2), g.Load("partialfc.", checkpoint.PartialFC(pfc2)), pfc2.Calls())
	// Output:
	// top-1 1.00, verification 1.00, VAL@FAR=1e-3 1.00
	// <nil> <nil> 100
}
