package asm

import (
	"math"

	"github.com/marginloss/marginloss/internal/simd"
)

var (
	expImpl        = simd.NewTable("Exp", expGeneric)
	maxSumExpImpl  = simd.NewTable("MaxSumExp", maxSumExpGeneric)
	softmaxRowImpl = simd.NewTable("SoftmaxScaled", softmaxScaledGeneric)
)

// Exp writes dst[k] = e^x[k] with the vectorisable algorithm every level
// shares: Cody–Waite range reduction, a degree-7 polynomial, and scaling by
// 2^n. Measured error: at most 2 ULP against the correctly rounded result
// over the whole float32 range, subnormal results included (TestExpULP).
// exp(NaN) is NaN, e^+Inf = +Inf, e^−Inf = 0. It panics when
// len(dst) < len(x).
func Exp(dst, x []float32) {
	if len(dst) < len(x) {
		panic("asm: Exp: dst shorter than x")
	}
	expImpl.Get()(dst[:len(x)], x)
}

func expGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for k, v := range x {
		dst[k] = Expf(v)
	}
}

// Constants of the float32 exp.
const (
	expHi = 88.72283935546875   // above: +Inf
	expLo = -103.97208404541016 // below: 0 (smaller than half the least subnormal)
	log2e = 1.44269504088896341 // 1/ln 2
	ln2Hi = 0.693359375         // ln 2, high part (exact in 9 bits)
	ln2Lo = -2.12194440e-4      // ln 2 − ln2Hi
	expP0 = 1.9875691500e-4     // polynomial for (e^r − 1 − r)/r² on |r| ≤ ln2/2
	expP1 = 1.3981999507e-3
	expP2 = 8.3334519073e-3
	expP3 = 4.1665795894e-2
	expP4 = 1.6666665459e-1
	expP5 = 5.0000001201e-1
)

// Expf is the scalar form of the shared exp algorithm: the generic twin of
// every vector exp body.
//
//	n := round(x·log2e)
//	r := (x − n·ln2Hi) − n·ln2Lo
//	p := 1 + r + r²·(((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5)
//	return p·2^n   (in two factors when 2^n is subnormal)
func Expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > expHi:
		return float32(math.Inf(1))
	case x < expLo:
		return 0
	}
	n := float32(math.RoundToEven(float64(x * log2e)))
	r := (x - n*ln2Hi) - n*ln2Lo
	r2 := r * r
	p := ((((expP0*r+expP1)*r+expP2)*r+expP3)*r+expP4)*r + expP5
	p = p*r2 + r + 1
	e := int32(n)
	if e >= -126 {
		if e > 127 { // only x very close to expHi: split the scale
			return p * 2 * math.Float32frombits(uint32(e-1+127)<<23)
		}
		return p * math.Float32frombits(uint32(e+127)<<23)
	}
	// Subnormal result: scale by 2^(e+64) (normal) then by 2^-64 (exact).
	return p * math.Float32frombits(uint32(e+64+127)<<23) * 0x1p-64
}

// MaxSumExp folds z into a running log-sum-exp state (m, s), where m is the
// running maximum and s = Σ e^(z−m) over everything folded so far:
//
//	m' = max(m, max_k z_k)
//	s' = s·e^(m−m') + Σ_k e^(z_k − m')
//
// Start from (m, s) = (−Inf, 0). The state after a row is log-sum-exp
// m + log s. z may hold −Inf for entries left out of the sum (they add
// e^−Inf = 0), but no NaN or +Inf, and max(m, max z) must be finite unless z
// is empty (an empty z returns the state unchanged).
func MaxSumExp(z []float32, m, s float32) (float32, float32) {
	return maxSumExpImpl.Get()(z, m, s)
}

// maxSumExpGeneric is the reference: the maximum in order, then the
// sum of Expf(z_k − m') in order, added to s·Expf(m − m').
func maxSumExpGeneric(z []float32, m, s float32) (float32, float32) {
	if len(z) == 0 {
		return m, s
	}
	mx := m
	for _, v := range z {
		if v > mx {
			mx = v
		}
	}
	var t float32
	for _, v := range z {
		t += Expf(v - mx)
	}
	if s != 0 {
		t += s * Expf(m-mx)
	}
	return mx, t
}

// SoftmaxScaled writes dst[k] = e^(z[k] − lse)·scale: the softmax
// probabilities of a row whose log-sum-exp is lse, times scale (the
// gradient of a reduced cross-entropy before the −scale at the target).
// It panics when len(dst) < len(z).
func SoftmaxScaled(dst, z []float32, lse, scale float32) {
	if len(dst) < len(z) {
		panic("asm: SoftmaxScaled: dst shorter than z")
	}
	softmaxRowImpl.Get()(dst[:len(z)], z, lse, scale)
}

// softmaxScaledGeneric is the reference: dst[k] = Expf(z[k] − lse)·scale.
func softmaxScaledGeneric(dst, z []float32, lse, scale float32) {
	dst = dst[:len(z)]
	for k, v := range z {
		dst[k] = Expf(v-lse) * scale
	}
}
