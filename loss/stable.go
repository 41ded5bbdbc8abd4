package loss

import "math"

// softplus returns log(1 + e^x) without overflow for large x and without
// losing precision for very negative x.
func softplus(x float64) float64 {
	if x > 0 {
		return x + math.Log1p(math.Exp(-x))
	}
	return math.Log1p(math.Exp(x))
}

// sigmoid returns 1/(1 + e^−x) without overflow for either sign of x.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

// logRatio returns log r for r = sum·e^(m − zt), the non-target mass of a
// softmax row relative to its target, without forming r: r itself
// overflows float64 once the target sits more than ~709 below the largest
// logit. A zero sum (no non-target mass) gives −Inf.
func logRatio(sum, m, zt float64) float64 {
	if sum == 0 {
		return math.Inf(-1)
	}
	return math.Log(sum) + (m - zt)
}

// softmaxNorm returns, for a softmax row with largest non-target logit mx
// (−Inf when there is none), sum = Σ_{j≠y} e^(z_j − mx) and target logit zt,
// the shift M and factor 1/S with which every probability of the row is
//
//	p_j = e^(z_j − M) / S,  M = max(mx, zt),  S = Σ_j e^(z_j − M) ≥ 1
//
// (the target included in S). M is a logit of the row, so z_j − M is exact
// in float32 for every logit near the top (tied logits give exactly equal
// probabilities), and S lies in [1, C], so 1/S neither overflows nor
// underflows. A log-sum-exp rounded to float32 instead would be off by up to
// half an ulp of the logits: at |z| ≈ 1e7 that moves every p_j by e^±0.5.
func softmaxNorm(mx, sum, zt float64) (shift float32, inv float64) {
	m := math.Max(mx, zt)
	s := math.Exp(zt - m)
	if sum != 0 {
		s += sum * math.Exp(mx-m)
	}
	return float32(m), 1 / s
}
