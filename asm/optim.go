package asm

import (
	"math"

	"github.com/marginloss/marginloss/internal/simd"
)

// The optimizer family: one step of torch.optim.SGD and torch.optim.AdamW
// on a slice of parameters, element by element, with the float32 arithmetic
// of torch 1.13's CPU kernels (fused multiply-adds where those kernels use
// vec::fmadd, one rounding per operation everywhere else). Every level
// gives the same bits as the generic twin: each element is a fixed chain of
// correctly rounded operations, and the twin rounds its fused multiply-adds
// once (fma32), as VFMADD and FMLA do.

var (
	sgdStepImpl   = simd.NewTable("SGDStep", sgdStepGeneric)
	adamWStepImpl = simd.NewTable("AdamWStep", adamWStepGeneric)
)

// SGDFlags select the terms of one SGD step (see SGDStep): SGDCoef.Flags
// holds them as a uint32, a word the generators read.
type SGDFlags uint32

const (
	// SGDWeightDecay adds the weight decay: d = fma(p, wd, g) instead of g.
	SGDWeightDecay SGDFlags = 1 << iota
	// SGDMomentum keeps a momentum buffer: buf = fma(d, 1−dampening, μ·buf)
	// and d = buf.
	SGDMomentum
	// SGDFirst, with SGDMomentum, is the first step of the buffer: buf = d.
	SGDFirst
	// SGDNesterov, with SGDMomentum, takes the Nesterov step d = fma(buf, μ, d).
	SGDNesterov
)

// SGDCoef holds the scalars of one SGD step, each rounded to float32 once.
type SGDCoef struct {
	Flags       uint32  // SGDFlags
	NegLR       float32 // −lr
	WeightDecay float32 // wd
	Momentum    float32 // μ
	Dampening1  float32 // 1 − dampening
}

// AdamWCoef holds the scalars of one AdamW step, each rounded to float32
// once from its float64 value.
type AdamWCoef struct {
	Decay   float32 // 1 − lr·wd
	Beta1   float32 // β1
	Beta1c  float32 // 1 − β1
	Beta2   float32 // β2
	Beta2c  float32 // 1 − β2
	BC2Sqrt float32 // sqrt(1 − β2^t)
	Eps     float32 // ε
	NegStep float32 // −lr/(1 − β1^t)
}

// SGDStep is one step of torch.optim.SGD on the parameters p with
// gradients g and, under SGDMomentum, the momentum buffer buf:
//
//	for k := range p {
//		d := g[k]
//		if SGDFlags(c.Flags)&SGDWeightDecay != 0 {
//			d = fma(p[k], c.WeightDecay, d)
//		}
//		if SGDFlags(c.Flags)&SGDMomentum != 0 {
//			b := d
//			if SGDFlags(c.Flags)&SGDFirst == 0 {
//				b = fma(d, c.Dampening1, c.Momentum*buf[k])
//			}
//			buf[k] = b
//			if SGDFlags(c.Flags)&SGDNesterov != 0 {
//				d = fma(b, c.Momentum, d)
//			} else {
//				d = b
//			}
//		}
//		p[k] = fma(d, c.NegLR, p[k])
//	}
//
// where fma rounds once. Every level gives the same bits. buf is neither
// read nor written without SGDMomentum (it may be nil then). It panics when
// len(g) (or, with momentum, len(buf)) differs from len(p).
func SGDStep(p, g, buf []float32, c SGDCoef) {
	checkLen("SGDStep", "g", len(g), len(p))
	if SGDFlags(c.Flags)&SGDMomentum != 0 {
		checkLen("SGDStep", "buf", len(buf), len(p))
	} else {
		buf = nil
	}
	sgdStepImpl.Get()(p, g, buf, c)
}

// AdamWStep is one step of torch.optim.AdamW (amsgrad off) on the
// parameters p with gradients g, first moments m and second moments v:
//
//	for k := range p {
//		q := p[k] * c.Decay
//		mk := fma(g[k], c.Beta1c, c.Beta1*m[k])
//		vk := fma(c.Beta2c*g[k], g[k], c.Beta2*v[k])
//		m[k], v[k] = mk, vk
//		den := sqrt(vk)/c.BC2Sqrt + c.Eps
//		p[k] = q + (c.NegStep*mk)/den
//	}
//
// each operation rounded once to float32 (fma included), in the order of
// torch 1.13's kernels. Every level gives the same bits. It panics when g,
// m or v is not as long as p.
func AdamWStep(p, g, m, v []float32, c AdamWCoef) {
	checkLen("AdamWStep", "g", len(g), len(p))
	checkLen("AdamWStep", "m", len(m), len(p))
	checkLen("AdamWStep", "v", len(v), len(p))
	adamWStepImpl.Get()(p, g, m, v, c)
}

func checkLen(fn, name string, got, want int) {
	if got != want {
		panicf("%s: len(%s) = %d, want len(p) = %d", fn, name, got, want)
	}
}

// sgdStepGeneric is the reference loop of SGDStep.
func sgdStepGeneric(p, g, buf []float32, c SGDCoef) {
	g = g[:len(p)]
	mom := SGDFlags(c.Flags)&SGDMomentum != 0
	if mom {
		buf = buf[:len(p)]
	}
	for k, pk := range p {
		d := g[k]
		if SGDFlags(c.Flags)&SGDWeightDecay != 0 {
			d = fma32(pk, c.WeightDecay, d)
		}
		if mom {
			b := d
			if SGDFlags(c.Flags)&SGDFirst == 0 {
				b = fma32(d, c.Dampening1, float32(c.Momentum*buf[k]))
			}
			buf[k] = b
			if SGDFlags(c.Flags)&SGDNesterov != 0 {
				d = fma32(b, c.Momentum, d)
			} else {
				d = b
			}
		}
		p[k] = fma32(d, c.NegLR, pk)
	}
}

// adamWStepGeneric is the reference loop of AdamWStep. The explicit
// float32 conversions keep the compiler from fusing a product into the
// following addition (the Go spec allows that otherwise).
func adamWStepGeneric(p, g, m, v []float32, c AdamWCoef) {
	g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
	for k, pk := range p {
		gk := g[k]
		q := float32(pk * c.Decay)
		mk := fma32(gk, c.Beta1c, float32(c.Beta1*m[k]))
		vk := fma32(float32(c.Beta2c*gk), gk, float32(c.Beta2*v[k]))
		m[k], v[k] = mk, vk
		den := float32(float32(float32(math.Sqrt(float64(vk)))/c.BC2Sqrt) + c.Eps)
		p[k] = q + float32(float32(c.NegStep*mk)/den)
	}
}

// fma32 is a·b + c rounded once to float32, as the hardware's fused
// multiply-add gives it. The product of two float32 is exact in float64, so
// the float64 sum s has a single rounding, and rounding s to float32 is the
// correct rounding of the exact a·b + c unless s landed exactly half-way
// between two float32 (rounding to nearest is monotonic and the half-way
// points are float64 values, so it cannot cross one). Only then, and for
// results in float32's subnormal range where the half-way points sit
// elsewhere, does the slow path run: s is rounded to odd (when the sum was
// inexact and s is even, it moves to its odd neighbour on the side of the
// exact sum), and a float64 rounded to odd has enough extra bits that its
// rounding to float32 is correct.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact
	z := float64(c)
	s := p + z
	const low = 1<<29 - 1 // the float64 mantissa bits below float32's
	if math.Float64bits(s)&low != 1<<28 && !(math.Abs(s) < 0x1p-126) {
		return float32(s) // also ±Inf and NaN
	}
	// TwoSum: e is the exact error p + z − s.
	bb := s - p
	e := (p - (s - bb)) + (z - bb)
	if e != 0 && math.Float64bits(s)&1 == 0 {
		s = math.Nextafter(s, math.Copysign(math.Inf(1), e))
	}
	return float32(s)
}
