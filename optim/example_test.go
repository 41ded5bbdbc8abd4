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
