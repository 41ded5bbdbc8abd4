package asm_test

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/asm"
)

// printMatrix prints the rows×cols block of a row-major matrix with row
// stride ld, to four decimals (levels may differ in the last bits).
func printMatrix(rows, cols int, s []float32, ld int) {
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			fmt.Printf(" %8.4f", s[i*ld+j])
		}
		fmt.Println()
	}
}

// Cosine logits of two unit embeddings against three unit class centres:
// C = X·Wᵀ with X 2×3 and W 3×3, one row per class.
func ExampleGemmNT() {
	x := []float32{
		1, 0, 0,
		0.6, 0.8, 0,
	}
	w := []float32{
		1, 0, 0,
		0, 1, 0,
		0, 0.6, 0.8,
	}
	c := make([]float32, 2*3)
	asm.GemmNT(2, 3, 3, 1, x, 3, w, 3, 0, c, 3)
	printMatrix(2, 3, c, 3)
	// Output:
	//    1.0000   0.0000   0.0000
	//    0.6000   0.8000   0.4800
}

// The gradient of C = X·Wᵀ with respect to X is dX = dC·W: GemmNN with
// dC 2×3 and W 3×2. β = 1 accumulates into dX instead of overwriting it.
func ExampleGemmNN() {
	dC := []float32{
		1, 0, -1,
		0.5, 0.5, 0,
	}
	w := []float32{
		1, 2,
		3, 4,
		5, 6,
	}
	dX := []float32{
		10, 10,
		10, 10,
	}
	asm.GemmNN(2, 2, 3, 1, dC, 3, w, 2, 1, dX, 2)
	printMatrix(2, 2, dX, 2)
	// Output:
	//    6.0000   6.0000
	//   12.0000  13.0000
}

// The gradient of C = X·Wᵀ with respect to W is dW = dCᵀ·X: GemmTN with
// dC 2×3 (k×m) and X 2×2 (k×n). Here C's row stride ldc = 3 leaves a
// column of padding, which is not touched.
func ExampleGemmTN() {
	dC := []float32{
		1, 0, -1,
		0.5, 0.5, 0,
	}
	x := []float32{
		1, 2,
		3, 4,
	}
	dW := []float32{
		9, 9, -7,
		9, 9, -7,
		9, 9, -7,
	}
	asm.GemmTN(3, 2, 2, 1, dC, 3, x, 2, 0, dW, 3)
	printMatrix(3, 3, dW, 3)
	// Output:
	//    2.5000   4.0000  -7.0000
	//    1.5000   2.0000  -7.0000
	//   -1.0000  -2.0000  -7.0000
}

// L2Norm does not overflow or underflow where the sum of squares would.
func ExampleL2Norm() {
	fmt.Printf("%.4g\n", asm.L2Norm([]float32{3, 4}))
	fmt.Printf("%.4g\n", asm.L2Norm([]float32{3e30, 4e30}))   // Σx² = 2.5e61 overflows float32
	fmt.Printf("%.4g\n", asm.L2Norm([]float32{3e-30, 4e-30})) // Σx² = 2.5e-59 underflows
	fmt.Println(asm.L2Norm([]float32{1, float32(math.NaN())}))
	// Output:
	// 5
	// 5e+30
	// 5e-30
	// NaN
}

// Normalising a row in place: x̂ = x/‖x‖.
func ExampleScale() {
	x := []float32{3, 0, -4}
	asm.Scale(x, x, 1/asm.L2Norm(x))
	fmt.Println(x)
	// Output:
	// [0.6 0 -0.8]
}

// The gradient through x̂ = x/‖x‖: the part of dy along x̂ is removed and
// the rest divided by ‖x‖.
func ExampleNormalizeBackward() {
	x := []float32{3, 4}
	inv := 1 / asm.L2Norm(x) // 0.2
	dy := []float32{1, 0}
	dx := make([]float32, 2)
	asm.NormalizeBackward(dx, dy, x, inv, 0)
	fmt.Printf("%.4f %.4f\n", dx[0], dx[1])
	// Output:
	// 0.1280 -0.0960
}

func ExampleExp() {
	x := []float32{0, 1, -1, 10, float32(math.Inf(-1)), 100}
	dst := make([]float32, len(x))
	asm.Exp(dst, x)
	for _, v := range dst {
		fmt.Printf("%.5g ", v)
	}
	fmt.Println()
	// Output:
	// 1 2.7183 0.36788 22026 0 +Inf
}

// The log-sum-exp of a row, folded in two pieces (a row split into tiles).
func ExampleMaxSumExp() {
	z := []float32{1, 2, 3, 4, 100, 99}
	m, s := float32(math.Inf(-1)), float32(0)
	m, s = asm.MaxSumExp(z[:3], m, s)
	m, s = asm.MaxSumExp(z[3:], m, s)
	lse := float64(m) + math.Log(float64(s))
	fmt.Printf("max %.0f, log-sum-exp %.4f\n", m, lse)
	// Output:
	// max 100, log-sum-exp 100.3133
}

// Softmax probabilities from the row's log-sum-exp; scale 1.
func ExampleSoftmaxScaled() {
	z := []float32{1, 2, 3}
	m, s := asm.MaxSumExp(z, float32(math.Inf(-1)), 0)
	lse := m + float32(math.Log(float64(s)))
	p := make([]float32, len(z))
	asm.SoftmaxScaled(p, z, lse, 1)
	fmt.Printf("%.4f %.4f %.4f\n", p[0], p[1], p[2])
	// Output:
	// 0.0900 0.2447 0.6652
}

// ArcFace's φ(t) = cos(θ + m) on four target cosines, with its derivative;
// below cos(π − m) it falls back to t − m·sin m.
func ExampleMarginForward() {
	g := asm.NewMargin(asm.MarginArc, 1, 0.5, 0, 0, 0)
	t := []float32{0.9, 0.5, 0, -0.9}
	phi, dphi := make([]float32, len(t)), make([]float32, len(t))
	asm.MarginForward(phi, dphi, t, &g)
	for i := range t {
		fmt.Printf("t=%4.1f φ=%7.4f φ′=%.4f\n", t[i], phi[i], dphi[i])
	}
	// Output:
	// t= 0.9 φ= 0.5808 φ′=1.8675
	// t= 0.5 φ= 0.0236 φ′=1.1544
	// t= 0.0 φ=-0.4794 φ′=0.8776
	// t=-0.9 φ=-1.1397 φ′=1.0000
}

func ExampleNewMargin() {
	for _, g := range []asm.Margin{
		asm.NewMargin(asm.MarginArc, 1, 0.5, 0, 0, 0),           // ArcFace, m = 0.5
		asm.NewMargin(asm.MarginCos, 1, 0.35, 0, 0, 0),          // CosFace, m = 0.35
		asm.NewMargin(asm.MarginCombined, 0.9, 0.4, 0.15, 0, 0), // cos(m1·θ + m2) − m3
		asm.NewMargin(asm.MarginPsi, 0, 0, 0, 4, 5),             // SphereFace, m = 4, λ = 5
	} {
		fmt.Println(g.Kind(), g.String())
	}
	// Output:
	// Arc Arc(m=0.5)
	// Cos Cos(m=0.35)
	// Combined Combined(m1=0.9, m2=0.4, m3=0.15)
	// Psi Psi(m=4, λ=5)
}

// One set of embeddings against two class tiles: X is packed once and
// reused for both products.
func ExampleGemmNTPacked() {
	x := []float32{
		1, 0, 0,
		0.6, 0.8, 0,
	}
	tiles := [][]float32{
		{1, 0, 0, 0, 1, 0}, // classes 0 and 1
		{0, 0.6, 0.8},      // class 2
	}
	var px asm.PackedA
	px.Pack(2, 3, x, 3)
	for _, w := range tiles {
		n := len(w) / 3
		c := make([]float32, 2*n)
		asm.GemmNTPacked(n, 1, &px, w, 3, 0, c, n)
		printMatrix(2, n, c, n)
	}
	// Output:
	//    1.0000   0.0000
	//    0.6000   0.8000
	//    0.0000
	//    0.4800
}

// dW = Gᵀ·X for two tiles of logit gradients G (N×2 and N×1) against the
// same embeddings X (N×3), packed once.
func ExampleGemmTNPacked() {
	x := []float32{
		1, 0, 0,
		0, 1, 0,
	}
	var px asm.PackedB
	px.Pack(2, 3, x, 3)
	g1 := []float32{
		0.5, -0.5,
		0.25, 0,
	}
	dw := make([]float32, 2*3)
	asm.GemmTNPacked(2, 1, g1, 2, &px, 0, dw, 3)
	printMatrix(2, 3, dw, 3)
	g2 := []float32{-1, 2}
	asm.GemmTNPacked(1, 1, g2, 1, &px, 0, dw, 3)
	printMatrix(1, 3, dw, 3)
	// Output:
	//    0.5000   0.2500   0.0000
	//   -0.5000   0.0000   0.0000
	//   -1.0000   2.0000   0.0000
}

// Scaled cosine logits in one pass: s·(x̂·w_j)/‖w_j‖ with the row scale s
// and the column scales 1/‖w_j‖ applied as each tile leaves the GEMM.
func ExampleGemmNTPackedScaled() {
	x := []float32{
		1, 0,
		0.6, 0.8,
	}
	w := []float32{
		2, 0, // ‖w_0‖ = 2
		0, 4, // ‖w_1‖ = 4
	}
	var px asm.PackedA
	px.Pack(2, 2, x, 2)
	rowScale := []float32{10, 10}    // s
	colScale := []float32{0.5, 0.25} // 1/‖w_j‖
	z := make([]float32, 4)
	asm.GemmNTPackedScaled(2, &px, w, 2, rowScale, colScale, z, 2)
	printMatrix(2, 2, z, 2)
	// Output:
	//   10.0000   0.0000
	//    6.0000   8.0000
}

// A gradient row scaled column by column by the inverse norms of the class
// rows: dst[j] = g[j]·inv[j].
func ExampleMul() {
	g := []float32{0.5, -1, 2}
	inv := []float32{0.5, 0.25, 1}
	dst := make([]float32, 3)
	asm.Mul(dst, g, inv)
	fmt.Println(dst)
	// Output: [0.25 -0.25 2]
}

// Two partial gradient rows summed into the first: dst[j] = a[j] + b[j].
func ExampleAdd() {
	a := []float32{0.5, -1, 2}
	b := []float32{0.25, 1, -3}
	asm.Add(a, a, b)
	fmt.Println(a)
	// Output: [0.75 0 -1]
}

// Each row's target logit: row i of x against the row of w that labels[i]
// names; −1 (a class held elsewhere) leaves its output alone.
func ExampleDotRows() {
	x := []float32{
		0.5, 0.25, 0.75,
		1, 0, 0,
		0, 0.5, 0.5,
	}
	w := []float32{
		1, 0, 0,
		2, 4, 1,
	}
	labels := []int32{1, -1, 1}
	t := []float32{9, 9, 9}
	asm.DotRows(t, 3, x, 3, w, 3, labels)
	fmt.Println(t)
	// Output: [2.75 9 2.5]
}

// One step of torch.optim.SGD(lr=0.1, momentum=0.9) on three parameters:
// the first step of a momentum buffer copies the gradient.
func ExampleSGDStep() {
	p := []float32{1, 2, 3}
	g := []float32{0.5, -1, 2}
	buf := make([]float32, 3)
	c := asm.SGDCoef{NegLR: -0.1, Momentum: 0.9, Dampening1: 1, Flags: uint32(asm.SGDMomentum | asm.SGDFirst)}
	asm.SGDStep(p, g, buf, c)
	fmt.Println(p, buf)
	c.Flags = uint32(asm.SGDMomentum) // later steps: buf = 0.9·buf + g
	asm.SGDStep(p, g, buf, c)
	fmt.Println(p, buf)
	// Output:
	// [0.95 2.1 2.8] [0.5 -1 2]
	// [0.85499996 2.29 2.4199998] [0.95 -1.9 3.8]
}

// The first step of torch.optim.AdamW(lr=0.01, weight_decay=0) moves every
// parameter by about lr against the sign of its gradient.
func ExampleAdamWStep() {
	p := []float32{1, -1}
	g := []float32{0.3, -2}
	m, v := make([]float32, 2), make([]float32, 2)
	c := asm.AdamWCoef{Decay: 1, Beta1: 0.9, Beta1c: 0.1, Beta2: 0.999, Beta2c: 0.001,
		BC2Sqrt: float32(math.Sqrt(1 - 0.999)), Eps: 1e-8, NegStep: -0.01 / (1 - 0.9)}
	asm.AdamWStep(p, g, m, v, c)
	fmt.Printf("%.4f %.4f\n", p[0], p[1])
	// Output: 0.9900 -0.9900
}

// ClampGrad clamps AdaFace's logits z = s·c to ±s·(1−ε) (s = 64, ε = 1e-3)
// and marks where the gradient stops.
func ExampleClampGrad() {
	z := []float32{-64, -20, 0.5, 63.99}
	dz := make([]float32, len(z))
	asm.ClampGrad(z, dz, -63.936, 63.936)
	fmt.Println(z, dz)
	// Output: [-63.936 -20 0.5 63.936] [0 1 1 0]
}

// HardNegatives maps CurricularFace's hard negatives (logits above the
// row's s·cos(θ_y+m)) to s·c·(T + c), here with s = 2, T = 0.5.
func ExampleHardNegatives() {
	z := []float32{1, -1, 0.5}
	dz := make([]float32, len(z))
	asm.HardNegatives(z, dz, 0, 0.5, 0.5) // threshold 0, T, 1/s
	fmt.Println(z, dz)
	// Output: [1 -1 0.375] [1.5 1 1]
}

// A per-row margin gives every sample its own parameters: ElasticFace's
// draws, MagFace's norm-dependent margins, AdaFace's clipped form.
func ExampleMargin_SetRows() {
	t := []float32{0.8, 0.8, -0.95}
	var g asm.Margin
	g.SetRows(asm.MarginArc, 1, []float32{0.3, 0.6, 0.5}, nil) // ArcFace with m = 0.3, 0.6, 0.5
	phi, dphi := make([]float32, 3), make([]float32, 3)
	asm.MarginForward(phi, dphi, t, &g)
	fmt.Printf("%.4f %.4f\n", phi, dphi)
	// Output: [0.5870 0.3215 -1.1897] [1.3494 1.5782 1.0000]
}
