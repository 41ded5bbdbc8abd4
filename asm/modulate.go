package asm

import "github.com/marginloss/marginloss/internal/simd"

// The modulate family: elementwise maps of a row of logits with their
// derivative, for margin heads that change the non-target logits (AdaFace's
// clamp, CurricularFace's hard negatives). Every step is one float32
// rounding in a fixed order, so every level is bit for bit its generic twin.

var (
	clampGradImpl     = simd.NewTable("ClampGrad", clampGradGeneric)
	hardNegativesImpl = simd.NewTable("HardNegatives", hardNegativesGeneric)
)

// ClampGrad clamps z to [lo, hi] in place and writes the derivative of the
// clamp into dz (1 inside, bounds included, 0 where z was clamped):
//
//	for k, v := range z {
//		d := float32(1)
//		if v > hi {
//			v, d = hi, 0
//		} else if v < lo {
//			v, d = lo, 0
//		}
//		z[k], dz[k] = v, d
//	}
//
// A NaN stays NaN with dz = 1. It panics when dz is shorter than z or when
// lo ≤ hi does not hold; dz[len(z):] is not touched, and dz may not alias z.
func ClampGrad(z, dz []float32, lo, hi float32) {
	checkAtLeast("ClampGrad", "dz", len(dz), "z", len(z))
	if !(lo <= hi) {
		panicf("ClampGrad: lo = %v, hi = %v, want lo ≤ hi", lo, hi)
	}
	clampGradImpl.Get()(z, dz, lo, hi)
}

func clampGradGeneric(z, dz []float32, lo, hi float32) {
	for k, v := range z {
		d := float32(1)
		if v > hi {
			v, d = hi, 0
		} else if v < lo {
			v, d = lo, 0
		}
		z[k], dz[k] = v, d
	}
}

// HardNegatives maps the entries of z above thr (strictly) to z·(t + z·inv)
// in place, and writes the derivative of the map into dz (t + 2·z·inv there,
// 1 elsewhere): CurricularFace's hard negatives c·(T + c) on logits z = s·c
// with inv = 1/s, scaled back by s. As the loop, each step rounded once:
//
//	for k, v := range z {
//		d := float32(1)
//		if v > thr {
//			c := float32(v * inv)
//			v = float32(v * float32(t+c))
//			d = float32(t + float32(c+c))
//		}
//		z[k], dz[k] = v, d
//	}
//
// A NaN stays NaN with dz = 1. It panics when dz is shorter than z;
// dz[len(z):] is not touched, and dz may not alias z.
func HardNegatives(z, dz []float32, thr, t, inv float32) {
	checkAtLeast("HardNegatives", "dz", len(dz), "z", len(z))
	hardNegativesImpl.Get()(z, dz, thr, t, inv)
}

func hardNegativesGeneric(z, dz []float32, thr, t, inv float32) {
	for k, v := range z {
		d := float32(1)
		if v > thr {
			c := float32(v * inv)
			v = float32(v * float32(t+c))
			d = float32(t + float32(c+c))
		}
		z[k], dz[k] = v, d
	}
}
