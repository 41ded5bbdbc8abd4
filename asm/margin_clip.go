package asm

import "math"

// arcClip is MarginArcClip's φ split into its three regions of t, so that
// the vector bodies and the generic twin choose a region by the same
// comparisons of t (never by a rounded acos):
//
//	t < lo:        φ = cLo, φ′ = 0   (c = −1+ε or θ′ = π−ε)
//	lo ≤ t ≤ hi:   φ = cos(acos t + m2) − m3, φ′ = sin(acos t + m2)/sin θ
//	t > hi:        φ = cHi, φ′ = 0   (c = 1−ε or θ′ = ε)
//
// With θ = acos c decreasing in c, θ + m2 < ε ⇔ c > cos(ε − m2) and
// θ + m2 > π − ε ⇔ c < cos(π − ε − m2); the union with the cosine clamp
// of each is one half-line of t, and φ is constant on it. That holds for
// |m2| < π/2 and ClampEps ≤ ε ≤ 1/4 (the domain, inside which the two
// half-lines never meet); outside it ok is false and eval takes the
// formula directly.
type arcClip struct {
	ok                  bool
	eps, m2, m3         float64
	lo, hi, cLo, cHi    float64
	cosM, sinM          float64 // of m2
	lo32, hi32          float32 // t ≥ lo ⇔ t > lo32, t > hi ⇔ t > hi32
	cLo32, cHi32, off32 float32
	cosM32, sinM32      float32
}

func newArcClip(eps, m2, m3 float64) arcClip {
	c := arcClip{eps: eps, m2: m2, m3: m3, cosM: math.Cos(m2), sinM: math.Sin(m2)}
	if !(eps >= ClampEps && eps <= 0.25) || !(math.Abs(m2) < math.Pi/2) || math.IsInf(m3, 0) || m3 != m3 {
		return c
	}
	c.ok = true
	c.hi = 1 - eps
	if x := eps - m2; x > 0 {
		c.hi = math.Min(c.hi, math.Cos(x))
	}
	c.lo = -1 + eps
	if y := math.Pi - eps - m2; y < math.Pi {
		c.lo = math.Max(c.lo, math.Cos(y))
	}
	c.cHi, _ = c.direct(1)
	c.cLo, _ = c.direct(-1)
	c.lo32, c.hi32 = below32(c.lo), roundDown32(c.hi)
	c.cLo32, c.cHi32, c.off32 = float32(c.cLo), float32(c.cHi), float32(m3)
	c.cosM32, c.sinM32 = float32(c.cosM), float32(c.sinM)
	return c
}

// direct is AdaFace's formula as its authors write it (head.py 105–118):
// the clamps on c and θ′, φ′ = 0 where either acts.
func (c *arcClip) direct(t float64) (phi, dphi float64) {
	u := math.Min(math.Max(t, -1+c.eps), 1-c.eps)
	th := math.Acos(u) + c.m2
	thc := math.Min(math.Max(th, c.eps), math.Pi-c.eps)
	phi = math.Cos(thc) - c.m3
	if t >= -1+c.eps && t <= 1-c.eps && th >= c.eps && th <= math.Pi-c.eps {
		dphi = math.Sin(thc) / math.Sqrt((1-u)*(1+u))
	}
	return phi, dphi
}

// eval is φ and φ′ in float64 at t ∈ [−1, 1] (or NaN): by region inside
// the domain, the formula outside it. A NaN t gives φ = NaN, φ′ = 0.
func (c *arcClip) eval(t float64) (phi, dphi float64) {
	if !c.ok {
		if t != t {
			return t, 0
		}
		return c.direct(t)
	}
	switch {
	case t > c.hi:
		return c.cHi, 0
	case !(t >= c.lo):
		return 0*t + c.cLo, 0
	}
	s := math.Sqrt((1 - t) * (1 + t))
	return t*c.cosM - s*c.sinM - c.m3, c.cosM + t*c.sinM/s
}

// below32 returns the largest float32 < x: for every float32 t,
// t ≥ x ⇔ t > below32(x).
func below32(x float64) float32 {
	f := roundDown32(x)
	if float64(f) == x {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}
