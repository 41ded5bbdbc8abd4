package asm

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/internal/simd"
)

// expWant is e^x rounded once to float32 (float64 math.Exp is within 1 ULP
// of e^x in float64, far below float32's half ULP).
func expWant(x float32) float32 { return float32(math.Exp(float64(x))) }

// expULP is the distance in ULPs of got from the correctly rounded e^x; -1
// when exactly one of them is NaN.
func expULP(got, x float32) int64 {
	want := expWant(x)
	if got != got || want != want {
		if (got != got) != (want != want) {
			return -1
		}
		return 0
	}
	return ulpDiff(got, want)
}

// expSpecials are the inputs at the edges of exp's range: NaN, ±Inf, the
// bounds of the finite and non-zero results and their neighbours, and
// arguments with subnormal results.
func expSpecials() []float32 {
	inf := float32(math.Inf(1))
	xs := []float32{float32(math.NaN()), inf, -inf, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 1, -1,
		88, 89, 90, 1e30, -1e30, -87.3, -88, -100, -103.9, -104, -105, -200, 0x1p-149, -0x1p-149}
	for _, b := range []float32{expHi, expLo, 88.72283905206835, -87.33654475055310898657} {
		up, down := b, b
		for range 4 {
			xs = append(xs, up, down)
			up, down = math.Nextafter32(up, inf), math.Nextafter32(down, -inf)
		}
	}
	return xs
}

// lseSrc returns n random exp arguments of scale sc, with expSpecials
// spread through it (every 11th element) so that they land in every lane
// and in the tails.
func lseSrc(r *rand.Rand, n int, sc float64) []float32 {
	s := randSlice(r, n, sc)
	sp := expSpecials()
	for i, j := 3, 0; i < n; i, j = i+11, j+1 {
		s[i] = sp[j%len(sp)]
	}
	return s
}

// TestExpKernel: every level within 2 ULP of the correctly rounded e^x on
// every shape, NaN exactly for NaN.
func TestExpKernel(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	rig := newShapeRig(t, [][]float32{lseSrc(r, shapeMaxLen+shapeOffsets, 40)}, 1)
	tab := expImpl
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		var worst int64
		var worstX float32
		rig.run(t, func(s shape, in, out [][]float32) {
			f(out[0], in[0])
			for k, x := range in[0] {
				d := expULP(out[0][k], x)
				if d < 0 || d > 2 {
					t.Fatalf("%v Exp %v: e^%v (%#x) = %v, correctly rounded %v", l, s, x, math.Float32bits(x), out[0][k], expWant(x))
				}
				if d > worst {
					worst, worstX = d, x
				}
			}
		})
		t.Logf("Exp %-8v worst error %d ULP at x = %v", l, worst, worstX)
	}
}

// TestExpULPSweep measures every level against the correctly rounded e^x
// over TestExpULP's sample of the float32 range: every 61st bit pattern in
// [−88.72, 88.72], every 7th down to −103.97 (subnormal results), every 3rd
// in [−1, 1], plus the specials. The documented bound is 2 ULP. (-short:
// a 16 times sparser sample.)
func TestExpULPSweep(t *testing.T) {
	stride := uint32(1)
	if testing.Short() {
		stride = 16
	}
	var xs []float32
	emit := func(lo, hi, step uint32, neg, pos bool) {
		for b := lo; b < hi; b += step * stride {
			if pos {
				xs = append(xs, math.Float32frombits(b))
			}
			if neg {
				xs = append(xs, -math.Float32frombits(b))
			}
		}
	}
	type acc struct {
		worst  int64
		worstX float32
	}
	tab := expImpl
	levels := tab.Levels()
	stats := make([]acc, len(levels))
	got := make([]float32, 1<<16)
	want := make([]float32, 1<<16)
	flush := func() {
		for i, x := range xs {
			want[i] = expWant(x)
		}
		for li, l := range levels {
			f, _ := tab.At(l)
			f(got[:len(xs)], xs)
			for i, x := range xs {
				if d := ulpDiff(got[i], want[i]); d > stats[li].worst || got[i] != got[i] {
					if got[i] != got[i] {
						t.Fatalf("%v: e^%v is NaN", l, x)
					}
					stats[li].worst, stats[li].worstX = d, x
				}
			}
		}
		xs = xs[:0]
	}
	chunk := func(lo, hi, step uint32, neg, pos bool) {
		for b := lo; b < hi; {
			e := min(hi, b+step*stride*(1<<14))
			emit(b, e, step, neg, pos)
			flush()
			b = e
		}
	}
	chunk(0, 0x42b17218, 61, true, true)          // |x| < 88.72
	chunk(0x42b17218, 0x42cff1b6, 7, true, false) // −88.72 .. −103.97
	chunk(0x3f000000, 0x3f800000, 3, true, true)  // 0.5 ≤ |x| < 1
	xs = append(xs, expSpecials()[1:]...)         // NaN is TestExpKernel's
	flush()
	for li, l := range levels {
		t.Logf("Exp %-8v worst error %d ULP at x = %v", l, stats[li].worst, stats[li].worstX)
		require.LessOrEqual(t, stats[li].worst, int64(2), "%v: e^%v", l, stats[li].worstX)
	}
}

// maxSumExpRef is the float64 reference of MaxSumExp from the float32
// arguments z_k − m' and m − m' that every level forms, with its bound:
// each term within 2.5 ULP of e^(its argument) (2 ULP from the correctly
// rounded value, which is within half an ULP), the sum within
// (n+8)·eps·Σ terms, plus the least subnormal for each term that may
// round in the subnormal range.
func maxSumExpRef(z []float32, m, s float32) (mx float32, want, bound float64) {
	mx = m
	for _, v := range z {
		if v > mx {
			mx = v
		}
	}
	for _, v := range z {
		want += math.Exp(float64(v - mx))
	}
	if s != 0 {
		want += float64(s) * math.Exp(float64(m-mx))
	}
	n := len(z)
	// a subnormal term is within 2.5 ULP = 2.5·eta32 (times s for the old
	// state's); each of the n+1 additions may round near zero
	sub := 2.5*(float64(n)+math.Max(1, float64(s))) + float64(n+1)
	return mx, want, float64(n+8)*eps32*want + 2.5*eps32*want + sub*eta32
}

// TestMaxSumExpKernel: every level returns the exact maximum and a sum
// within maxSumExpRef's bound, on every shape, from two states per shape
// (an empty one or not, and m above every z or below); an empty z returns
// the state unchanged.
func TestMaxSumExpKernel(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	z := randSlice(r, shapeMaxLen+shapeOffsets, 4)
	for i := 5; i < len(z); i += 37 {
		z[i] = float32(math.Inf(-1)) // left out of the sum
	}
	for i := 9; i < len(z); i += 41 {
		z[i] -= 95 // subnormal terms
	}
	rig := newShapeRig(t, [][]float32{z}, 0)
	tab := maxSumExpImpl
	negInf := float32(math.Inf(-1))
	states := [][2]float32{{negInf, 0}, {1.5, 2.25}, {40, 1e-3}, {-20, 1e30}}
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		var w errStat
		rig.run(t, func(s shape, in, _ [][]float32) {
			for _, st := range [][2]float32{states[s.pick(2)], states[2+s.pick(len(states)-2)]} {
				m, sum := f(in[0], st[0], st[1])
				if s.n == 0 {
					if math.Float32bits(m) != math.Float32bits(st[0]) || math.Float32bits(sum) != math.Float32bits(st[1]) {
						t.Fatalf("%v MaxSumExp %v from %v: got (%v, %v)", l, s, st, m, sum)
					}
					continue
				}
				mx, want, bound := maxSumExpRef(in[0], st[0], st[1])
				if math.IsInf(float64(mx), -1) {
					continue // all −Inf: outside the contract
				}
				if m != mx {
					t.Fatalf("%v MaxSumExp %v from %v: max %v, want %v", l, s, st, m, mx)
				}
				w.check(t, float64(sum), want, bound, want, func() string { return fmt.Sprintf("%v MaxSumExp %v from %v", l, s, st) })
			}
		})
		w.log(t, "MaxSumExp", l)
	}
}

// TestSoftmaxScaledKernel: every level within 3·eps of e^(z−lse)·scale
// (the Exp bound, 2.5 ULP of e^d, then one rounding of the product) plus
// the subnormal rounding unit, on every shape (the (lse, scale) pairs
// rotate over the shapes); where e^(z−lse) overflows, ±Inf; NaN for NaN.
func TestSoftmaxScaledKernel(t *testing.T) {
	r := rand.New(rand.NewSource(23))
	rig := newShapeRig(t, [][]float32{lseSrc(r, shapeMaxLen+shapeOffsets, 4)}, 1)
	tab := softmaxRowImpl
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		var w errStat
		params := [][2]float32{{3, -0.5}, {-80, 1}, {95, 1e20}, {0, 0}}
		rig.run(t, func(s shape, in, out [][]float32) {
			p := params[s.pick(len(params))]
			lse, scale := p[0], p[1]
			f(out[0], in[0], lse, scale)
			for k, z := range in[0] {
				got := out[0][k]
				where := func() string {
					return fmt.Sprintf("%v SoftmaxScaled lse=%v scale=%v %v: z=%v", l, lse, scale, s, z)
				}
				checkSoftmaxElem(t, &w, got, z, lse, scale, where)
			}
		})
		w.log(t, "SoftmaxScaled", l)
	}
}

// checkSoftmaxElem checks one element of SoftmaxScaled against
// e^(z−lse)·scale in float64 (from the float32 difference every level
// forms); see TestSoftmaxScaledKernel for the bound.
func checkSoftmaxElem(t testing.TB, w *errStat, got, z, lse, scale float32, where func() string) {
	d := z - lse
	e := math.Exp(float64(d))
	want := e * float64(scale)
	if d > expHi+1e-4 { // e^d overflows float32: Inf·scale
		want = math.Inf(1) * float64(scale)
	}
	switch {
	case want != want:
		if got == got {
			t.Fatalf("%s: got %v, want NaN", where(), got)
		}
	case math.Abs(want) > math.MaxFloat32*(1+4*eps32):
		if !math.IsInf(float64(got), int(math.Copysign(1, want))) {
			t.Fatalf("%s: got %v, want %v", where(), got, want)
		}
	case d > expHi-1e-4 || math.Abs(want) > math.MaxFloat32*(1-4*eps32):
		// at the overflow boundary: MaxFloat32 or Inf for e^d are both
		// within 2 ULP, and the product may follow either
	default:
		sc := math.Abs(want) // the eps statistic only where e^d is normal
		if e < 0x1p-126 {
			sc = 0
		}
		w.check(t, float64(got), want, 3*eps32*math.Abs(want)+(2.5*math.Abs(float64(scale))+0.5)*eta32, sc, where)
	}
}

// TestNormLSEAssembly checks the generated normalize_amd64.s and
// lse_amd64.s: the AVX2 bodies use only X0–X15/Y0–Y15 and no Z or K
// registers (avo hands out X16+/Y16+ under register pressure), no legacy
// SSE instruction appears anywhere, every RET follows a VZEROUPPER, and
// lse_amd64.s holds each constant of expf as the float32 Go rounds it to.
func TestNormLSEAssembly(t *testing.T) {
	bad := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[0-7])\b`)
	vecReg := regexp.MustCompile(`\b[XYZ][0-9]+\b`)
	data := map[uint32]bool{}
	for _, file := range []string{"normalize_amd64.s", "lse_amd64.s"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Skip("no generated assembly:", err)
		}
		fn, prev, bodies := "", "", 0
		for _, line := range strings.Split(string(src), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "//") || strings.HasPrefix(f[0], "#") || strings.HasSuffix(f[0], ":") {
				continue
			}
			switch f[0] {
			case "TEXT":
				fn, prev = f[1], ""
				bodies++
				continue
			case "DATA":
				if i := strings.Index(line, "$"); i >= 0 {
					v, err := strconv.ParseUint(strings.TrimSpace(line[i+1:]), 0, 32)
					require.NoError(t, err, line)
					data[uint32(v)] = true
				}
				continue
			case "GLOBL":
				continue
			}
			if strings.Contains(fn, "AVX2(") && bad.MatchString(line) {
				t.Errorf("%s: %s: AVX-512 register in an AVX2 body", file, strings.TrimSpace(line))
			}
			if !strings.HasPrefix(f[0], "V") && !strings.HasPrefix(f[0], "K") && vecReg.MatchString(line) {
				t.Errorf("%s: %s: legacy SSE instruction", file, strings.TrimSpace(line))
			}
			if f[0] == "RET" && prev != "VZEROUPPER" {
				t.Errorf("%s: %s: RET without VZEROUPPER", file, fn)
			}
			prev = f[0]
		}
		want := map[string]int{"normalize_amd64.s": 10, "lse_amd64.s": 6}[file] // 5 or 3 kernels × 2 levels
		require.Equal(t, want, bodies, "%s: bodies", file)
	}
	var (
		log2eF, ln2HiF, ln2LoF float32 = log2e, ln2Hi, ln2Lo
		pF                             = []float32{expP0, expP1, expP2, expP3, expP4, expP5}
	)
	for _, c := range append([]float32{log2eF, ln2HiF, ln2LoF}, pF...) {
		require.True(t, data[math.Float32bits(c)], "constant %v (%#x) missing from lse_amd64.s", c, math.Float32bits(c))
	}
}

// TestLSEKernelLevelsAgree: on one row, every level's MaxSumExp state gives
// a log-sum-exp within the bound of the generic's, and SoftmaxScaled with
// that lse sums to 1 within the same bound (the kernels as the loss
// composes them).
func TestLSEKernelLevelsAgree(t *testing.T) {
	r := rand.New(rand.NewSource(24))
	z := randSlice(r, 10000, 6)
	g, _ := maxSumExpImpl.At(simd.Generic)
	gm, gs := g(z, float32(math.Inf(-1)), 0)
	for _, l := range maxSumExpImpl.Levels() {
		f, _ := maxSumExpImpl.At(l)
		sm, _ := softmaxRowImpl.At(l)
		m, s := f(z[:6000], float32(math.Inf(-1)), 0)
		m, s = f(z[6000:], m, s) // folding in two pieces
		require.Equal(t, gm, m, "%v", l)
		bound := 2 * (float64(len(z)+8)*eps32 + 2.5*eps32)
		require.InDelta(t, float64(gs), float64(s), bound*float64(gs), "%v", l)
		lse := m + float32(math.Log(float64(s)))
		p := make([]float32, len(z))
		sm(p, z, lse, 1)
		var sum float64
		for _, v := range p {
			sum += float64(v)
		}
		require.InDelta(t, 1, sum, bound+float64(len(z)+4)*eps32, "%v", l)
	}
}
