package optim_test

import (
	"fmt"

	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// Two steps of torch.optim.SGD(lr=0.1, momentum=0.9) on one tensor.
func ExampleSGD_Step() {
	p := []float32{1, 2}
	g := []float32{0.5, -1}
	var st optim.State // zero: never stepped
	o := optim.SGD{LR: 0.1, Momentum: 0.9}
	for range 2 {
		if err := o.Step(p, g, &st); err != nil {
			panic(err)
		}
	}
	fmt.Println(p)
	// Output: [0.85499996 2.29]
}

// AdamW's first step moves each parameter by about lr against its gradient.
func ExampleAdamW_Step() {
	p := []float32{1, -1}
	var st optim.State
	o := optim.AdamW{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	if err := o.Step(p, []float32{0.3, -2}, &st); err != nil {
		panic(err)
	}
	fmt.Printf("%.4f %.4f\n", p[0], p[1])
	// Output: 0.9900 -0.9900
}

// StepRows steps only the listed rows (Partial FC's sampled classes), each
// with its own state: row 0 here takes its first step on the second call.
func ExampleAdamW_StepRows() {
	w := loss.Matrix{Rows: 3, Cols: 1, Data: []float32{1, 1, 1}}
	dw := loss.Matrix{Rows: 3, Cols: 1, Data: []float32{1, 1, 1}}
	var st optim.State
	o := optim.AdamW{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, rows := range [][]int32{{1, 2}, {0, 2}} {
		if err := o.StepRows(w, dw, rows, &st); err != nil {
			panic(err)
		}
	}
	fmt.Printf("%.2f\n", w.Data)
	// Output: [0.90 0.90 0.80]
}

// arcface_torch's schedule: warm-up over the first 10% of the steps, then a
// quadratic decay to 0.
func ExamplePolyLR() {
	s := optim.PolyLR{Base: 0.1, Warmup: 100, Total: 1000}
	for _, k := range []int{0, 50, 100, 550, 1000} {
		fmt.Printf("step %4d lr %.4f\n", k, s.At(k))
	}
	// Output:
	// step    0 lr 0.0000
	// step   50 lr 0.0500
	// step  100 lr 0.1000
	// step  550 lr 0.0250
	// step 1000 lr 0.0000
}

// Gradients of two tensors with a total norm of 13, clipped to norm 1.
func ExampleClipGradNorm() {
	a, b := []float32{3, 4}, []float32{12}
	total, err := optim.ClipGradNorm(1, a, b)
	if err != nil {
		panic(err)
	}
	fmt.Printf("total %v, clipped %.4f %.4f\n", total, a, b)
	// Output: total 13, clipped [0.2308 0.3077] [0.9231]
}

// A deterministic N(0, 0.01²) init of a 4×2 W, as arcface_torch's.
func ExampleNormal() {
	w := make([]float32, 8)
	if err := optim.Normal(w, 0, 0.01, 1); err != nil {
		panic(err)
	}
	same := make([]float32, 8)
	_ = optim.Normal(same, 0, 0.01, 1)
	fmt.Println(w[3] == same[3], w[3] != 0)
	// Output: true true
}

// The head steps W inside its backward pass (no dw buffer); the result is
// Loss into dw followed by Step, bit for bit.
func ExampleSGD_Fused() {
	x := loss.Matrix{Rows: 2, Cols: 3, Data: []float32{1, 0, 0.5, 0, 1, -0.5}}
	labels := []int32{0, 2}
	w0 := []float32{0.3, 0.1, 0, -0.2, 0.4, 0.1, 0.5, -0.5, 0.2, 0.1, 0.1, 0.1}
	opt := optim.SGD{LR: 0.1, Momentum: 0.9}

	fusedW := loss.Matrix{Rows: 4, Cols: 3, Data: append([]float32(nil), w0...)}
	var st optim.State
	head := loss.ArcFace(16, 0.3)
	head.FusedStep = opt.Fused(&st)
	for range 3 {
		if _, err := head.Loss(x, fusedW, labels, nil, nil); err != nil {
			panic(err)
		}
	}

	sepW := loss.Matrix{Rows: 4, Cols: 3, Data: append([]float32(nil), w0...)}
	dw := loss.Matrix{Rows: 4, Cols: 3, Data: make([]float32, 12)}
	var st2 optim.State
	plain := loss.ArcFace(16, 0.3)
	for range 3 {
		if _, err := plain.Loss(x, sepW, labels, nil, &dw); err != nil {
			panic(err)
		}
		if err := opt.Step(sepW.Data, dw.Data, &st2); err != nil {
			panic(err)
		}
	}
	same := true
	for k := range w0 {
		same = same && fusedW.Data[k] == sepW.Data[k]
	}
	fmt.Println("same W:", same)
	// Output: same W: true
}
