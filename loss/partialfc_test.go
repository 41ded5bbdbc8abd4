package loss_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"sync"
	"testing"
	"weak"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// pfcGather builds the head's view of the sampled problem from Sampled():
// the K rows of each class of s, in order.
func pfcGather(w loss.Matrix, s []int32, k int) loss.Matrix {
	out := loss.Matrix{Rows: len(s) * k, Cols: w.Cols}
	for _, c := range s {
		out.Data = append(out.Data, w.Data[int(c)*k*w.Cols:(int(c)+1)*k*w.Cols]...)
	}
	return out
}

// pfcRemap maps class labels to their positions in s (ascending).
func pfcRemap(t *testing.T, labels, s []int32) []int32 {
	t.Helper()
	out := make([]int32, len(labels))
	for i, y := range labels {
		j, ok := slices.BinarySearch(s, y)
		require.True(t, ok, "label %d (row %d) not sampled", y, i)
		out[i] = int32(j)
	}
	return out
}

func pfcRequireBits(t *testing.T, want, got []float32, format string, args ...any) {
	t.Helper()
	require.Equal(t, len(want), len(got), fmt.Sprintf(format, args...))
	for k := range want {
		if math.Float32bits(want[k]) != math.Float32bits(got[k]) {
			t.Fatalf("%s: element %d is %v, want %v", fmt.Sprintf(format, args...), k, got[k], want[k])
		}
	}
}

// pfcRequireValidS checks that s is strictly ascending in [0, c) and holds
// every label.
func pfcRequireValidS(t *testing.T, s, labels []int32, c int) {
	t.Helper()
	for i, v := range s {
		require.True(t, v >= 0 && int(v) < c, "S[%d] = %d outside [0, %d)", i, v, c)
		if i > 0 {
			require.Less(t, s[i-1], v, "S not strictly ascending at %d", i)
		}
	}
	for _, y := range labels {
		_, ok := slices.BinarySearch(s, y)
		require.True(t, ok, "label %d not in S", y)
	}
}

// pfcExpectedSize is max(#distinct labels, ⌈rate·C⌉), the product exact.
func pfcExpectedSize(labels []int32, rate float32, c int) int {
	distinct := len(slices.Compact(slices.Sorted(slices.Values(labels))))
	// ⌈rate·C⌉ for the decimal rate: the smallest k with float32(k/C) ≥ rate
	k := 0
	for float32(float64(k)/float64(c)) < rate {
		k++
	}
	return min(c, max(distinct, k))
}

// TestPartialFCMatchesHead: the loss, dx and the dw rows of S are Head's,
// bitwise, on the problem built from Sampled(); the other dw rows are
// zeroed (they start as NaN). Both sampling branches (sparse draws, dense
// leave-outs), every head, both tile paths, every kernel level.
func TestPartialFCMatchesHead(t *testing.T) { forEachLevelAndPath(t, testPartialFCMatchesHead) }

func testPartialFCMatchesHead(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	n, c, d := 40, 700, 24
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	nan := float32(math.NaN())
	for name, mk := range allHeads() {
		for _, rate := range []float32{0.05, 0.3, 0.75} {
			p := &loss.PartialFC{Head: mk(), SampleRate: rate, Seed: 5}
			for call := 0; call < 2; call++ {
				dx, dw := filled(n, d, nan), filled(c, d, nan)
				l, err := p.Loss(x, w, labels, &dx, &dw)
				require.NoError(t, err, "%s rate %g", name, rate)
				s := p.Sampled()
				require.Len(t, s, pfcExpectedSize(labels, rate, c))
				pfcRequireValidS(t, s, labels, c)
				wS, labS := pfcGather(w, s, 1), pfcRemap(t, labels, s)
				rdx, rdw := filled(n, d, 0), filled(len(s), d, 0)
				rl, err := mk().Loss(x, wS, labS, &rdx, &rdw)
				require.NoError(t, err)
				require.Equal(t, math.Float32bits(rl), math.Float32bits(l), "%s rate %g call %d: loss", name, rate, call)
				pfcRequireBits(t, rdx.Data, dx.Data, "%s rate %g call %d: dx", name, rate, call)
				pfcRequireBits(t, rdw.Data, pfcGather(dw, s, 1).Data, "%s rate %g call %d: dw rows of S", name, rate, call)
				for j := 0; j < c; j++ {
					if _, in := slices.BinarySearch(s, int32(j)); !in {
						pfcRequireBits(t, make([]float32, d), dw.Row(j), "%s rate %g: dw row %d outside S", name, rate, j)
					}
				}
				// forward only: the same loss
				l2, err := p.Loss(x, w, labels, nil, nil)
				require.NoError(t, err)
				require.NotZero(t, l2)
			}
		}
	}
}

// TestPartialFCAccumulate: with Head.Accumulate the rows of S get Head's
// accumulated gradient and the other rows keep their old values, even
// non-finite ones (they are not read).
func TestPartialFCAccumulate(t *testing.T) { forEachLevel(t, testPartialFCAccumulate) }

func testPartialFCAccumulate(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	n, c, d := 33, 900, 17
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	for _, rate := range []float32{0.1, 0.9} {
		for _, keep := range []bool{false, true} {
			h := loss.CosFace(30, 0.35)
			h.Accumulate = true
			p := &loss.PartialFC{Head: h, SampleRate: rate, Seed: 9, KeepUnsampled: keep}
			// learn S with the same seed, then put a NaN outside it
			probe := &loss.PartialFC{Head: loss.CosFace(30, 0.35), SampleRate: rate, Seed: 9}
			_, err := probe.Loss(x, w, labels, nil, nil)
			require.NoError(t, err)
			s := probe.Sampled()
			outside := -1
			for j := 0; j < c && outside < 0; j++ {
				if _, in := slices.BinarySearch(s, int32(j)); !in {
					outside = j
				}
			}
			require.GreaterOrEqual(t, outside, 0)
			dx, dw := randMatrix(r, n, d), randMatrix(r, c, d)
			dw.Data[outside*d+3] = float32(math.NaN())
			dx0, dw0 := slices.Clone(dx.Data), slices.Clone(dw.Data)
			l, err := p.Loss(x, w, labels, &dx, &dw)
			require.NoError(t, err)
			require.Equal(t, s, p.Sampled())
			rdx := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(dx0)}
			rdw := pfcGather(loss.Matrix{Rows: c, Cols: d, Data: dw0}, s, 1)
			rh := loss.CosFace(30, 0.35)
			rh.Accumulate = true
			rl, err := rh.Loss(x, pfcGather(w, s, 1), pfcRemap(t, labels, s), &rdx, &rdw)
			require.NoError(t, err)
			require.Equal(t, rl, l)
			pfcRequireBits(t, rdx.Data, dx.Data, "rate %g: dx", rate)
			pfcRequireBits(t, rdw.Data, pfcGather(dw, s, 1).Data, "rate %g: dw rows of S", rate)
			for j := 0; j < c; j++ {
				if _, in := slices.BinarySearch(s, int32(j)); !in {
					pfcRequireBits(t, dw0[j*d:(j+1)*d], dw.Row(j), "rate %g: dw row %d outside S", rate, j)
				}
			}
		}
	}
}

// TestPartialFCKeepUnsampled: KeepUnsampled writes the rows of S only.
func TestPartialFCKeepUnsampled(t *testing.T) {
	r := rand.New(rand.NewSource(23))
	n, c, d := 16, 300, 8
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	for _, rate := range []float32{0.1, 0.8} {
		ref := &loss.PartialFC{Head: loss.ArcFace(30, 0.5), SampleRate: rate, Seed: 3}
		keep := &loss.PartialFC{Head: loss.ArcFace(30, 0.5), SampleRate: rate, Seed: 3, KeepUnsampled: true}
		for call := 0; call < 3; call++ {
			dwRef, dwKeep := filled(c, d, 7), filled(c, d, 7)
			l1, err := ref.Loss(x, w, labels, nil, &dwRef)
			require.NoError(t, err)
			l2, err := keep.Loss(x, w, labels, nil, &dwKeep)
			require.NoError(t, err)
			require.Equal(t, l1, l2)
			s := keep.Sampled()
			require.Equal(t, ref.Sampled(), s)
			for j := 0; j < c; j++ {
				if _, in := slices.BinarySearch(s, int32(j)); in {
					pfcRequireBits(t, dwRef.Row(j), dwKeep.Row(j), "row %d of S", j)
				} else {
					pfcRequireBits(t, make([]float32, d), dwRef.Row(j), "zeroed row %d", j)
					pfcRequireBits(t, filled(1, d, 7).Data, dwKeep.Row(j), "kept row %d", j)
				}
			}
		}
	}
}

// TestPartialFCDeterministic: the same Seed gives the same sequence of S
// (and bitwise the same outputs) for GOMAXPROCS 1, 2, 3 and 8; another
// seed gives another sequence; consecutive calls draw different sets.
func TestPartialFCDeterministic(t *testing.T) {
	r := rand.New(rand.NewSource(24))
	n, c, d := 70, 3000, 16 // |S| = 600 > one gather chunk; 12 zeroing chunks
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	run := func(seed uint64, procs int) (seq [][]int32, out []float32) {
		old := runtime.GOMAXPROCS(procs)
		defer runtime.GOMAXPROCS(old)
		p := &loss.PartialFC{Head: loss.ArcFace(64, 0.5), SampleRate: 0.2, Seed: seed}
		for call := 0; call < 4; call++ {
			dx, dw := filled(n, d, 0), filled(c, d, 1)
			l, err := p.Loss(x, w, labels, &dx, &dw)
			require.NoError(t, err)
			seq = append(seq, p.Sampled())
			out = append(append(append(out, l), dx.Data...), dw.Data...)
		}
		return seq, out
	}
	refSeq, refOut := run(42, 1)
	for call := 1; call < len(refSeq); call++ {
		require.NotEqual(t, refSeq[0], refSeq[call], "call %d drew the set of call 0", call)
	}
	for _, procs := range []int{2, 3, 8} {
		seq, out := run(42, procs)
		require.Equal(t, refSeq, seq, "GOMAXPROCS=%d: S", procs)
		pfcRequireBits(t, refOut, out, "GOMAXPROCS=%d: outputs", procs)
	}
	other, _ := run(43, 1)
	for call := range other {
		require.NotEqual(t, refSeq[call], other[call], "seeds 42 and 43 drew the same S at call %d", call)
	}
}

// TestPartialFCStream pins the draw: SplitMix64 seeded from Seed and the
// call index, so a run replays the same classes across versions and
// platforms. The values were checked against an independent Python
// transcription of the documented algorithm (state mix(Seed ⊕ mix(k+γ)),
// Lemire's unbiased multiply for [0, C), rejection of classes already
// taken; leave-outs drawn the same way in the dense branch).
func TestPartialFCStream(t *testing.T) {
	x, w := filled(1, 2, 1), filled(20, 2, 1)
	for _, tc := range []struct {
		rate float32
		want [][]int32
	}{
		{0.25, [][]int32{{3, 5, 7, 10, 18}, {0, 2, 3, 12, 17}, {3, 5, 10, 14, 17}}}, // sparse
		{0.9, [][]int32{ // dense: leaves out {5, 10}, then {2, 17}
			{0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19},
			{0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19}}},
	} {
		p := &loss.PartialFC{Head: loss.CosFace(4, 0.2), SampleRate: tc.rate, Seed: 1}
		for call, want := range tc.want {
			_, err := p.Loss(x, w, []int32{3}, nil, nil)
			require.NoError(t, err)
			require.Equal(t, want, p.Sampled(), "rate %g call %d", tc.rate, call)
		}
	}
}

// TestPartialFCRateOne: SampleRate 1 (or any rate with ⌈rate·C⌉ = C) is
// Head's loss over every class, bitwise, with Sampled() = 0..C−1.
func TestPartialFCRateOne(t *testing.T) { forEachLevelAndPath(t, testPartialFCRateOne) }

func testPartialFCRateOne(t *testing.T) {
	r := rand.New(rand.NewSource(25))
	n, c, d := 30, 100, 12
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	all := make([]int32, c)
	for j := range all {
		all[j] = int32(j)
	}
	for name, mk := range allHeads() {
		for _, rate := range []float32{1, 0.999} {
			dx, dw := filled(n, d, 0), filled(c, d, 0)
			rdx, rdw := filled(n, d, 0), filled(c, d, 0)
			p := &loss.PartialFC{Head: mk(), SampleRate: rate, Seed: 77}
			l, err := p.Loss(x, w, labels, &dx, &dw)
			require.NoError(t, err)
			rl, err := mk().Loss(x, w, labels, &rdx, &rdw)
			require.NoError(t, err)
			require.Equal(t, math.Float32bits(rl), math.Float32bits(l), "%s rate %g", name, rate)
			pfcRequireBits(t, rdx.Data, dx.Data, "%s rate %g: dx", name, rate)
			pfcRequireBits(t, rdw.Data, dw.Data, "%s rate %g: dw", name, rate)
			require.Equal(t, all, p.Sampled())
		}
	}
}

// TestPartialFCSampleSize: |S| = max(#distinct labels, ⌈rate·C⌉), the
// product exact for the float32 rate.
func TestPartialFCSampleSize(t *testing.T) {
	r := rand.New(rand.NewSource(26))
	d := 3
	seqLabels := func(k int) []int32 {
		l := make([]int32, 2*k)
		for i := range l {
			l[i] = int32(i / 2 * 3) // k distinct labels, each twice
		}
		return l
	}
	cases := []struct {
		c      int
		rate   float32
		labels []int32
		want   int
	}{
		{64, 0.25, []int32{1, 5, 5}, 16},
		{1000, 0.1, []int32{0}, 100}, // float32(0.1)·1000 = 100.0000015: the 0.1 written
		{1000, 0.125, []int32{0}, 125},
		{100, 0.1, seqLabels(30), 30}, // distinct labels beyond ⌈rate·C⌉ = 11
		{100, 0.5, seqLabels(33), 50},
		{100, 0.5, seqLabels(33)[:0], 50},
		{7, 1e-9, nil, 1},
		{7, 1e-9, []int32{6, 6, 2}, 2},
		{5000, 0.999, []int32{17}, 4995},   // float32(0.999)·5000 = 4995.00006
		{4096, 0.999, []int32{17}, 4092},   // 4091.904…
		{5000, 0.99995, []int32{17}, 5000}, // 4999.75: every class
		{1, 0.3, []int32{0, 0}, 1},
		{300, 0.3, seqLabels(100), 100},  // every label, no negative to draw
		{300, 0.34, seqLabels(100), 102}, // float32(0.34)·300 = 102.0000011
		{300, 0.375, seqLabels(100), 113},
	}
	for _, tc := range cases {
		x := randMatrix(r, len(tc.labels), d)
		w := randMatrix(r, tc.c, d)
		require.Equal(t, tc.want, pfcExpectedSize(tc.labels, tc.rate, tc.c), "formula, case %+v", tc)
		p := &loss.PartialFC{Head: loss.ArcFace(30, 0.5), SampleRate: tc.rate, Seed: uint64(tc.c)}
		for call := 0; call < 3; call++ {
			_, err := p.Loss(x, w, tc.labels, nil, nil)
			require.NoError(t, err)
			s := p.Sampled()
			require.Len(t, s, tc.want, "C=%d rate=%g labels %v", tc.c, tc.rate, tc.labels)
			pfcRequireValidS(t, s, tc.labels, tc.c)
		}
	}
}

// TestPartialFCUniform: over many calls with a fixed seed, every negative
// class is drawn about as often as the others, for the sparse draws and
// for the dense leave-outs. The statistic is Σ (o−e)²/(R·q·(1−q)) over the
// F free classes (q = negatives/F, R calls), whose mean is about F; the
// bounds are eight standard deviations out, and the seed is fixed, so the
// test cannot flake.
func TestPartialFCUniform(t *testing.T) {
	const c, d, calls = 200, 2, 3000
	r := rand.New(rand.NewSource(27))
	x, w := randMatrix(r, 10, d), randMatrix(r, c, d)
	labels := []int32{3, 17, 17, 42, 99, 100, 150, 151, 198, 199} // 9 distinct
	positive := map[int32]bool{}
	for _, y := range labels {
		positive[y] = true
	}
	free := c - len(positive)
	for _, rate := range []float32{0.25, 0.9} { // 50 (sparse) and 180 (dense)
		p := &loss.PartialFC{Head: loss.CosFace(4, 0.1), SampleRate: rate, Seed: 2024}
		counts := make([]int, c)
		size := int(math.Ceil(float64(rate) * c))
		buf := make([]int32, 0, c)
		for call := 0; call < calls; call++ {
			_, err := p.Loss(x, w, labels, nil, nil)
			require.NoError(t, err)
			buf = p.AppendSampled(buf[:0])
			require.Len(t, buf, size)
			for _, j := range buf {
				counts[j]++
			}
		}
		q := float64(size-len(positive)) / float64(free)
		e, v := calls*q, calls*q*(1-q)
		var stat float64
		for j, o := range counts {
			if positive[int32(j)] {
				require.Equal(t, calls, o, "positive class %d missed", j)
				continue
			}
			z := (float64(o) - e) / math.Sqrt(v)
			require.Less(t, math.Abs(z), 6.0, "rate %g: class %d drawn %d times, expected %.1f", rate, j, o, e)
			stat += z * z
		}
		sd := math.Sqrt(2 * float64(free))
		t.Logf("rate %g: statistic %.1f for %d free classes", rate, stat, free)
		require.Less(t, stat, float64(free)+8*sd, "rate %g: draws too uneven", rate)
		require.Greater(t, stat, float64(free)-8*sd, "rate %g: draws too even to be random", rate)
	}
}

// TestPartialFCSubCenters: with SubCenters = K = 3, w has C·K rows and a
// class brings its K rows (S is a set of classes); LabelSmoothing spreads
// ε over S. The loss, dx and the dw rows of S are Head's, bitwise.
func TestPartialFCSubCenters(t *testing.T) { forEachLevelAndPath(t, testPartialFCSubCenters) }

func testPartialFCSubCenters(t *testing.T) {
	r := rand.New(rand.NewSource(28))
	const n, c, k, d = 12, 50, 3, 6
	x, w := randMatrix(r, n, d), randMatrix(r, c*k, d)
	labels := randLabels(r, n, c)
	heads := map[string]func() *loss.MarginSoftmax{
		"arcface": func() *loss.MarginSoftmax {
			h := loss.ArcFace(30, 0.5)
			h.SubCenters, h.TileBudget = k, tileBudget
			return h
		},
		"cosface smoothed": func() *loss.MarginSoftmax {
			h := loss.CosFace(30, 0.35)
			h.SubCenters, h.LabelSmoothing, h.TileBudget = k, 0.1, tileBudget
			return h
		},
	}

	// the layout through the error paths: rows, labels, the row named
	p := &loss.PartialFC{Head: heads["arcface"](), SampleRate: 0.2, Seed: 1}
	_, err := p.Loss(x, randMatrix(r, c*k-1, d), labels, nil, nil)
	require.ErrorIs(t, err, loss.ErrShape)
	_, err = p.Loss(x, w, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, c}, nil, nil)
	require.ErrorIs(t, err, loss.ErrLabel, "labels are classes < C, not rows < C·K")
	bad := loss.Matrix{Rows: c * k, Cols: d, Data: slices.Clone(w.Data)}
	y := labels[4]
	bad.Data[(int(y)*k+2)*d+1] = float32(math.NaN()) // third sub-center of a positive class
	dw := filled(c*k, d, 5)
	_, err = p.Loss(x, bad, labels, nil, &dw)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.Contains(t, err.Error(), fmt.Sprintf("w row %d (class %d)", int(y)*k+2, y))
	require.Equal(t, filled(c*k, d, 5).Data, dw.Data)
	require.Nil(t, p.Sampled())

	// the loss: Head on the K rows of every class of S
	for name, mk := range heads {
		for _, rate := range []float32{0.2, 0.8, 1} {
			p := &loss.PartialFC{Head: mk(), SampleRate: rate, Seed: 4}
			for call := 0; call < 2; call++ {
				dx := filled(n, d, 0)
				dw := filled(c*k, d, float32(math.NaN()))
				l, err := p.Loss(x, w, labels, &dx, &dw)
				require.NoError(t, err)
				s := p.Sampled()
				require.Len(t, s, pfcExpectedSize(labels, rate, c))
				pfcRequireValidS(t, s, labels, c)
				rdx, rdw := filled(n, d, 0), filled(len(s)*k, d, 0)
				rl, err := mk().Loss(x, pfcGather(w, s, k), pfcRemap(t, labels, s), &rdx, &rdw)
				require.NoError(t, err)
				require.Equal(t, math.Float32bits(rl), math.Float32bits(l), "%s rate %g: loss", name, rate)
				pfcRequireBits(t, rdx.Data, dx.Data, "%s rate %g: dx", name, rate)
				pfcRequireBits(t, rdw.Data, pfcGather(dw, s, k).Data, "%s rate %g: dw rows of S", name, rate)
				for j := 0; j < c; j++ {
					if _, in := slices.BinarySearch(s, int32(j)); !in {
						pfcRequireBits(t, make([]float32, k*d), dw.Data[j*k*d:(j+1)*k*d], "%s rate %g: dw rows of class %d outside S", name, rate, j)
					}
				}
			}
		}
	}
}

// TestPartialFCErrors: every bad call returns the right sentinel, does not
// panic, leaves dx and dw untouched, and consumes no draw.
func TestPartialFCErrors(t *testing.T) {
	r := rand.New(rand.NewSource(29))
	n, c, d := 4, 40, 3
	// one backing array, carved so that shifted views overlap
	buf := randMatrix(r, 1, 4*(n*d+c*d)).Data
	view := func(off, rows, cols int) loss.Matrix {
		return loss.Matrix{Rows: rows, Cols: cols, Data: buf[off : off+rows*cols]}
	}
	x, w := view(0, n, d), view(n*d, c, d)
	free := n*d + c*d
	lab := []int32{1, 7, 7, 30}
	nanX := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(x.Data)}
	nanX.Data[2*d+1] = float32(math.NaN())
	nanW := loss.Matrix{Rows: c, Cols: d, Data: slices.Clone(w.Data)}
	nanW.Data[7*d] = float32(math.Inf(1)) // class 7 is a label: always sampled
	hugeW := loss.Matrix{Rows: c, Cols: d, Data: slices.Clone(w.Data)}
	hugeW.Data[30*d+1], hugeW.Data[30*d+2] = 3e38, -3e38 // finite, but the norm overflows
	big := filled(n, d, 2e19)
	bigW := filled(c, d, 2e19)
	arc := func() *loss.MarginSoftmax { return loss.ArcFace(30, 0.5) }
	pf := func(h *loss.MarginSoftmax, rate float32) *loss.PartialFC {
		return &loss.PartialFC{Head: h, SampleRate: rate, Seed: 11}
	}
	accum := func() *loss.MarginSoftmax { h := arc(); h.Accumulate = true; return h }
	smooth := func() *loss.MarginSoftmax { h := arc(); h.LabelSmoothing = 2; return h }
	nanDW := filled(c, d, 0)
	nanDW.Data[30*d+1] = float32(math.NaN())
	cases := []struct {
		name   string
		want   error
		p      *loss.PartialFC
		x, w   loss.Matrix
		lab    []int32
		dx, dw *loss.Matrix
	}{
		{"nil PartialFC", loss.ErrParam, nil, x, w, lab, nil, nil},
		{"nil head", loss.ErrParam, pf(nil, 0.5), x, w, lab, nil, nil},
		{"rate 0", loss.ErrParam, pf(arc(), 0), x, w, lab, nil, nil},
		{"rate negative", loss.ErrParam, pf(arc(), -0.1), x, w, lab, nil, nil},
		{"rate above 1", loss.ErrParam, pf(arc(), 1.5), x, w, lab, nil, nil},
		{"rate NaN", loss.ErrParam, pf(arc(), float32(math.NaN())), x, w, lab, nil, nil},
		{"rate +Inf", loss.ErrParam, pf(arc(), float32(math.Inf(1))), x, w, lab, nil, nil},
		{"bad head", loss.ErrParam, pf(loss.ArcFace(0, 0.5), 0.5), x, w, lab, nil, nil},
		{"zero-value head", loss.ErrParam, pf(&loss.MarginSoftmax{}, 0.5), x, w, lab, nil, nil},
		{"bad label smoothing", loss.ErrParam, pf(smooth(), 0.5), x, w, lab, nil, nil},
		{"x data length", loss.ErrShape, pf(arc(), 0.5), loss.Matrix{Rows: n, Cols: d, Data: x.Data[:n*d-1]}, w, lab, nil, nil},
		{"w data length", loss.ErrShape, pf(arc(), 0.5), x, loss.Matrix{Rows: c, Cols: d, Data: w.Data[:2]}, lab, nil, nil},
		{"D mismatch", loss.ErrShape, pf(arc(), 0.5), randMatrix(r, n, d+1), w, lab, nil, nil},
		{"no classes", loss.ErrShape, pf(arc(), 0.5), x, loss.Matrix{Rows: 0, Cols: d}, lab, nil, nil},
		{"no columns", loss.ErrShape, pf(arc(), 0.5), loss.Matrix{Rows: n, Cols: 0}, loss.Matrix{Rows: c, Cols: 0}, lab, nil, nil},
		{"dx shape", loss.ErrShape, pf(arc(), 0.5), x, w, lab, ptr(filled(n, d+1, 3)), nil},
		{"dw shape", loss.ErrShape, pf(arc(), 0.5), x, w, lab, nil, ptr(filled(c-1, d, 3))},
		{"dw data length", loss.ErrShape, pf(arc(), 0.5), x, w, lab, nil, &loss.Matrix{Rows: c, Cols: d, Data: make([]float32, 1)}},
		{"label high", loss.ErrLabel, pf(arc(), 0.5), x, w, []int32{0, 1, int32(c), 0}, nil, nil},
		{"label negative", loss.ErrLabel, pf(arc(), 0.5), x, w, []int32{0, -1, 0, 0}, nil, nil},
		{"labels short", loss.ErrLabel, pf(arc(), 0.5), x, w, lab[:n-1], nil, nil},
		{"NaN in x (head)", loss.ErrNonFinite, pf(arc(), 0.2), nanX, w, lab, nil, nil},
		{"NaN in x, rate 1 (head)", loss.ErrNonFinite, pf(arc(), 1), nanX, w, lab, nil, nil},
		{"Inf in a sampled w row", loss.ErrNonFinite, pf(arc(), 0.2), x, nanW, lab, nil, nil},
		{"norm overflow in a sampled w row", loss.ErrNonFinite, pf(arc(), 0.2), x, hugeW, lab, nil, nil},
		{"logit overflow (head bounds)", loss.ErrNonFinite, pf(loss.LargeMargin(1, 0), 0.2), big, bigW, lab, nil, nil},
		{"accumulate onto NaN in dw", loss.ErrNonFinite, pf(accum(), 0.2), x, w, lab, nil, &nanDW},
		{"dw is w", loss.ErrOverlap, pf(arc(), 0.2), x, w, lab, nil, &w},
		{"dx is dw's memory", loss.ErrOverlap, pf(arc(), 0.2), x, w, lab, ptr(view(free, n, d)), ptr(view(free, c, d))},
		{"dw on x", loss.ErrOverlap, pf(arc(), 0.2), x, w, lab, nil, ptr(view(0, c, d))},
		{"dx shifted by one over x", loss.ErrOverlap, pf(arc(), 0.2), x, w, lab, ptr(view(1, n, d)), nil},
		{"dx ends inside w", loss.ErrOverlap, pf(arc(), 0.2), x, w, lab, ptr(view(n*d-1, n, d)), nil},
		{"dx on w", loss.ErrOverlap, pf(arc(), 0.2), x, w, lab, ptr(view(n*d, n, d)), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dx, dw := gradsOr42(tc.dx, tc.dw, tc.x, tc.w)
			before := snapshot(dx, dw)
			xb, wb := slices.Clone(tc.x.Data), slices.Clone(tc.w.Data)
			var l float32
			var err error
			require.NotPanics(t, func() { l, err = tc.p.Loss(tc.x, tc.w, tc.lab, dx, dw) })
			require.ErrorIs(t, err, tc.want)
			for _, other := range []error{loss.ErrShape, loss.ErrLabel, loss.ErrNonFinite, loss.ErrParam, loss.ErrOverlap} {
				require.Equal(t, other == tc.want, errors.Is(err, other), "%v wraps %v", err, other)
			}
			require.NotEmpty(t, err.Error())
			require.Zero(t, l)
			requireUntouched(t, before, dx, dw)
			pfcRequireBits(t, xb, tc.x.Data, "x changed")
			pfcRequireBits(t, wb, tc.w.Data, "w changed")
			if tc.p == nil {
				require.Nil(t, tc.p.Sampled())
				return
			}
			require.Nil(t, tc.p.Sampled(), "Sampled set by a failed call")
			// the failed call consumed no draw: a valid call now draws what
			// a fresh value's first call draws
			if tc.p.Head == nil || tc.p.Validate() != nil {
				return
			}
			tc.p.Head.Accumulate = false
			_, err = tc.p.Loss(x, w, lab, nil, nil)
			require.NoError(t, err)
			fresh := pf(arc(), tc.p.SampleRate)
			_, err = fresh.Loss(x, w, lab, nil, nil)
			require.NoError(t, err)
			require.Equal(t, fresh.Sampled(), tc.p.Sampled())
		})
	}

	// a failed call after a successful one keeps the last S
	p := pf(arc(), 0.2)
	_, err := p.Loss(x, w, lab, nil, nil)
	require.NoError(t, err)
	s := p.Sampled()
	_, err = p.Loss(nanX, w, lab, nil, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.Equal(t, s, p.Sampled())

	// a NaN in a w row outside S is not read
	probe := pf(arc(), 0.1)
	_, err = probe.Loss(x, w, lab, nil, nil)
	require.NoError(t, err)
	s = probe.Sampled()
	wOut := loss.Matrix{Rows: c, Cols: d, Data: slices.Clone(w.Data)}
	for j := 0; j < c; j++ {
		if _, in := slices.BinarySearch(s, int32(j)); !in {
			wOut.Data[j*d] = float32(math.NaN())
		}
	}
	l1, err := pf(arc(), 0.1).Loss(x, wOut, lab, nil, nil)
	require.NoError(t, err)
	l2, err := pf(arc(), 0.1).Loss(x, w, lab, nil, nil)
	require.NoError(t, err)
	require.Equal(t, l2, l1)
}

// TestPartialFCValidate: the configuration alone, with the error Loss
// gives.
func TestPartialFCValidate(t *testing.T) {
	require.NoError(t, (&loss.PartialFC{Head: loss.ArcFace(64, 0.5), SampleRate: 0.1}).Validate())
	require.NoError(t, (&loss.PartialFC{Head: loss.SphereFace(4, 5), SampleRate: 1}).Validate())
	var nilP *loss.PartialFC
	require.ErrorIs(t, nilP.Validate(), loss.ErrParam)
	require.Nil(t, nilP.Sampled())
	require.Equal(t, []int32{9}, nilP.AppendSampled([]int32{9}))
	bad := []*loss.PartialFC{
		{SampleRate: 0.5},
		{Head: loss.ArcFace(64, 0.5)},
		{Head: loss.ArcFace(64, 0.5), SampleRate: 1.0001},
		{Head: loss.ArcFace(64, 0.5), SampleRate: float32(math.NaN())},
		{Head: loss.ArcFace(64, 2), SampleRate: 0.5},
		{Head: func() *loss.MarginSoftmax { h := loss.SphereFace(4, 5); h.SubCenters = 2; return h }(), SampleRate: 0.5},
	}
	for _, p := range bad {
		err := p.Validate()
		require.ErrorIs(t, err, loss.ErrParam, "%+v", p)
		_, err2 := p.Loss(filled(1, 2, 1), filled(2, 2, 1), []int32{0}, nil, nil)
		require.Equal(t, err.Error(), err2.Error())
	}
}

// TestPartialFCEmptyBatch: an empty batch samples ⌈rate·C⌉ classes,
// validates their rows and zeroes dw.
func TestPartialFCEmptyBatch(t *testing.T) {
	r := rand.New(rand.NewSource(30))
	w := randMatrix(r, 40, 3)
	dw := filled(40, 3, 9)
	dx := loss.Matrix{Rows: 0, Cols: 3}
	p := &loss.PartialFC{Head: loss.ArcFace(30, 0.5), SampleRate: 0.25, Seed: 1}
	l, err := p.Loss(loss.Matrix{Rows: 0, Cols: 3}, w, nil, &dx, &dw)
	require.NoError(t, err)
	require.Zero(t, l)
	require.Len(t, p.Sampled(), 10)
	require.Equal(t, make([]float32, 120), dw.Data)
	nanW := filled(40, 3, float32(math.NaN()))
	dw = filled(40, 3, 9)
	_, err = p.Loss(loss.Matrix{Rows: 0, Cols: 3}, nanW, nil, nil, &dw)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.Equal(t, filled(40, 3, 9).Data, dw.Data)
}

// TestPartialFCNoAllocs: steady-state calls do not allocate, on every
// path (sparse, dense, pass-through, KeepUnsampled, Accumulate, forward
// only), and neither does AppendSampled into a large enough slice.
func TestPartialFCNoAllocs(t *testing.T) { forEachLevel(t, testPartialFCNoAllocs) }

func testPartialFCNoAllocs(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	n, c, d := 64, 2000, 32
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	dx, dw := filled(n, d, 0), filled(c, d, 0)
	for _, cfg := range []struct {
		name       string
		rate       float32
		keep, accu bool
	}{{"sparse", 0.1, false, false}, {"dense", 0.9, false, false}, {"all", 1, false, false},
		{"keep", 0.1, true, false}, {"accumulate", 0.3, false, true}} {
		h := loss.ArcFace(64, 0.5)
		h.Accumulate = cfg.accu
		p := &loss.PartialFC{Head: h, SampleRate: cfg.rate, Seed: 1, KeepUnsampled: cfg.keep}
		_, err := p.Loss(x, w, labels, &dx, &dw)
		require.NoError(t, err)
		require.Zero(t, testing.AllocsPerRun(10, func() { _, _ = p.Loss(x, w, labels, &dx, &dw) }), "%s", cfg.name)
		require.Zero(t, testing.AllocsPerRun(10, func() { _, _ = p.Loss(x, w, labels, nil, nil) }), "%s forward only", cfg.name)
		buf := make([]int32, 0, c)
		require.Zero(t, testing.AllocsPerRun(10, func() { buf = p.AppendSampled(buf[:0]) }), "%s AppendSampled", cfg.name)
	}
}

// TestPartialFCConcurrent: calls from several goroutines are serialised;
// the draws are counted once each.
func TestPartialFCConcurrent(t *testing.T) {
	r := rand.New(rand.NewSource(32))
	n, c, d := 8, 500, 4
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	p := &loss.PartialFC{Head: loss.CosFace(30, 0.3), SampleRate: 0.125, Seed: 6}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dx, dw := filled(n, d, 0), filled(c, d, 0)
			for i := 0; i < 10; i++ {
				_, err := p.Loss(x, w, labels, &dx, &dw)
				if err == nil && len(p.Sampled()) != 63 {
					err = fmt.Errorf("|S| = %d, want ⌈0.125·500⌉ = 63", len(p.Sampled()))
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	_, err := p.Loss(x, w, labels, nil, nil)
	require.NoError(t, err)
	ref := &loss.PartialFC{Head: loss.CosFace(30, 0.3), SampleRate: 0.125, Seed: 6}
	for i := 0; i <= 40; i++ {
		_, err := ref.Loss(x, w, labels, nil, nil)
		require.NoError(t, err)
	}
	require.Equal(t, ref.Sampled(), p.Sampled(), "the 41st call")
}

// TestPartialFCNoCallerMemoryRetained: neither a failed nor a successful
// call keeps the caller's matrices alive.
func TestPartialFCNoCallerMemoryRetained(t *testing.T) {
	p := &loss.PartialFC{Head: loss.ArcFace(30, 0.5), SampleRate: 0.25, Seed: 1}
	var wx, ww, wdw weak.Pointer[float32]
	var wl weak.Pointer[int32]
	func() {
		r := rand.New(rand.NewSource(1))
		x, w := randMatrix(r, 16, 8), randMatrix(r, 400, 8)
		labels := randLabels(r, 16, 400)
		dx, dw := filled(16, 8, 0), filled(400, 8, 0)
		_, err := p.Loss(x, w, labels, &dx, &dw)
		require.NoError(t, err)
		x.Data[0] = float32(math.NaN()) // found by the head, after the gather
		_, err = p.Loss(x, w, labels, &dx, &dw)
		require.ErrorIs(t, err, loss.ErrNonFinite)
		wx, ww, wl, wdw = weak.Make(&x.Data[0]), weak.Make(&w.Data[0]), weak.Make(&labels[0]), weak.Make(&dw.Data[0])
	}()
	runtime.GC()
	runtime.GC()
	require.Nil(t, wx.Value(), "x is still reachable")
	require.Nil(t, ww.Value(), "w is still reachable")
	require.Nil(t, wl.Value(), "labels are still reachable")
	require.Nil(t, wdw.Value(), "dw is still reachable")
	runtime.KeepAlive(p)
}

// ExamplePartialFC trains against 1000 classes while computing the margin
// loss over an eighth of them per step, updating only the sampled rows.
func ExamplePartialFC() {
	const classes, dim, batch = 1000, 16, 8
	r := rand.New(rand.NewSource(1))
	w := randMatrix(r, classes, dim)
	x := randMatrix(r, batch, dim)
	labels := randLabels(r, batch, classes)
	dw := loss.Matrix{Rows: classes, Cols: dim, Data: make([]float32, classes*dim)}

	p := &loss.PartialFC{Head: loss.ArcFace(16, 0.3), SampleRate: 0.125, Seed: 7, KeepUnsampled: true}
	for step := 0; step < 3; step++ {
		l, err := p.Loss(x, w, labels, nil, &dw)
		if err != nil {
			panic(err)
		}
		sampled := p.Sampled()
		for _, c := range sampled { // sparse SGD: only the rows of S
			row, g := w.Row(int(c)), dw.Row(int(c))
			for k := range row {
				row[k] -= 0.5 * g[k]
			}
		}
		fmt.Printf("step %d: %d classes sampled, loss %.2f\n", step, len(sampled), l)
	}
	// Output:
	// step 0: 125 classes sampled, loss 15.81
	// step 1: 125 classes sampled, loss 14.91
	// step 2: 125 classes sampled, loss 13.99
}

// TestPartialFCSetCalls: a counter restored with SetCalls on a fresh value
// reproduces the draws (and the results) of the value it was read from;
// failed calls do not count.
func TestPartialFCSetCalls(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	n, c, d := 12, 500, 8
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	newP := func() *loss.PartialFC {
		return &loss.PartialFC{Head: loss.ArcFace(32, 0.5), SampleRate: 0.1, Seed: 7}
	}
	step := func(p *loss.PartialFC) ([]int32, []float32) {
		dx, dw := filled(n, d, 0), filled(c, d, 0)
		l, err := p.Loss(x, w, labels, &dx, &dw)
		require.NoError(t, err)
		return p.Sampled(), append(append([]float32{l}, dx.Data...), dw.Data...)
	}
	orig := newP()
	require.Zero(t, orig.Calls())
	for range 3 {
		step(orig)
	}
	_, err := orig.Loss(x, w, []int32{int32(c)}, nil, nil) // out of range: no draw
	require.Error(t, err)
	require.Equal(t, uint64(3), orig.Calls())

	resumed := newP()
	resumed.SetCalls(orig.Calls())
	require.Equal(t, uint64(3), resumed.Calls())
	var prev []int32
	for call := 3; call < 6; call++ {
		wantS, wantOut := step(orig)
		gotS, gotOut := step(resumed)
		require.Equal(t, wantS, gotS, "call %d: S", call)
		pfcRequireBits(t, wantOut, gotOut, "call %d: loss and gradients", call)
		require.NotEqual(t, prev, gotS, "call %d drew the previous call's set", call)
		prev = gotS
	}
	require.Equal(t, uint64(6), resumed.Calls())

	// A fresh value without SetCalls draws call 0's set, not call 6's.
	fresh := newP()
	s0, _ := step(fresh)
	s6, _ := step(orig)
	require.NotEqual(t, s6, s0)
	fresh.SetCalls(0)
	again, _ := step(fresh)
	require.Equal(t, s0, again, "SetCalls(0) replays the first draw")
}
