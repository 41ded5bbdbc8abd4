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
