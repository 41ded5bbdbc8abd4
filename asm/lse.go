package asm

import (
	"math"

	"github.com/marginloss/marginloss/internal/kconst"

	"github.com/marginloss/marginloss/internal/simd"
)

var (
	expImpl        = simd.NewTable("Exp", expGeneric)
	maxSumExpImpl  = simd.NewTable("MaxSumExp", maxSumExpGeneric)
	softmaxRowImpl = simd.NewTable("SoftmaxScaled", softmaxScaledGeneric)
)

// Exp writes the exponential of each element of x into dst:
//
//	for k, v := range x {
//		dst[k] = float32(math.Exp(float64(v)))
//	}
//
// up to its measured error: at most 2 ULP against the correctly rounded
// result over the whole float32 range, subnormal results included, at every
// level. Every level runs one algorithm (Cody–Waite range reduction, a
// degree-7 polynomial, scaling by 2ⁿ), the assembly ones with fused
// multiply-adds, so levels may differ by an ULP. e^NaN is NaN, e^+Inf = +Inf
// and e^−Inf = 0; x above about 88.72 overflows to +Inf, x below about
// −103.97 underflows to 0. dst may be x itself. It panics when
// len(dst) < len(x); dst[len(x):] is not touched.
func Exp(dst, x []float32) {
	checkAtLeast("Exp", "dst", len(dst), "x", len(x))
	expImpl.Get()(dst[:len(x)], x)
}

func expGeneric(dst, x []float32) {
	dst = dst[:len(x)]
	for k, v := range x {
		dst[k] = expf(v)
	}
}

// Constants of the float32 exp, from their one source (internal/kconst),
// which the generators read too.
const (
	expHi = kconst.ExpHi
	expLo = kconst.ExpLo
	log2e = kconst.Log2e
	ln2Hi = kconst.Ln2Hi
	ln2Lo = kconst.Ln2Lo
	expP0 = kconst.ExpP0
	expP1 = kconst.ExpP1
	expP2 = kconst.ExpP2
	expP3 = kconst.ExpP3
	expP4 = kconst.ExpP4
	expP5 = kconst.ExpP5
)

// expf is the scalar form of the shared exp algorithm: the generic twin of
// every vector exp body (registered as "Expf" for the module's tests).
//
//	n := round(x·log2e)
//	r := (x − n·ln2Hi) − n·ln2Lo
//	p := 1 + r + r²·(((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5)
//	return p·2^n   (in two factors when 2^n is subnormal)
func expf(x float32) float32 {
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
//	m2 := m
//	for _, v := range z {
//		m2 = max(m2, v)
//	}
//	s2 := s * e^(m−m2)
//	for _, v := range z {
//		s2 += e^(v − m2)
//	}
//	return m2, s2
//
// with e^ as Exp computes it. Start from (m, s) = (−Inf, 0); fold a row in
// one call or in pieces. The row's log-sum-exp is m + log s. z may hold −Inf
// for entries left out of the sum (they add e^−Inf = 0), but no NaN or
// +Inf, and max(m, max z) must be finite unless z is empty (an empty z
// returns the state unchanged). The maximum is exact at every level; the
// levels add in different orders, each within (n+10.5)·2⁻²³ relative of the
// exact sum (n+8 for the additions, 2.5 for Exp), n = len(z).
func MaxSumExp(z []float32, m, s float32) (float32, float32) {
	return maxSumExpImpl.Get()(z, m, s)
}

// maxSumExpGeneric is the reference: the maximum in order, then the
// sum of expf(z_k − m') in order, added to s·expf(m − m').
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
		t += expf(v - mx)
	}
	if s != 0 {
		t += s * expf(m-mx)
	}
	return mx, t
}

// SoftmaxScaled writes the softmax probabilities of a row whose
// log-sum-exp is lse, times scale (the gradient of a cross-entropy before
// the −scale at the target):
//
//	for k, v := range z {
//		dst[k] = e^(v − lse) * scale
//	}
//
// with e^ as Exp computes it: each element is within 3·2⁻²³ relative of
// the exact e^(v − lse)·scale of the float32 difference, at every level.
// dst may be z itself. It panics when len(dst) < len(z); dst[len(z):] is
// not touched.
func SoftmaxScaled(dst, z []float32, lse, scale float32) {
	checkAtLeast("SoftmaxScaled", "dst", len(dst), "z", len(z))
	softmaxRowImpl.Get()(dst[:len(z)], z, lse, scale)
}

// softmaxScaledGeneric is the reference: dst[k] = expf(z[k] − lse)·scale.
func softmaxScaledGeneric(dst, z []float32, lse, scale float32) {
	dst = dst[:len(z)]
	for k, v := range z {
		dst[k] = expf(v-lse) * scale
	}
}
