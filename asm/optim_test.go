package asm

import (
	"math"
	"math/big"
	"math/rand"
	"testing"
)

// ---------------------------------------------------------------------------
// optimizer family

// fma32Exact is a·b + c rounded once to float32, through big.Float with
// enough precision to hold the exact value (a float32 product has 48
// significant bits; the sum spans at most the exponent range of float32).
func fma32Exact(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(600).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(c)))
	f, _ := x.Float32()
	if x.Sign() == 0 { // big.Float has no −0 from a sum: IEEE's rule
		return float32(float64(a)*float64(b) + float64(c))
	}
	return f
}

// TestFma32 checks the twin's fused multiply-add against the exact value,
// on random operands and on the cases where rounding the float64 sum to
// float32 would round twice (a product at a float32 tie plus a tiny c).
func TestFma32(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	check := func(a, b, c float32) {
		t.Helper()
		got, want := fma32(a, b, c), fma32Exact(a, b, c)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), exact %g (%#x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	// 1 + 2⁻²⁴ is a float32 tie, exact as (1 + 2⁻¹²)² − 2⁻²⁴ is not, so
	// build ties from a product plus c: a·b = 1 + 2⁻¹¹ + 2⁻²⁴ for
	// a = b = 1 + 2⁻¹², and a tiny c decides the rounding.
	a := float32(1 + 0x1p-12)
	for _, c := range []float32{0x1p-60, -0x1p-60, 0x1p-140, -0x1p-149, 0, float32(math.Copysign(0, -1))} {
		check(a, a, c)
		check(-a, a, c)
	}
	doubled := 0
	for i := 0; i < 200000; i++ {
		a := float32(r.NormFloat64() * math.Exp2(float64(r.Intn(40)-20)))
		b := float32(r.NormFloat64() * math.Exp2(float64(r.Intn(40)-20)))
		c := float32(r.NormFloat64() * math.Exp2(float64(r.Intn(80)-40)))
		if i%3 == 0 {
			c = -float32(float64(a) * float64(b)) // cancellation
		}
		if i%7 == 0 {
			// 12-bit a and b: a·b has at most 25 significant bits, often a
			// float32 tie, which a tiny c pushes off
			a = float32(1 + float64(r.Intn(1<<12))*0x1p-12)
			b = float32(1 + float64(r.Intn(1<<12))*0x1p-12)
			c = float32(math.Copysign(math.Exp2(-float64(40+r.Intn(60))), r.NormFloat64()))
		}
		check(a, b, c)
		if float32(float64(a)*float64(b)+float64(c)) != fma32Exact(a, b, c) {
			doubled++
		}
	}
	t.Logf("%d of the random cases round twice through float64", doubled)
	inf := float32(math.Inf(1))
	if got := fma32(inf, 2, 1); got != inf {
		t.Fatalf("fma32(Inf, 2, 1) = %v", got)
	}
	if got := fma32(inf, 0, 1); got == got {
		t.Fatalf("fma32(Inf, 0, 1) = %v, want NaN", got)
	}
}

// optimSrc is kernel input with zeros of both signs, subnormals and large
// and small magnitudes mixed in.
func optimSrc(r *rand.Rand, n int, sd float64) []float32 {
	s := testSrc(r, n)
	for i := range s {
		s[i] *= float32(sd)
	}
	for i := 3; i < n; i += 29 {
		switch i % 4 {
		case 0:
			s[i] = 0
		case 1:
			s[i] = float32(math.Copysign(0, -1))
		case 2:
			s[i] = 1e-41
		}
	}
	return s
}

var sgdTestCoefs = []SGDCoef{
	{NegLR: -0.1},
	{NegLR: -0.05, WeightDecay: 1e-2, Flags: uint32(SGDWeightDecay)},
	{NegLR: -0.1, Momentum: 0.9, Dampening1: 1, Flags: uint32(SGDMomentum)},
	{NegLR: -0.1, Momentum: 0.9, Dampening1: 0.75, Flags: uint32(SGDMomentum | SGDFirst | SGDWeightDecay), WeightDecay: 5e-4},
	{NegLR: -0.3, Momentum: 0.85, Dampening1: 1, Flags: uint32(SGDMomentum | SGDNesterov)},
	{NegLR: -0.3, Momentum: 0.85, Dampening1: 1, Flags: uint32(SGDMomentum | SGDNesterov | SGDFirst | SGDWeightDecay), WeightDecay: 0.1},
	{NegLR: -0.02, Momentum: 0.5, Dampening1: 0.9, Flags: uint32(SGDMomentum | SGDWeightDecay), WeightDecay: 3},
	{NegLR: -0.02, Momentum: 0.5, Dampening1: 0.9, Flags: uint32(SGDMomentum | SGDNesterov | SGDWeightDecay), WeightDecay: 3},
	{NegLR: -1e-3, Flags: uint32(SGDFirst | SGDNesterov)}, // no momentum: the other bits do nothing
}

var adamWTestCoefs = []AdamWCoef{
	{Decay: 0.99999, Beta1: 0.9, Beta1c: 0.1, Beta2: 0.999, Beta2c: 0.001, BC2Sqrt: 0.0316, Eps: 1e-8, NegStep: -0.01},
	{Decay: 1, Beta1: 0.5, Beta1c: 0.5, Beta2: 0.9999, Beta2c: 1e-4, BC2Sqrt: 0.7, Eps: 1e-3, NegStep: -0.2},
	{Decay: 0.9, Beta1: 0, Beta1c: 1, Beta2: 0, Beta2c: 1, BC2Sqrt: 1, Eps: 0, NegStep: -1},
}

// TestSGDStepKernel: every level bit-exact with the generic twin, for
// every flag combination across the shapes of the rig.
func TestSGDStepKernel(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	src := [][]float32{optimSrc(r, shapeMaxLen+shapeOffsets, 1), optimSrc(r, shapeMaxLen+shapeOffsets, 0.1), optimSrc(r, shapeMaxLen+shapeOffsets, 0.3)}
	rig := newShapeRig(t, nil, 3)
	want := [][]float32{make([]float32, shapeMaxLen), make([]float32, shapeMaxLen)}
	for _, l := range sgdStepImpl.Levels() {
		f, _ := sgdStepImpl.At(l)
		rig.run(t, func(s shape, _, out [][]float32) {
			for ci, c := range sgdTestCoefs {
				if (s.n+ci)%3 != 0 && s.n <= shapeMaxSmall && s.n > 20 {
					continue // every coefficient set on a third of the mid lengths, all on the short and long ones
				}
				for i := range out {
					copy(out[i], src[i][s.off:s.off+s.n])
				}
				wp, wb := want[0][:s.n], want[1][:s.n]
				copy(wp, out[0])
				copy(wb, out[2])
				buf := out[2]
				if SGDFlags(c.Flags)&SGDMomentum == 0 {
					buf = nil
				}
				f(out[0], out[1], buf, c)
				if buf == nil {
					wb = nil
				}
				sgdStepGeneric(wp, out[1], wb, c)
				for k := range wp {
					if math.Float32bits(out[0][k]) != math.Float32bits(wp[k]) {
						t.Fatalf("%v SGDStep %v coef %d: p[%d] = %v, generic %v", l, s, ci, k, out[0][k], wp[k])
					}
					if wb != nil && math.Float32bits(out[2][k]) != math.Float32bits(wb[k]) {
						t.Fatalf("%v SGDStep %v coef %d: buf[%d] = %v, generic %v", l, s, ci, k, out[2][k], wb[k])
					}
				}
				if buf == nil {
					for k := range out[2] {
						if out[2][k] != src[2][s.off+k] && !(out[2][k] != out[2][k]) {
							t.Fatalf("%v SGDStep %v coef %d: buf written without momentum", l, s, ci)
						}
					}
				}
			}
		})
	}
}

// TestAdamWStepKernel: every level bit-exact with the generic twin.
func TestAdamWStepKernel(t *testing.T) {
	r := rand.New(rand.NewSource(37))
	src := [][]float32{optimSrc(r, shapeMaxLen+shapeOffsets, 1), optimSrc(r, shapeMaxLen+shapeOffsets, 0.1),
		optimSrc(r, shapeMaxLen+shapeOffsets, 0.05), optimSrc(r, shapeMaxLen+shapeOffsets, 0.01)}
	for i, v := range src[3] {
		src[3][i] = v * v // second moments are squares
	}
	rig := newShapeRig(t, nil, 4)
	want := [][]float32{make([]float32, shapeMaxLen), make([]float32, shapeMaxLen), make([]float32, shapeMaxLen)}
	for _, l := range adamWStepImpl.Levels() {
		f, _ := adamWStepImpl.At(l)
		rig.run(t, func(s shape, _, out [][]float32) {
			c := adamWTestCoefs[s.pick(len(adamWTestCoefs))]
			for i := range out {
				copy(out[i], src[i][s.off:s.off+s.n])
			}
			wp, wm, wv := want[0][:s.n], want[1][:s.n], want[2][:s.n]
			copy(wp, out[0])
			copy(wm, out[2])
			copy(wv, out[3])
			f(out[0], out[1], out[2], out[3], c)
			adamWStepGeneric(wp, out[1], wm, wv, c)
			for k := range wp {
				for i, pair := range [][2]float32{{out[0][k], wp[k]}, {out[2][k], wm[k]}, {out[3][k], wv[k]}} {
					if math.Float32bits(pair[0]) != math.Float32bits(pair[1]) {
						t.Fatalf("%v AdamWStep %v: output %d [%d] = %v, generic %v", l, s, i, k, pair[0], pair[1])
					}
				}
			}
		})
	}
}
