package loss_test

import (
	"fmt"

	"github.com/marginloss/marginloss/loss"
)

// Two embeddings in 2-D, three classes on the unit circle.
func exampleData() (x, w loss.Matrix, labels []int32) {
	x = loss.Matrix{Rows: 2, Cols: 2, Data: []float32{0.9, 0.1, -0.2, 1.0}}
	w = loss.Matrix{Rows: 3, Cols: 2, Data: []float32{1, 0, 0, 1, -1, 0}}
	return x, w, []int32{0, 1}
}

func ExampleArcFace() {
	x, w, labels := exampleData()
	dx := loss.Matrix{Rows: 2, Cols: 2, Data: make([]float32, 4)}
	dw := loss.Matrix{Rows: 3, Cols: 2, Data: make([]float32, 6)}
	l, err := loss.ArcFace(4, 0.5).Loss(x, w, labels, &dx, &dw)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f\n", l)
	// Output: loss 0.0870
}

func ExampleCosFace() {
	x, w, labels := exampleData()
	l, err := loss.CosFace(4, 0.35).Loss(x, w, labels, nil, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f\n", l)
	// Output: loss 0.1529
}

func ExampleCombinedMargin() {
	x, w, labels := exampleData()
	l, err := loss.CombinedMargin(4, 1, 0.3, 0.2).Loss(x, w, labels, nil, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f\n", l)
	// Output: loss 0.1236
}

func ExampleSphereFace() {
	x, w, labels := exampleData()
	l, err := loss.SphereFace(4, 5).Loss(x, w, labels, nil, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f\n", l)
	// Output: loss 0.5323
}

func ExampleLargeMargin() {
	x, w, labels := exampleData()
	head := loss.LargeMargin(2, 100)
	sched := loss.DefaultLambdaSchedule()
	for _, iter := range []int{0, 100, 100000} {
		head.SetLambda(sched.At(iter))
		l, err := head.Loss(x, w, labels, nil, nil)
		if err != nil {
			panic(err)
		}
		fmt.Printf("iter %d λ %.1f loss %.4f\n", iter, head.Lambda(), l)
	}
	// Output:
	// iter 0 λ 1000.0 loss 0.5195
	// iter 100 λ 76.9 loss 0.5197
	// iter 100000 λ 5.0 loss 0.5221
}

func ExampleFocal_Softmax() {
	logits := loss.Matrix{Rows: 2, Cols: 3, Data: []float32{2, 0, -1, 0.5, 0.5, 3}}
	l, err := loss.Focal{Gamma: 2}.Softmax(logits, []int32{0, 1}, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f\n", l)
	// Output: loss 1.1477
}

func ExampleFocal_Sigmoid() {
	logits := loss.Matrix{Rows: 1, Cols: 3, Data: []float32{2, -1, 0}}
	targets := loss.Matrix{Rows: 1, Cols: 3, Data: []float32{1, 0, 1}}
	l, err := loss.Focal{Gamma: 2, Alpha: 0.25}.Sigmoid(logits, targets, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f\n", l)
	// Output: loss 0.0203
}

func ExampleCenter() {
	c := &loss.Center{Centers: loss.Matrix{Rows: 2, Cols: 2, Data: []float32{0, 0, 1, 1}}, Alpha: 0.5}
	x := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 0, 1, 2}}
	labels := []int32{0, 1}
	l, err := c.Loss(x, labels, nil)
	if err != nil {
		panic(err)
	}
	if err := c.Update(x, labels); err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f centers %v\n", l, c.Centers.Data)
	// Output: loss 0.5000 centers [0.25 0 1 1.25]
}

func ExampleBackend() {
	b := loss.Backend()
	fmt.Println(b == "generic" || b == "avx2" || b == "avx512" || b == "neon")
	// Output: true
}
