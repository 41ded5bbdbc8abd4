// Package kconst holds the numbers that the kernels' Go twins (package asm)
// and their generators (gen/amd64, gen/arm64) must agree on bit for bit:
// the exp polynomial and its range reduction, the margin bodies' selector
// values and the polynomial coefficients of the vector acos, sin and cos.
// Each number has this one source; the generators read it when they emit
// assembly, and asm's tests check the emitted bit patterns.
//
// The constants are untyped, so that a float32 expression in Go rounds them
// exactly as the generators do (float32(c)).
package kconst

import (
	"math"
	"math/big"
)

// The float32 exp (asm's expf and every vector exp body):
//
//	n := round(x·Log2e)
//	r := (x − n·Ln2Hi) − n·Ln2Lo
//	p := 1 + r + r²·(((((ExpP0·r + ExpP1)·r + ExpP2)·r + ExpP3)·r + ExpP4)·r + ExpP5)
//	e^x = p·2ⁿ
const (
	ExpHi = 88.72283935546875   // above: +Inf
	ExpLo = -103.97208404541016 // below: 0 (smaller than half the least subnormal)
	Log2e = 1.44269504088896341 // 1/ln 2
	Ln2Hi = 0.693359375         // ln 2, high part (exact in 9 bits)
	Ln2Lo = -2.12194440e-4      // ln 2 − Ln2Hi
	ExpP0 = 1.9875691500e-4     // polynomial for (e^r − 1 − r)/r² on |r| ≤ ln2/2
	ExpP1 = 1.3981999507e-3
	ExpP2 = 8.3334519073e-3
	ExpP3 = 4.1665795894e-2
	ExpP4 = 1.6666665459e-1
	ExpP5 = 5.0000001201e-1
)

// The body selector of asm's marginParams: which algorithm a vector level
// runs for a Margin.
const (
	MarginBodyNone     = 0 // no vector body: the level falls back to the generic twin
	MarginBodyArc      = 1 // ArcFace, its easy form, CosFace and the identity
	MarginBodyCombined = 2 // cos(m1·θ + m2) − m3
	MarginBodyPsi      = 3 // SphereFace / L-Softmax ψ
)

// The vector margin bodies' polynomials (Cephes single precision):
//
//	asin x = x + x·z·((((Asin4·z + Asin3)·z + Asin2)·z + Asin1)·z + Asin0),  z = x², |x| ≤ 1/2
//	sin r  = r + r·z·((Sin2·z + Sin1)·z + Sin0),                            z = r², |r| ≤ π/4
//	cos r  = 1 − z/2 + z²·((Cos2·z + Cos1)·z + Cos0)
const (
	Asin4 = 4.2163199048e-2
	Asin3 = 2.4181311049e-2
	Asin2 = 4.5470025998e-2
	Asin1 = 7.4953002686e-2
	Asin0 = 1.6666752422e-1

	Sin2 = -1.9515295891e-4
	Sin1 = 8.3321608736e-3
	Sin0 = -1.6666654611e-1

	Cos2 = 2.443315711809948e-5
	Cos1 = -1.388731625493765e-3
	Cos0 = 4.166664568298827e-2
)

// MarginMaxM1 bounds |m1| on the vector path of the combined margin: the
// bodies reduce m1·θ + m2 by π/2 with CodyWaitePio2's two parts, which stay
// within one rounding of the reduced argument while the quadrant is below
// 2¹⁷.
const MarginMaxM1 = 1 << 16

// CodyWaitePio2 splits π/2 into float32 parts p1 + p2 (as bit patterns): p1
// the nearest float32, p2 the nearest float32 to π/2 − p1 (from π to 60
// digits). What is left, |π/2 − p1 − p2| < 1.3e-15, times the quadrant
// (< 2¹⁷ for |m1| ≤ MarginMaxM1) stays below 0.01 float32 roundings of
// |r| ≥ 2⁻⁸, far below the 4u absolute error allowed for sin and cos; a
// third part would change nothing.
func CodyWaitePio2() (p1, p2 uint32) {
	pio2, _, err := big.ParseFloat("1.570796326794896619231321691639751442098584699687552910487", 10, 256, big.ToNearestEven)
	if err != nil {
		panic(err)
	}
	rest := new(big.Float).SetPrec(256).Set(pio2)
	var parts [2]uint32
	for i := range parts {
		f, _ := rest.Float32()
		parts[i] = math.Float32bits(f)
		rest.Sub(rest, new(big.Float).SetFloat64(float64(f)))
	}
	return parts[0], parts[1]
}
