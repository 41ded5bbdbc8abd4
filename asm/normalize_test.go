package asm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/internal/simd"
)

// ---------------------------------------------------------------------------
// The shape rig, shared by the normalize and lse kernel tests: every length
// 0..2·16·4+1 (two iterations of the widest unrolled loop, plus one) and a
// few large ones, every start offset 0..15 floats, each slice flush against
// a PROT_NONE page at its start or at its end.

const (
	shapeMaxSmall = 2*16*4 + 1
	shapeOffsets  = 16
	sentinelBits  = 0x7fc0beef // a NaN no kernel produces
	eta32         = 0x1p-149   // the least subnormal: the absolute rounding unit near 0
)

var shapeLengths = func() []int {
	ls := make([]int, 0, shapeMaxSmall+3)
	for n := 0; n <= shapeMaxSmall; n++ {
		ls = append(ls, n)
	}
	return append(ls, 1000, 4097)
}()

const shapeMaxLen = 4097

// shape is one placement of a kernel's slices: n elements, off floats from
// the guard page at the slice's start (head) or end (tail). Over the
// offsets each length starts at every alignment mod 64 bytes.
type shape struct {
	n, off int
	tail   bool
}

// pick returns one of k variants (states, parameters) for the shape, so
// that a test covers its variants across the shapes rather than repeating
// every shape for each (qemu runs these tests too).
func (s shape) pick(k int) int {
	t := 0
	if s.tail {
		t = 1
	}
	return (s.n + s.off + t) % k
}

func (s shape) String() string {
	side := "head"
	if s.tail {
		side = "tail"
	}
	return fmt.Sprintf("n=%d offset=%d %s", s.n, s.off, side)
}

// shapeRig holds one pair of guard buffers (small and large lengths) per
// slice of a kernel: its inputs, then its outputs.
type shapeRig struct {
	srcs         [][]float32 // per input, len ≥ shapeMaxLen+shapeOffsets
	small, large []*guardBuf
}

func newShapeRig(t testing.TB, srcs [][]float32, outputs int) *shapeRig {
	r := &shapeRig{srcs: srcs}
	for range len(srcs) + outputs {
		r.small = append(r.small, newGuardBuf(t, shapeMaxSmall+shapeOffsets))
		r.large = append(r.large, newGuardBuf(t, shapeMaxLen+shapeOffsets))
	}
	return r
}

// run calls fn for every shape. Input i holds srcs[i][off:off+n]; outputs
// hold the sentinel. Afterwards it fails the test when an input changed or
// anything outside the slices was written.
func (r *shapeRig) run(t *testing.T, fn func(s shape, in, out [][]float32)) {
	t.Helper()
	nIn := len(r.srcs)
	slices := make([][]float32, len(r.small))
	for _, n := range shapeLengths {
		bufs := r.small
		if n > shapeMaxSmall {
			bufs = r.large
		}
		for off := 0; off < shapeOffsets; off++ {
			for _, tail := range []bool{false, true} {
				s := shape{n: n, off: off, tail: tail}
				for i, g := range bufs {
					for k := range g.data {
						g.data[k] = math.Float32frombits(sentinelBits)
					}
					if tail {
						slices[i] = g.tail(n, off)
					} else {
						slices[i] = g.head(n, off)
					}
					if i < nIn {
						copy(slices[i], r.srcs[i][off:off+n])
					}
				}
				fn(s, slices[:nIn], slices[nIn:])
				for i, g := range bufs {
					start := len(g.data) - off - n
					if !tail {
						start = off
					}
					for k, v := range g.data {
						inside := k >= start && k < start+n
						if !inside && math.Float32bits(v) != sentinelBits {
							t.Fatalf("%v: slice %d: element %d outside the slice was written (%#x)", s, i, k-start, math.Float32bits(v))
						}
						if inside && i < nIn && math.Float32bits(v) != math.Float32bits(r.srcs[i][off+k-start]) {
							t.Fatalf("%v: input %d changed at %d", s, i, k-start)
						}
					}
				}
			}
		}
	}
}

// errStat keeps the worst error of a kernel at one level, as a fraction of
// its bound and in units of eps·scale (scale: the magnitude the bound is
// relative to).
type errStat struct {
	ratio, eps float64
	where      string
}

// check fails t unless |got − want| ≤ bound, and records the error.
// (No t.Helper: it is called per element, and where() names the place.)
func (w *errStat) check(t testing.TB, got, want, bound, scale float64, where func() string) {
	e := math.Abs(got - want)
	if !(e <= bound) {
		t.Fatalf("%s: got %v, want %v: error %.3g exceeds the bound %.3g", where(), got, want, e, bound)
	}
	if bound > 0 && e/bound > w.ratio {
		w.ratio, w.where = e/bound, where()
	}
	if scale >= 0x1p-126 { // in units of eps only where scale is a normal float
		w.eps = math.Max(w.eps, e/(eps32*scale))
	}
}

func (w *errStat) log(t testing.TB, kernel string, l simd.Level) {
	t.Logf("%-22s %-8v worst error %.3f of the bound (%.3g eps of the scale) at %s", kernel, l, w.ratio, w.eps, w.where)
}

// sumBound is the bound of an n-term float32 sum or dot product whose terms
// have magnitudes summing to abs: (n+8)·eps·abs, plus the absolute rounding
// unit near zero for each of the (at most 2n+2) roundings that may land in
// the subnormal range.
func sumBound(n int, abs float64) float64 {
	return float64(n+8)*eps32*abs + float64(2*n+2)*eta32
}

// testSrc returns n normal random floats of scale 1, with every 13th
// scaled by 2^±20 so that the lanes hold mixed magnitudes.
func testSrc(r *rand.Rand, n int) []float32 {
	s := randSlice(r, n, 1)
	for i := 5; i < n; i += 13 {
		if i%2 == 0 {
			s[i] *= 0x1p20
		} else {
			s[i] *= 0x1p-20
		}
	}
	return s
}

// ---------------------------------------------------------------------------
// normalize family

// TestSumSquaresKernel: every level within (n+8)·eps·Σx² of the exact sum
// of squares, on every shape.
func TestSumSquaresKernel(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	rig := newShapeRig(t, [][]float32{testSrc(r, shapeMaxLen+shapeOffsets)}, 0)
	tab := sumSquaresImpl
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		var w errStat
		rig.run(t, func(s shape, in, _ [][]float32) {
			var ref float64
			for _, v := range in[0] {
				ref += float64(v) * float64(v)
			}
			got := float64(f(in[0]))
			w.check(t, got, ref, sumBound(s.n, ref), ref, func() string { return fmt.Sprintf("%v SumSquares %v", l, s) })
		})
		w.log(t, "SumSquares", l)
	}
}

// TestScaleKernel: every level bit-exact with the generic twin.
func TestScaleKernel(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	src := testSrc(r, shapeMaxLen+shapeOffsets)
	src[40], src[41], src[42], src[43] = 0, float32(math.Copysign(0, -1)), 1e-40, -3e38 // zeros, subnormal, overflow
	rig := newShapeRig(t, [][]float32{src}, 1)
	tab := scaleImpl
	want := make([]float32, shapeMaxLen)
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		for _, a := range []float32{0.37, -3} {
			rig.run(t, func(s shape, in, out [][]float32) {
				f(out[0], in[0], a)
				scaleGeneric(want, in[0], a)
				for k, g := range out[0] {
					if math.Float32bits(g) != math.Float32bits(want[k]) {
						t.Fatalf("%v Scale a=%v %v: element %d is %v, generic %v", l, a, s, k, g, want[k])
					}
				}
			})
		}
	}
}

// normBackwardRef is the float64 reference of NormalizeBackward from the
// float32 x̂_k = x_k·inv that every level forms, with the bound of each
// element: the dot product's bound carried through x̂_k·p·inv, plus
// 4·eps of the magnitudes combined per element (each level rounds at most
// five times there), plus the absolute rounding unit near zero: ½η for
// each of the two roundings before the ·inv (q·p and dy − q·p, which may be
// subnormal), scaled by |inv|, and 8η after it.
//
// mag is the magnitude of the terms of each element, Σ|dy_k·inv|,
// |x̂_k·p·inv|, |radial·x̂_k|: the scale of its error.
func normBackwardRef(dy, x []float32, inv, radial float32) (want, bound, mag []float64) {
	n := len(x)
	iv, rad := float64(inv), float64(radial)
	ai := math.Abs(iv)
	var p, abs float64
	for k := range x {
		q := float64(x[k] * inv)
		p += q * float64(dy[k])
		abs += math.Abs(q * float64(dy[k]))
	}
	ep := sumBound(n, abs)
	want, bound, mag = make([]float64, n), make([]float64, n), make([]float64, n)
	for k := range x {
		q := float64(x[k] * inv)
		want[k] = (float64(dy[k])-q*p)*iv + rad*q
		mag[k] = math.Abs(float64(dy[k]))*ai + math.Abs(q*p)*ai + math.Abs(rad*q)
		bound[k] = math.Abs(q)*ai*ep +
			4*eps32*(math.Abs(float64(dy[k]))*ai+math.Abs(q)*(math.Abs(p)+ep)*ai+math.Abs(rad*q)) +
			eta32*ai + 8*eta32
	}
	return want, bound, mag
}

// TestNormalizeBackwardKernel: every level within normBackwardRef's bound
// on every shape, with dx separate from dy and with dx = dy (the aliased
// call must give the same bits as the separate one), and dx = 0 for a zero
// row.
func TestNormalizeBackwardKernel(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	xs, dys := testSrc(r, shapeMaxLen+shapeOffsets), testSrc(r, shapeMaxLen+shapeOffsets)
	rig := newShapeRig(t, [][]float32{xs, dys}, 1)
	alias := newShapeRig(t, [][]float32{xs}, 1)
	tab := normBackwardImpl
	sep := make([]float32, shapeMaxLen)
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		var w errStat
		invOf := func(x []float32) float32 {
			var s float64
			for _, v := range x {
				s += float64(v) * float64(v)
			}
			if s == 0 {
				return 0
			}
			return float32(1 / math.Sqrt(s))
		}
		rig.run(t, func(s shape, in, out [][]float32) {
			x, dy, dx := in[0], in[1], out[0]
			inv := invOf(x)
			f(dx, dy, x, inv, 0.3)
			want, bound, mag := normBackwardRef(dy, x, inv, 0.3)
			for k := range dx {
				w.check(t, float64(dx[k]), want[k], bound[k], mag[k],
					func() string { return fmt.Sprintf("%v NormalizeBackward %v k=%d", l, s, k) })
			}
		})
		w.log(t, "NormalizeBackward", l)
		alias.run(t, func(s shape, in, out [][]float32) {
			x, d := in[0], out[0]
			copy(d, dys[s.off:s.off+s.n])
			inv := invOf(x)
			f(sep, d, x, inv, -1.25)
			f(d, d, x, inv, -1.25)
			for k := range d {
				if math.Float32bits(d[k]) != math.Float32bits(sep[k]) {
					t.Fatalf("%v NormalizeBackward dx=dy %v: element %d is %v, %v with separate dx", l, s, k, d[k], sep[k])
				}
			}
		})
		for _, n := range []int{1, 7, 100} {
			dx := make([]float32, n)
			f(dx, randSlice(r, n, 1), make([]float32, n), 0, 0.5)
			require.Equal(t, make([]float32, n), dx, "%v zero row", l)
		}
	}
}

// TestL2NormLevels: the wrapper at every level (forced), on the ranges
// where the rescue path takes over and on random rows within (n+8)·eps.
func TestL2NormLevels(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	for _, l := range sumSquaresImpl.Levels() {
		restore, err := simd.Force(l)
		require.NoError(t, err)
		for _, n := range []int{1, 5, 16, 33, 100, 1000} {
			for _, sc := range []float64{1, 1e20, 1e-20, 1e-40, 3e36} {
				x := make([]float32, n)
				var s float64
				for i := range x {
					x[i] = float32(r.NormFloat64() * sc)
					s += float64(x[i]) * float64(x[i])
				}
				want := math.Sqrt(s)
				// sqrt halves the sum's relative error and adds one rounding;
				// the rescue path is float64 inside
				require.InDelta(t, want, float64(L2Norm(x)), (float64(n+8)*eps32+eps32)*want+eta32, "%v n=%d scale=%g", l, n, sc)
			}
		}
		inf, nan := float32(math.Inf(1)), float32(math.NaN())
		require.True(t, math.IsInf(float64(L2Norm([]float32{3e38, 3e38, -1e38})), 1), "%v overflow", l)
		require.True(t, math.IsNaN(float64(L2Norm(append(make([]float32, 20), nan)))), "%v NaN", l)
		require.True(t, math.IsInf(float64(L2Norm(append(make([]float32, 20), -inf))), 1), "%v Inf", l)
		require.Zero(t, L2Norm(make([]float32, 37)), "%v zero", l)
		require.Zero(t, L2Norm(nil), "%v empty", l)
		restore()
	}
}

// TestMulKernel: every level bit-exact with the generic twin, out of place
// and in place (dst = x, dst = y), on every shape of the rig.
func TestMulKernel(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	x, y := testSrc(r, shapeMaxLen+shapeOffsets), testSrc(r, shapeMaxLen+shapeOffsets)
	x[40], x[41], x[42], x[43] = 0, float32(math.Copysign(0, -1)), 1e-40, -3e38
	y[40], y[41], y[42], y[43] = float32(math.Inf(1)), 2, 1e-5, 7
	rig := newShapeRig(t, [][]float32{x, y}, 1)
	tab := mulImpl
	want := make([]float32, shapeMaxLen)
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		rig.run(t, func(s shape, in, out [][]float32) {
			f(out[0], in[0], in[1][:len(in[0])])
			mulGeneric(want, in[0], in[1][:len(in[0])])
			for k, g := range out[0] {
				if math.Float32bits(g) != math.Float32bits(want[k]) {
					t.Fatalf("%v Mul %v: element %d is %v, generic %v", l, s, k, g, want[k])
				}
			}
			for _, which := range []int{0, 1} { // in place
				buf := append([]float32(nil), in[which][:len(in[0])]...)
				if which == 0 {
					f(buf, buf, in[1][:len(in[0])])
				} else {
					f(buf, in[0], buf)
				}
				for k, g := range buf {
					if math.Float32bits(g) != math.Float32bits(want[k]) {
						t.Fatalf("%v Mul in place (%d) %v: element %d is %v, generic %v", l, which, s, k, g, want[k])
					}
				}
			}
		})
	}
}

// TestAddKernel: every level bit-exact with the generic twin, out of place
// and in place (dst = x, dst = y), on every shape of the rig.
func TestAddKernel(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	x, y := testSrc(r, shapeMaxLen+shapeOffsets), testSrc(r, shapeMaxLen+shapeOffsets)
	x[40], x[41], x[42], x[43] = 0, float32(math.Copysign(0, -1)), 1e-40, -3e38
	y[40], y[41], y[42], y[43] = float32(math.Inf(1)), 0, -1e-40, -3e38 // −0+0, subnormals, overflow
	rig := newShapeRig(t, [][]float32{x, y}, 1)
	tab := addImpl
	want := make([]float32, shapeMaxLen)
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		rig.run(t, func(s shape, in, out [][]float32) {
			f(out[0], in[0], in[1][:len(in[0])])
			addGeneric(want, in[0], in[1][:len(in[0])])
			for k, g := range out[0] {
				if math.Float32bits(g) != math.Float32bits(want[k]) {
					t.Fatalf("%v Add %v: element %d is %v, generic %v", l, s, k, g, want[k])
				}
			}
			for _, which := range []int{0, 1} { // in place
				buf := append([]float32(nil), in[which][:len(in[0])]...)
				if which == 0 {
					f(buf, buf, in[1][:len(in[0])])
				} else {
					f(buf, in[0], buf)
				}
				for k, g := range buf {
					if math.Float32bits(g) != math.Float32bits(want[k]) {
						t.Fatalf("%v Add in place (%d) %v: element %d is %v, generic %v", l, which, s, k, g, want[k])
					}
				}
			}
		})
	}
}
