package fuzz

import (
	"math"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// The kernel fuzz targets turn raw bytes into a length, a start offset and
// float32 bit patterns, run every level of one of asm's kernel tables (the
// normalize and lse families) and compare each with the generic twin
// and with a float64 reference under the kernel's stated bound:
//
//   - Scale: bit-exact with generic (one rounding per element);
//   - SumSquares and NormalizeBackward's dot product: (n+8)·eps·Σ|terms|;
//   - Exp: within 2 ULP of the correctly rounded e^x, NaN for NaN;
//   - MaxSumExp, SoftmaxScaled: Exp's bound (2.5 ULP of the exact e^d per
//     term) plus the sum's.
//
// Non-finite inputs are used where the contract defines the result;
// elsewhere only NaN-ness must agree.

const (
	eps32 = 0x1p-23
	eta32 = 0x1p-149 // the least subnormal: the rounding unit near 0
	expHi = 88.72283935546875
	expLo = -103.97208404541016 // below: Exp gives 0 (e^x < half the least subnormal)
)

// kernelInput is the kernel targets' byteReader: past the end of the bytes
// it yields the pattern (k mod 29 − 14)/3.
type kernelInput struct{ byteReader }

func newKernelInput(data []byte) (in *kernelInput, n, off int) {
	in = &kernelInput{byteReader{b: data}}
	n = int(in.u16()) % 700
	off = int(in.u8()) % 16
	return in, n, off
}

func (r *kernelInput) f32() float32 {
	if v, ok := r.next32(); ok {
		return v
	}
	return float32(r.k%29-14) / 3
}

// floats returns n floats starting off floats into a fresh buffer, so that
// the slice starts at any alignment.
func (r *kernelInput) floats(n, off int) []float32 {
	s := make([]float32, off+n)[off:]
	for i := range s {
		s[i] = r.f32()
	}
	return s
}

func isNaN(x float32) bool { return x != x }

func isInf(x float32) bool { return math.IsInf(float64(x), 0) }

// sumBound: (n+8)·eps·abs plus the rounding unit near 0 for each of the
// 2n+2 roundings that may land in the subnormal range.
func sumBound(n int, abs float64) float64 {
	return float64(n+8)*eps32*abs + float64(2*n+2)*eta32
}

func within(got, want, bound float64) bool { return math.Abs(got-want) <= bound }

// ulps is the distance in ULPs between two non-NaN float32 of the same sign
// (or zero); the bit patterns of non-negative floats are ordered.
func ulps(a, b float32) int64 {
	d := int64(math.Float32bits(a)) - int64(math.Float32bits(b))
	if d < 0 {
		return -d
	}
	return d
}

func levelsBut(ls []simd.Level) []simd.Level {
	var out []simd.Level
	for _, l := range ls {
		if l != simd.Generic {
			out = append(out, l)
		}
	}
	return out
}

func FuzzSumSquares(f *testing.F) {
	f.Add([]byte{17, 0, 3})
	f.Add([]byte{129, 0, 15, 0, 0, 0x80, 0x7f}) // +Inf first
	f.Add([]byte{9, 0, 1, 1, 0, 0xc0, 0x7f})    // NaN first
	f.Add([]byte{40, 0, 0, 0xff, 0xff, 0x7f, 0x7f, 0xff, 0xff, 0x7f, 0x7f})
	f.Add([]byte{33, 0, 7, 1, 0, 0, 0, 1, 0, 0, 0}) // subnormals
	tab := table[func(x []float32) float32](f, "SumSquares")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		x := in.floats(n, off)
		var ref float64
		nan, inf := false, false
		for _, v := range x {
			nan, inf = nan || isNaN(v), inf || isInf(v)
			ref += float64(v) * float64(v)
		}
		bound := sumBound(n, ref)
		want := gen(x)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := fn(x)
			switch {
			case isNaN(got) != isNaN(want) || nan != isNaN(got):
				t.Fatalf("%v: n=%d: got %v, generic %v (NaN input: %v)", l, n, got, want, nan)
			case nan:
			case inf:
				if !math.IsInf(float64(got), 1) || !math.IsInf(float64(want), 1) {
					t.Fatalf("%v: n=%d: Inf input: got %v, generic %v", l, n, got, want)
				}
			case ref+bound < math.MaxFloat32:
				if !within(float64(got), ref, bound) || !within(float64(want), ref, bound) {
					t.Fatalf("%v: n=%d: got %v, generic %v, exact %v, bound %.3g", l, n, got, want, ref, bound)
				}
			case ref-bound > math.MaxFloat32*(1+eps32):
				if !math.IsInf(float64(got), 1) || !math.IsInf(float64(want), 1) {
					t.Fatalf("%v: n=%d: overflow: got %v, generic %v", l, n, got, want)
				}
			}
		}
	})
}

func FuzzScale(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0, 0xc0, 0x3e})
	f.Add([]byte{129, 0, 15, 0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f})
	f.Add([]byte{2, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0xff})
	tab := table[func(dst, x []float32, a float32)](f, "Scale")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		a := in.f32()
		x := in.floats(n, off)
		want := make([]float32, n)
		gen(want, x, a)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := make([]float32, n+1)[:n] // a sentinel after dst
			got[:n+1][n] = 42
			fn(got, x, a)
			for k := range got {
				same := math.Float32bits(got[k]) == math.Float32bits(want[k])
				// when a and x[k] are both NaN, which payload wins depends
				// on the operand order
				if !same && !(isNaN(a) && isNaN(x[k]) && isNaN(got[k])) {
					t.Fatalf("%v: n=%d a=%v x[%d]=%v: got %v (%#x), generic %v (%#x)", l, n, a, k, x[k],
						got[k], math.Float32bits(got[k]), want[k], math.Float32bits(want[k]))
				}
			}
			if got[:n+1][n] != 42 {
				t.Fatalf("%v: n=%d: wrote past dst", l, n)
			}
		}
	})
}

func FuzzMul(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0, 0xc0, 0x3e})
	f.Add([]byte{129, 0, 15, 0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f})
	f.Add([]byte{2, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0xff})
	tab := table[func(dst, x, y []float32)](f, "Mul")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		x := in.floats(n, off)
		y := in.floats(n, off)
		want := make([]float32, n)
		gen(want, x, y)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := make([]float32, n+1)[:n] // a sentinel after dst
			got[:n+1][n] = 42
			fn(got, x, y)
			for k := range got {
				same := math.Float32bits(got[k]) == math.Float32bits(want[k])
				// when x[k] and y[k] are both NaN, which payload wins
				// depends on the operand order
				if !same && !(isNaN(x[k]) && isNaN(y[k]) && isNaN(got[k])) {
					t.Fatalf("%v: n=%d x[%d]=%v y=%v: got %v (%#x), generic %v (%#x)", l, n, k, x[k], y[k],
						got[k], math.Float32bits(got[k]), want[k], math.Float32bits(want[k]))
				}
			}
			if got[:n+1][n] != 42 {
				t.Fatalf("%v: n=%d: wrote past dst", l, n)
			}
		}
	})
}

func FuzzAdd(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0, 0xc0, 0x3e})
	f.Add([]byte{129, 0, 15, 0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f})
	f.Add([]byte{2, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0xff})
	tab := table[func(dst, x, y []float32)](f, "Add")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		x := in.floats(n, off)
		y := in.floats(n, off)
		want := make([]float32, n)
		gen(want, x, y)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := make([]float32, n+1)[:n] // a sentinel after dst
			got[:n+1][n] = 42
			fn(got, x, y)
			for k := range got {
				same := math.Float32bits(got[k]) == math.Float32bits(want[k])
				// when x[k] and y[k] are both NaN, which payload wins
				// depends on the operand order
				if !same && !(isNaN(x[k]) && isNaN(y[k]) && isNaN(got[k])) {
					t.Fatalf("%v: n=%d x[%d]=%v y=%v: got %v (%#x), generic %v (%#x)", l, n, k, x[k], y[k],
						got[k], math.Float32bits(got[k]), want[k], math.Float32bits(want[k]))
				}
			}
			if got[:n+1][n] != 42 {
				t.Fatalf("%v: n=%d: wrote past dst", l, n)
			}
		}
	})
}

func FuzzNormalizeBackward(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x3f})
	f.Add([]byte{129, 0, 15, 0, 0, 0x80, 0x7f, 0, 0, 0, 0})                   // inv = +Inf
	f.Add([]byte{5, 0, 1, 0, 0, 0x80, 0x5f, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0}) // huge inv, subnormal x
	f.Add([]byte{64, 0, 2, 0, 0, 0xc0, 0x7f})                                 // NaN inv
	f.Add([]byte{48, 0, 0, 0xab, 0xaa, 0x8a, 0xc0, 0, 0, 0x80, 0xc0})         // negative inv and radial
	tab := table[func(dx, dy, x []float32, inv, radial float32)](f, "NormalizeBackward")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		inv, radial := in.f32(), in.f32()
		x, dy := in.floats(n, off), in.floats(n, (off+5)%16)
		want := make([]float32, n)
		gen(want, dy, x, inv, radial)

		// float64 reference from the float32 q_k = x_k·inv every level forms
		nan := isNaN(inv) || isNaN(radial)
		finite := !isInf(inv) && !isInf(radial)
		iv, rad := float64(inv), float64(radial)
		var p, abs, big float64
		for k := range x {
			q := float64(x[k] * inv)
			nan = nan || isNaN(x[k]) || isNaN(dy[k])
			finite = finite && !isInf(x[k]) && !isInf(dy[k]) && !math.IsInf(q, 0)
			p += q * float64(dy[k])
			abs += math.Abs(q * float64(dy[k]))
			big = math.Max(big, math.Max(math.Abs(q), math.Abs(float64(dy[k])*iv)))
		}
		ep := sumBound(n, abs)
		big = math.Max(big, abs)
		// Every level may hold any p within ep of the exact one, so the
		// products q·p are only known to stay in range through |p| + ep.
		pMax := math.Abs(p) + ep
		for k := range x {
			q := math.Abs(float64(x[k] * inv))
			big = math.Max(big, math.Max(q*pMax*math.Abs(iv), q*pMax))
			big = math.Max(big, math.Abs(rad)*q)
		}
		inRange := finite && big*(1+1e-3) < 0x1p126

		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := make([]float32, n)
			fn(got, dy, x, inv, radial)
			for k := range got {
				switch {
				case nan:
					if !isNaN(got[k]) || !isNaN(want[k]) {
						t.Fatalf("%v: n=%d: NaN input, element %d: got %v, generic %v", l, n, k, got[k], want[k])
					}
				case inRange:
					q := float64(x[k] * inv)
					ref := (float64(dy[k])-q*p)*iv + rad*q
					ai := math.Abs(iv)
					// The sum's error times |q|·|inv|; relative rounding of each
					// step; the two roundings before the ·inv (q·p and dy − q·p)
					// may be subnormal, ½η absolute each, which ·inv scales.
					bound := math.Abs(q)*ai*ep +
						4*eps32*(math.Abs(float64(dy[k]))*ai+math.Abs(q)*(math.Abs(p)+ep)*ai+math.Abs(rad*q)) +
						eta32*ai + 8*eta32
					if !within(float64(got[k]), ref, bound) || !within(float64(want[k]), ref, bound) {
						t.Fatalf("%v: n=%d inv=%v radial=%v element %d: got %v, generic %v, exact %v, bound %.3g",
							l, n, inv, radial, k, got[k], want[k], ref, bound)
					}
				}
			}
			// dx = dy gives the same bits as separate slices
			d := append([]float32(nil), dy...)
			fn(d, d, x, inv, radial)
			for k := range d {
				if math.Float32bits(d[k]) != math.Float32bits(got[k]) {
					t.Fatalf("%v: n=%d: dx=dy element %d is %v, %v with separate dx", l, n, k, d[k], got[k])
				}
			}
		}
	})
}

// expOK reports whether got is e^x within 2 ULP of the correctly rounded
// result, NaN exactly for NaN.
func expOK(got, x float32) bool {
	want := float32(math.Exp(float64(x)))
	if isNaN(got) || isNaN(want) {
		return isNaN(got) == isNaN(want)
	}
	return ulps(got, want) <= 2
}

func FuzzExp(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x7f, 0, 0, 0x80, 0xff})
	f.Add([]byte{129, 0, 15, 0x18, 0x72, 0xb1, 0x42, 0xb6, 0xf1, 0xcf, 0xc2}) // expHi, expLo
	f.Add([]byte{64, 0, 1, 0, 0, 0xb0, 0xc2, 0, 0, 0xc8, 0xc2})               // subnormal results
	tab := table[func(dst, x []float32)](f, "Exp")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		x := in.floats(n, off)
		want := make([]float32, n)
		gen(want, x)
		for k := range x {
			if !expOK(want[k], x[k]) {
				t.Fatalf("generic: e^%v (%#x) = %v", x[k], math.Float32bits(x[k]), want[k])
			}
		}
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := make([]float32, n)
			fn(got, x)
			for k := range x {
				if !expOK(got[k], x[k]) {
					t.Fatalf("%v: e^%v (%#x) = %v, correctly rounded %v", l, x[k], math.Float32bits(x[k]), got[k], float32(math.Exp(float64(x[k]))))
				}
			}
		}
	})
}

func FuzzMaxSumExp(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0, 0x80, 0xff, 0, 0, 0, 0})
	f.Add([]byte{129, 0, 15, 0, 0, 0xc0, 0x3f, 0, 0, 0x10, 0x40, 0, 0, 0x80, 0xff})
	f.Add([]byte{0, 0, 0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40}) // empty z
	f.Add([]byte{40, 0, 9, 0, 0, 0x20, 0x42, 0, 0, 0x80, 0x3f, 0, 0, 0xc8, 0xc2})
	tab := table[func(z []float32, m, s float32) (float32, float32)](f, "MaxSumExp")
	gen, _ := tab.At(simd.Generic)
	negInf := float32(math.Inf(-1))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		// the contract: z and m without NaN or +Inf (−Inf is allowed),
		// s ≥ 0 finite (a sum of exponentials)
		m, s := in.f32(), in.f32()
		if isNaN(m) || math.IsInf(float64(m), 1) {
			m = negInf
		}
		if s = float32(math.Abs(float64(s))); isNaN(s) || isInf(s) {
			s = 0
		}
		z := in.floats(n, off)
		mx := m
		for k, v := range z {
			if isNaN(v) || math.IsInf(float64(v), 1) {
				z[k], v = negInf, negInf
			}
			mx = max(mx, v)
		}
		gm, gs := gen(z, m, s)
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			lm, ls := fn(z, m, s)
			if n == 0 {
				if math.Float32bits(lm) != math.Float32bits(m) || math.Float32bits(ls) != math.Float32bits(s) {
					t.Fatalf("%v: empty z changed the state (%v, %v) to (%v, %v)", l, m, s, lm, ls)
				}
				continue
			}
			if isInf(mx) {
				continue // max(m, max z) = −Inf: outside the contract
			}
			if lm != gm || lm != mx {
				t.Fatalf("%v: n=%d: max %v, generic %v, want %v", l, n, lm, gm, mx)
			}
			var want float64
			for _, v := range z {
				want += math.Exp(float64(v - mx))
			}
			if s != 0 {
				want += float64(s) * math.Exp(float64(m-mx))
			}
			bound := float64(n+8)*eps32*want + 2.5*eps32*want + (2.5*(float64(n)+math.Max(1, float64(s)))+float64(n+1))*eta32
			if want+bound >= math.MaxFloat32 {
				continue // the sum may overflow
			}
			if !within(float64(ls), want, bound) || !within(float64(gs), want, bound) {
				t.Fatalf("%v: n=%d m=%v s=%v: sum %v, generic %v, exact %v, bound %.3g", l, n, m, s, ls, gs, want, bound)
			}
		}
	})
}

// softmaxOK checks one element of SoftmaxScaled against e^(z−lse)·scale
// (from the float32 difference every level forms): 3·eps relative (Exp's
// 2.5 ULP and the product's rounding) plus 2.5·|scale| subnormal ULPs; ±Inf
// where e^(z−lse) or the product overflows, NaN for NaN; no check at the
// overflow boundary, where both MaxFloat32 and Inf are within 2 ULP.
// Below expLo the float32 e^(z−lse) is 0, so an infinite scale gives NaN
// (0·Inf), and at the underflow boundary, where e^d rounds to 0 or to the
// least subnormal, NaN or ±Inf.
func softmaxOK(got, z, lse, scale float32) bool {
	d := z - lse
	want := math.Exp(float64(d)) * float64(scale)
	if d > expHi+1e-4 {
		want = math.Inf(1) * float64(scale)
	}
	if isInf(scale) && d < expLo+1e-4 {
		if d < expLo-1e-4 {
			return isNaN(got)
		}
		return isNaN(got) || math.IsInf(float64(got), int(math.Copysign(1, float64(scale))))
	}
	switch {
	case want != want:
		return isNaN(got)
	case math.Abs(want) > math.MaxFloat32*(1+4*eps32):
		return math.IsInf(float64(got), int(math.Copysign(1, want)))
	case d > expHi-1e-4 || math.Abs(want) > math.MaxFloat32*(1-4*eps32):
		return !isNaN(got)
	}
	return within(float64(got), want, 3*eps32*math.Abs(want)+(2.5*math.Abs(float64(scale))+0.5)*eta32)
}

func FuzzSoftmaxScaled(f *testing.F) {
	f.Add([]byte{17, 0, 3, 0, 0, 0x40, 0x40, 0, 0, 0, 0xbf})
	f.Add([]byte{129, 0, 15, 0, 0, 0xa0, 0xc2, 0, 0, 0x80, 0x3f, 0, 0, 0x80, 0x7f}) // overflow, +Inf z
	f.Add([]byte{33, 0, 4, 0, 0, 0x80, 0x7f, 0, 0, 0, 0})                           // lse = +Inf, scale 0
	f.Add([]byte{64, 0, 1, 0, 0, 0xbe, 0x42, 0x28, 0x6b, 0x6e, 0x61})               // subnormal e, large scale
	tab := table[func(dst, z []float32, lse, scale float32)](f, "SoftmaxScaled")
	gen, _ := tab.At(simd.Generic)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, n, off := newKernelInput(data)
		lse, scale := in.f32(), in.f32()
		z := in.floats(n, off)
		want := make([]float32, n)
		gen(want, z, lse, scale)
		for k := range z {
			if !softmaxOK(want[k], z[k], lse, scale) {
				t.Fatalf("generic: z=%v lse=%v scale=%v: %v", z[k], lse, scale, want[k])
			}
		}
		for _, l := range levelsBut(tab.Levels()) {
			fn, _ := tab.At(l)
			got := make([]float32, n)
			fn(got, z, lse, scale)
			for k := range z {
				if !softmaxOK(got[k], z[k], lse, scale) {
					t.Fatalf("%v: z=%v lse=%v scale=%v: got %v, generic %v, float64 %v", l, z[k], lse, scale, got[k], want[k],
						math.Exp(float64(z[k]-lse))*float64(scale))
				}
			}
		}
	})
}
