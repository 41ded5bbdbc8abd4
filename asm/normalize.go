package asm

import (
	"math"

	"github.com/marginloss/marginloss/internal/simd"
)

var (
	sumSquaresImpl   = simd.NewTable("SumSquares", sumSquaresGeneric)
	scaleImpl        = simd.NewTable("Scale", scaleGeneric)
	mulImpl          = simd.NewTable("Mul", mulGeneric)
	addImpl          = simd.NewTable("Add", addGeneric)
	normBackwardImpl = simd.NewTable("NormalizeBackward", normalizeBackwardGeneric)
)

// L2Norm returns ‖x‖₂, the Euclidean norm of x:
//
//	var s float64
//	for _, v := range x {
//		s += float64(v) * float64(v)
//	}
//	return float32(math.Sqrt(s))
//
// It does not overflow or lose subnormal inputs: when the float32 sum of
// squares leaves the normal range it rescales by max|x_k| first, as gonum's
// L2Norm does; only a norm beyond the float32 range is +Inf. A NaN element
// gives NaN, an infinite one (and no NaN) +Inf. The levels sum in different
// orders: each result is within (n+9)·2⁻²³ relative of the exact norm,
// n = len(x).
//
// The levels differ only in the float32 sum of squares; the range check and
// the rescaled path are the same Go code at every level:
//
//	s := Σ x_k²
//	if s is 0, subnormal-small or +Inf while x has a finite non-zero element:
//	    a := max|x_k|; return a·sqrt(Σ (x_k/a)²)
//	return sqrt(s)
func L2Norm(x []float32) float32 {
	s := sumSquaresImpl.Get()(x)
	if s >= minSafeSumSq && s <= maxSafeSumSq {
		return float32(math.Sqrt(float64(s)))
	}
	if s != s { // NaN input
		return s
	}
	return l2NormScaled(x)
}

// sumSquaresGeneric is the reference: Σ x_k², each square rounded to
// float32 and added in order. Bodies may sum in another order and fuse the
// multiply; they are within (n+8)·eps·Σ x_k² of the exact sum, and NaN
// exactly when x holds a NaN.
func sumSquaresGeneric(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += v * v
	}
	return s
}

// The plain sum of squares is exact enough when it stays inside these
// bounds; outside them squares may have under- or overflowed.
const (
	minSafeSumSq = 0x1p-100
	maxSafeSumSq = 0x1p+126
)

// l2NormScaled is the slow, safe path shared by every level.
func l2NormScaled(x []float32) float32 {
	var a float32
	for _, v := range x {
		if v < 0 {
			v = -v
		}
		if !(v <= a) { // also propagates NaN
			a = v
		}
	}
	if a == 0 || a != a || a > math.MaxFloat32 {
		return a // zero row, NaN or Inf
	}
	inv := 1 / float64(a)
	var s float64
	for _, v := range x {
		q := float64(v) * inv
		s += q * q
	}
	return float32(float64(a) * math.Sqrt(s))
}

// Scale multiplies x by a into dst:
//
//	for k, v := range x {
//		dst[k] = a * v
//	}
//
// Every level gives the same bits (one rounding per element). dst may be x
// itself. It panics when len(dst) < len(x); dst[len(x):] is not touched.
func Scale(dst, x []float32, a float32) {
	checkAtLeast("Scale", "dst", len(dst), "x", len(x))
	scaleImpl.Get()(dst[:len(x)], x, a)
}

// scaleGeneric is the reference: dst[k] = a·x[k]; bit-exact at every level.
func scaleGeneric(dst, x []float32, a float32) {
	dst = dst[:len(x)]
	for k, v := range x {
		dst[k] = a * v
	}
}

// Mul multiplies x and y element by element into dst:
//
//	for k, v := range x {
//		dst[k] = v * y[k]
//	}
//
// (the loss heads' per-column scaling of a gradient row by 1/‖W_j‖). Every
// level gives the same bits (one rounding per element). dst may be x or y
// itself. It panics when len(dst) or len(y) < len(x); dst[len(x):] is not
// touched.
func Mul(dst, x, y []float32) {
	checkAtLeast("Mul", "dst", len(dst), "x", len(x))
	checkAtLeast("Mul", "y", len(y), "x", len(x))
	mulImpl.Get()(dst[:len(x)], x, y[:len(x)])
}

// mulGeneric is the reference: dst[k] = x[k]·y[k]; bit-exact at every level.
func mulGeneric(dst, x, y []float32) {
	dst, y = dst[:len(x)], y[:len(x)]
	for k, v := range x {
		dst[k] = v * y[k]
	}
}

// Add adds x and y element by element into dst:
//
//	for k, v := range x {
//		dst[k] = v + y[k]
//	}
//
// (the loss heads' sum of the class shards' partial gradient rows, in
// shard order). Every level gives the same bits (one rounding per element).
// dst may be x or y itself. It panics when len(dst) or len(y) < len(x);
// dst[len(x):] is not touched.
func Add(dst, x, y []float32) {
	checkAtLeast("Add", "dst", len(dst), "x", len(x))
	checkAtLeast("Add", "y", len(y), "x", len(x))
	addImpl.Get()(dst[:len(x)], x, y[:len(x)])
}

// addGeneric is the reference: dst[k] = x[k] + y[k]; bit-exact at every level.
func addGeneric(dst, x, y []float32) {
	dst, y = dst[:len(x)], y[:len(x)]
	for k, v := range x {
		dst[k] = v + y[k]
	}
}

// NormalizeBackward is the gradient of x̂ = x/‖x‖ plus a radial term: given
// dy = ∂L/∂x̂, the row x and inv = 1/‖x‖ (0 for a zero row), it writes
//
//	dx = (dy − x̂·(x̂·dy))·inv + radial·x̂,   x̂ = x·inv
//
// as the loop
//
//	var p float32
//	for k, v := range x {
//		p += (v * inv) * dy[k]
//	}
//	for k, v := range x {
//		q := v * inv
//		dx[k] = (dy[k]-q*p)*inv + radial*q
//	}
//
// radial is ∂L/∂‖x‖ for losses whose logits also scale with the norm
// (SphereFace, L-Softmax); pass 0 otherwise. A zero row (inv = 0) gets
// dx = 0. dx may be dy itself. The levels form the dot product p in
// different orders, within (n+8)·2⁻²³·Σ|x_k·inv·dy_k| of each other. It
// panics when dx or dy is not as long as x.
func NormalizeBackward(dx, dy, x []float32, inv, radial float32) {
	if len(dx) != len(x) || len(dy) != len(x) {
		panicf("NormalizeBackward: len(dx) = %d, len(dy) = %d, want both len(x) = %d", len(dx), len(dy), len(x))
	}
	normBackwardImpl.Get()(dx, dy, x, inv, radial)
}

// normalizeBackwardGeneric is the reference. It forms x̂_k = x_k·inv
// before every product, so that no intermediate overflows when the row is
// tiny and inv huge:
//
//	p := Σ (x_k·inv)·dy_k                          (float32, in order)
//	dx_k = (dy_k − (x_k·inv)·p)·inv + radial·(x_k·inv)
//
// dx may alias dy.
func normalizeBackwardGeneric(dx, dy, x []float32, inv, radial float32) {
	dy = dy[:len(x)]
	dx = dx[:len(x)]
	var p float32
	for k, v := range x {
		p += (v * inv) * dy[k]
	}
	for k, v := range x {
		q := v * inv
		dx[k] = (dy[k]-q*p)*inv + radial*q
	}
}
