package loss_test

// Regression tests for the second hardening round: ShardedHead's call
// contract, dx-only bounds, tied large logits and the contract's edges. Each
// fails on the code before it.

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// shardSet is a class-sharded head after Forward and the all-reduce recipe
// (MAX, Rescale, SUM in float32): ready for Backward.
type shardSet struct {
	hs []*loss.ShardedHead
	ws []loss.Matrix
	st []*loss.ShardStats
	k  int
}

func prepShards(t *testing.T, head *loss.MarginSoftmax, x, w loss.Matrix, labels []int32, bounds []int, rate float32) *shardSet {
	t.Helper()
	k := max(head.SubCenters, 1)
	d, n := w.Cols, x.Rows
	s := &shardSet{k: k}
	for q := 0; q+1 < len(bounds); q++ {
		h := &loss.ShardedHead{Head: head, Offset: bounds[q], Classes: w.Rows / k, SampleRate: rate, Seed: uint64(7 + q)}
		wq := loss.Matrix{Rows: (bounds[q+1] - bounds[q]) * k, Cols: d, Data: w.Data[bounds[q]*k*d : bounds[q+1]*k*d]}
		st := new(loss.ShardStats)
		require.NoError(t, h.Forward(x, wq, labels, st), "shard %d Forward", q)
		s.hs, s.ws, s.st = append(s.hs, h), append(s.ws, wq), append(s.st, st)
	}
	mx := make([]float32, n)
	for i := range mx {
		mx[i] = float32(math.Inf(-1))
		for _, p := range s.st {
			mx[i] = max(mx[i], p.Max[i])
		}
	}
	sums := make([]float32, 3*n)
	for _, p := range s.st {
		copy(p.Max, mx)
		p.Rescale()
		for i, v := range p.Sums {
			sums[i] += v
		}
	}
	for _, p := range s.st {
		copy(p.Sums, sums)
	}
	return s
}

// backward runs shard q's Backward into fresh buffers filled with fill.
func (s *shardSet) backward(x loss.Matrix, labels []int32, q int, wantDx, wantDw bool, fill float32) (float32, *loss.Matrix, *loss.Matrix, error) {
	var dx, dw *loss.Matrix
	if wantDx {
		m := filled(x.Rows, x.Cols, fill)
		dx = &m
	}
	if wantDw {
		m := filled(s.ws[q].Rows, s.ws[q].Cols, fill)
		dw = &m
	}
	l, err := s.hs[q].Backward(x, s.ws[q], labels, s.st[q], dx, dw)
	return l, dx, dw, err
}

func data(m *loss.Matrix) []float32 {
	if m == nil {
		return nil
	}
	return m.Data
}

// requireFilled fails when any element of m is not fill.
func requireFilled(t *testing.T, m *loss.Matrix, fill float32, what string) {
	t.Helper()
	if m == nil {
		return
	}
	for k, v := range m.Data {
		if math.Float32bits(v) != math.Float32bits(fill) {
			t.Fatalf("%s[%d] = %v was written on error (want %v)", what, k, v, fill)
		}
	}
}

// TestShardedBackwardRepeatable (item 1): a second Backward after one
// Forward gives bitwise the first's results, on both tile paths, with and
// without sampling, and dx first then dw (the natural split) equals both at
// once.
func TestShardedBackwardRepeatable(t *testing.T) {
	forEachLevelAndPath(t, testShardedBackwardRepeatable)
}

func testShardedBackwardRepeatable(t *testing.T) {
	r := rand.New(rand.NewSource(51))
	n, d, classes := 19, 12, 17
	for _, tc := range shardCases() {
		for _, rate := range []float32{0, 0.5} {
			head := tc.make()
			if rate != 0 && head.LabelSmoothing != 0 {
				continue // smoothing needs every class
			}
			k := max(head.SubCenters, 1)
			x, w := randMatrix(r, n, d), randMatrix(r, classes*k, d)
			labels := randLabels(r, n, classes)
			s := prepShards(t, head, x, w, labels, []int{0, 6, classes}, rate)
			for q := range s.hs {
				l0, dx0, dw0, err := s.backward(x, labels, q, true, true, 0)
				require.NoError(t, err)
				l1, dx1, dw1, err := s.backward(x, labels, q, true, true, 0)
				require.NoError(t, err)
				require.Equal(t, math.Float32bits(l0), math.Float32bits(l1), "%s rate %g shard %d: loss", tc.name, rate, q)
				requireBits(t, dx0.Data, dx1.Data, tc.name+" second Backward dx")
				requireBits(t, dw0.Data, dw1.Data, tc.name+" second Backward dw")
				_, dx2, _, err := s.backward(x, labels, q, true, false, 0)
				require.NoError(t, err)
				_, _, dw2, err := s.backward(x, labels, q, false, true, 0)
				require.NoError(t, err)
				requireBits(t, dx0.Data, dx2.Data, tc.name+" dx-only Backward")
				requireBits(t, dw0.Data, dw2.Data, tc.name+" dw-only Backward after dx-only")
			}
		}
	}
}

// TestShardedBackwardNilStats (item 2): nil statistics are ErrShape, never
// a panic.
func TestShardedBackwardNilStats(t *testing.T) {
	r := rand.New(rand.NewSource(52))
	x, w := randMatrix(r, 4, 3), randMatrix(r, 5, 3)
	labels := []int32{0, 1, 2, 4}
	h := &loss.ShardedHead{Head: loss.ArcFace(16, 0.5), Classes: 5}
	dx := filled(4, 3, 9)
	_, err := h.Backward(x, w, labels, nil, &dx, nil)
	require.ErrorIs(t, err, loss.ErrShape)
	var st loss.ShardStats
	require.NoError(t, h.Forward(x, w, labels, &st))
	_, err = h.Backward(x, w, labels, nil, &dx, nil)
	require.ErrorIs(t, err, loss.ErrShape)
	requireFilled(t, &dx, 9, "dx")
	require.ErrorIs(t, h.Forward(x, w, labels, nil), loss.ErrShape)
	require.Equal(t, 0, (*loss.ShardStats)(nil).Rows())
}

// TestShardedConfigChange (item 3): any change of the configuration
// between Forward and Backward is ErrParam with the outputs untouched;
// putting it back makes Backward work again.
func TestShardedConfigChange(t *testing.T) { forEachLevel(t, testShardedConfigChange) }

func testShardedConfigChange(t *testing.T) {
	r := rand.New(rand.NewSource(53))
	n, d, classes := 9, 6, 8
	changes := []struct {
		name          string
		rate          float32
		change, undo  func(h *loss.MarginSoftmax, sh *loss.ShardedHead)
		sub, lambdaOK bool
	}{
		{"SampleRate 0 → 0.5", 0, func(_ *loss.MarginSoftmax, sh *loss.ShardedHead) { sh.SampleRate = 0.5 }, func(_ *loss.MarginSoftmax, sh *loss.ShardedHead) { sh.SampleRate = 0 }, false, false},
		{"SampleRate 0.5 → 0", 0.5, func(_ *loss.MarginSoftmax, sh *loss.ShardedHead) { sh.SampleRate = 0 }, func(_ *loss.MarginSoftmax, sh *loss.ShardedHead) { sh.SampleRate = 0.5 }, false, false},
		{"SubCenters while sampling", 0.5, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.SubCenters = 1 }, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.SubCenters = 2 }, true, false},
		{"Reduction", 0, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.Reduction = loss.Sum }, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.Reduction = loss.Mean }, false, false},
		{"LabelSmoothing", 0, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.LabelSmoothing = 0.1 }, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.LabelSmoothing = 0 }, false, false},
		{"Accumulate", 0, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.Accumulate = true }, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.Accumulate = false }, false, false},
		{"EasyMargin", 0, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.EasyMargin = true }, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.EasyMargin = false }, false, false},
		{"DetachMargin", 0, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.DetachMargin = true }, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.DetachMargin = false }, false, false},
		{"TileBudget", 0, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.TileBudget = -1 }, func(h *loss.MarginSoftmax, _ *loss.ShardedHead) { h.TileBudget = 0 }, false, false},
	}
	for _, c := range changes {
		head := loss.ArcFace(16, 0.5)
		if c.sub {
			head.SubCenters = 2
		}
		k := max(head.SubCenters, 1)
		x, w := randMatrix(r, n, d), randMatrix(r, classes*k, d)
		labels := randLabels(r, n, classes)
		s := prepShards(t, head, x, w, labels, []int{0, 3, classes}, c.rate)
		for q, sh := range s.hs {
			c.change(head, sh)
			_, dx, dw, err := s.backward(x, labels, q, true, true, 5)
			require.ErrorIs(t, err, loss.ErrParam, "%s shard %d", c.name, q)
			requireFilled(t, dx, 5, c.name+" dx")
			requireFilled(t, dw, 5, c.name+" dw")
			c.undo(head, sh)
			_, dx, _, err = s.backward(x, labels, q, true, true, 5)
			require.NoError(t, err, "%s shard %d after undoing", c.name, q)
			require.True(t, allFinite(dx.Data))
		}
	}
	// λ of SphereFace, through SetLambda.
	head := loss.SphereFace(3, 2)
	x, w := randMatrix(r, n, d), randMatrix(r, classes, d)
	labels := randLabels(r, n, classes)
	s := prepShards(t, head, x, w, labels, []int{0, classes}, 0)
	head.SetLambda(1)
	_, dx, _, err := s.backward(x, labels, 0, true, false, 5)
	require.ErrorIs(t, err, loss.ErrParam)
	requireFilled(t, dx, 5, "λ dx")
	// Another head with another margin in the ShardedHead.
	s = prepShards(t, loss.ArcFace(16, 0.5), x, w, labels, []int{0, classes}, 0)
	s.hs[0].Head = loss.ArcFace(16, 0.4)
	_, _, _, err = s.backward(x, labels, 0, true, true, 5)
	require.ErrorIs(t, err, loss.ErrParam)
}

// TestShardedStatsValidated (item 4): statistics of another batch, zeroed,
// lowered, negative or with another target are ErrParam (NaN ErrNonFinite),
// with the outputs untouched, instead of NaN gradients and a nil error.
func TestShardedStatsValidated(t *testing.T) { forEachLevelAndPath(t, testShardedStatsValidated) }

func testShardedStatsValidated(t *testing.T) {
	r := rand.New(rand.NewSource(54))
	n, d, classes := 11, 8, 10
	for _, rate := range []float32{0, 0.6} {
		head := loss.ArcFace(32, 0.5)
		head.TileBudget = tileBudget
		x, w := randMatrix(r, n, d), randMatrix(r, classes, d)
		labels := randLabels(r, n, classes)
		xb := randMatrix(r, n, d)
		s := prepShards(t, head, x, w, labels, []int{0, 4, classes}, rate)
		other := prepShards(t, loss.ArcFace(32, 0.5), xb, w, randLabels(r, n, classes), []int{0, 4, classes}, rate)
		good := make([]loss.ShardStats, len(s.st))
		for q, p := range s.st {
			good[q] = loss.ShardStats{Max: slices.Clone(p.Max), Sums: slices.Clone(p.Sums)}
		}
		corrupt := []struct {
			name string
			want error
			f    func(q int, st *loss.ShardStats)
		}{
			{"another batch's stats", loss.ErrParam, func(q int, st *loss.ShardStats) {
				copy(st.Max, other.st[q].Max)
				copy(st.Sums, other.st[q].Sums)
			}},
			{"Sums[:N] zeroed", loss.ErrParam, func(_ int, st *loss.ShardStats) { clear(st.Sums[:n]) }},
			{"a negative sum", loss.ErrParam, func(_ int, st *loss.ShardStats) { st.Sums[3] = -st.Sums[3] }},
			{"Max lowered", loss.ErrParam, func(_ int, st *loss.ShardStats) {
				for i := range st.Max {
					st.Max[i] -= 40
				}
			}},
			{"sums not rescaled (shrunk)", loss.ErrParam, func(_ int, st *loss.ShardStats) {
				for i := range st.Sums[:n] {
					st.Sums[i] *= 1e-3
				}
			}},
			{"target logits changed", loss.ErrParam, func(_ int, st *loss.ShardStats) {
				for i := range st.Sums[n : 2*n] {
					st.Sums[n+i] += 0.25
				}
			}},
			{"NaN sum", loss.ErrNonFinite, func(_ int, st *loss.ShardStats) { st.Sums[2] = float32(math.NaN()) }},
			{"NaN max", loss.ErrNonFinite, func(_ int, st *loss.ShardStats) { st.Max[1] = float32(math.NaN()) }},
		}
		for _, c := range corrupt {
			for q := range s.hs {
				st := s.st[q]
				copy(st.Max, good[q].Max)
				copy(st.Sums, good[q].Sums)
				c.f(q, st)
				_, dx, dw, err := s.backward(x, labels, q, true, true, 3)
				require.ErrorIs(t, err, c.want, "rate %g %s shard %d", rate, c.name, q)
				requireFilled(t, dx, 3, c.name+" dx")
				requireFilled(t, dw, 3, c.name+" dw")
			}
		}
		for q := range s.hs { // the genuine statistics still pass
			copy(s.st[q].Max, good[q].Max)
			copy(s.st[q].Sums, good[q].Sums)
			_, dx, dw, err := s.backward(x, labels, q, true, true, 0)
			require.NoError(t, err)
			require.True(t, allFinite(dx.Data) && allFinite(dw.Data))
		}
	}
}

// TestShardedSampledAccumulateBound (item 5): with sampling, the bound of
// what Accumulate adds to dw covers the caller's dw, as without sampling.
func TestShardedSampledAccumulateBound(t *testing.T) {
	forEachLevel(t, testShardedSampledAccumulateBound)
}

func testShardedSampledAccumulateBound(t *testing.T) {
	r := rand.New(rand.NewSource(55))
	n, d, classes := 6, 4, 8
	for _, rate := range []float32{0, 0.5} {
		head := loss.ArcFace(8e29, 0.5)
		head.Accumulate = true
		x, w := randMatrix(r, n, d), randMatrix(r, classes, d)
		for j := 0; j < classes; j++ { // ‖W_j‖ = 1e-3
			row := w.Data[j*d : (j+1)*d]
			var nr float64
			for _, v := range row {
				nr += float64(v) * float64(v)
			}
			for c := range row {
				row[c] = float32(float64(row[c]) / math.Sqrt(nr) * 1e-3)
			}
		}
		labels := randLabels(r, n, classes)
		sh := &loss.ShardedHead{Head: head, Classes: classes, SampleRate: rate}
		var st loss.ShardStats
		require.NoError(t, sh.Forward(x, w, labels, &st))
		dw := filled(classes, d, math.MaxFloat32)
		for j := 0; j < classes*d; j += 2 {
			dw.Data[j] = -math.MaxFloat32
		}
		before := slices.Clone(dw.Data)
		_, err := sh.Backward(x, w, labels, &st, nil, &dw)
		require.ErrorIs(t, err, loss.ErrNonFinite, "rate %g", rate)
		requireBits(t, before, dw.Data, "dw after the refused call")
	}
}

// TestMergeShardStatsPartialAlias (item 6): dst overlapping a part in any
// way but being it is ErrOverlap, with dst untouched.
func TestMergeShardStatsPartialAlias(t *testing.T) {
	n := 4
	part := func(seed float32) *loss.ShardStats {
		p := &loss.ShardStats{Max: make([]float32, n), Sums: make([]float32, 3*n)}
		for i := range p.Max {
			p.Max[i] = seed + float32(i)
			p.Sums[i] = 1 + seed
		}
		return p
	}
	a, b := part(1), part(2)
	buf := slices.Clone(a.Sums)
	// b2 is b with its Max inside a buffer that dst.Sums of case 2 uses.
	shared := make([]float32, 4*n)
	copy(shared, b.Max)
	b2 := &loss.ShardStats{Max: shared[:n], Sums: slices.Clone(b.Sums)}
	cases := []struct {
		name  string
		dst   *loss.ShardStats
		parts []*loss.ShardStats
	}{
		{"dst.Max inside parts[0].Sums", &loss.ShardStats{Max: a.Sums[1:][:n:n], Sums: make([]float32, 3*n)}, []*loss.ShardStats{a, b}},
		{"dst.Sums over parts[1].Max", &loss.ShardStats{Max: make([]float32, n), Sums: shared[:3*n]}, []*loss.ShardStats{a, b2}},
		{"dst.Max is parts[1].Max but dst is not parts[1]", &loss.ShardStats{Max: b.Max, Sums: make([]float32, 3*n)}, []*loss.ShardStats{a, b}},
	}
	for _, c := range cases {
		dmax, dsums := slices.Clone(c.dst.Max), slices.Clone(c.dst.Sums)
		err := loss.MergeShardStats(c.dst, c.parts...)
		require.ErrorIs(t, err, loss.ErrOverlap, c.name)
		requireBits(t, dmax, c.dst.Max, c.name+" dst.Max")
		requireBits(t, dsums, c.dst.Sums, c.name+" dst.Sums")
	}
	requireBits(t, buf, a.Sums, "parts[0].Sums")
	// The documented in-place form still works, and equals a fresh dst.
	fresh := new(loss.ShardStats)
	require.NoError(t, loss.MergeShardStats(fresh, a, b))
	require.NoError(t, loss.MergeShardStats(a, a, b))
	requireBits(t, fresh.Max, a.Max, "in place Max")
	requireBits(t, fresh.Sums, a.Sums, "in place Sums")
	// dst being a part whose buffers overlap another part's is refused.
	c1 := part(3)
	c2 := &loss.ShardStats{Max: c1.Sums[:n], Sums: make([]float32, 3*n)}
	require.ErrorIs(t, loss.MergeShardStats(c1, c1, c2), loss.ErrOverlap)
}

// TestShardedClassesBeyondInt32 (item 7): Classes past MaxInt32 is
// ErrParam (labels and Sampled are int32), not a wrapped index.
func TestShardedClassesBeyondInt32(t *testing.T) {
	shift := uint(31)
	big := 1 << shift
	if big <= 0 {
		t.Skip("int is 32 bits here: Classes cannot exceed MaxInt32")
	}
	r := rand.New(rand.NewSource(56))
	x, w := randMatrix(r, 2, 3), randMatrix(r, 3, 3)
	for _, rate := range []float32{0, 0.5} {
		h := &loss.ShardedHead{Head: loss.ArcFace(16, 0.5), Offset: big, Classes: big + 3, SampleRate: rate}
		var st loss.ShardStats
		err := h.Forward(x, w, []int32{0, 1}, &st)
		require.ErrorIs(t, err, loss.ErrParam, "rate %g", rate)
		require.Empty(t, h.Sampled())
		require.Empty(t, st.Max)
	}
	// MaxInt32 classes in all is still fine.
	h := &loss.ShardedHead{Head: loss.ArcFace(16, 0.5), Offset: math.MaxInt32 - 3, Classes: math.MaxInt32}
	var st loss.ShardStats
	require.NoError(t, h.Forward(x, w, []int32{0, math.MaxInt32 - 1}, &st))
	for _, c := range h.Sampled() {
		require.GreaterOrEqual(t, c, int32(math.MaxInt32-3))
	}
}

// TestDxOnlyBound (item 8): a dx-only call is bounded on its own. A W row
// just above the zero-row threshold makes dX̂'s operand Gc/‖W_j‖ overflow:
// the call with dw refused it, the one without returned NaN dx. A sweep of
// extreme inputs checks the contract (nil error ⇒ finite dx) for every kind
// and entry (Loss, PartialFC, ShardedHead).
func TestDxOnlyBound(t *testing.T) { forEachLevel(t, testDxOnlyBound) }

func testDxOnlyBound(t *testing.T) {
	x := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{1, 0.3}}
	w := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 0, 1e-30, 1e-30}}
	dx := filled(1, 2, 4)
	_, err := loss.ArcFace(1e9, 0.5).Loss(x, w, []int32{0}, &dx, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	requireFilled(t, &dx, 4, "dx")
	pfc := &loss.PartialFC{Head: loss.ArcFace(1e9, 0.5), SampleRate: 1}
	_, err = pfc.Loss(x, w, []int32{0}, &dx, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	sh := &loss.ShardedHead{Head: loss.ArcFace(1e9, 0.5), Classes: 2}
	var st loss.ShardStats
	lab := []int32{0}
	require.NoError(t, sh.Forward(x, w, lab, &st))
	_, err = sh.Backward(x, w, lab, &st, &dx, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	requireFilled(t, &dx, 4, "dx")

	rng := rand.New(rand.NewSource(57))
	heads := []func() *loss.MarginSoftmax{
		func() *loss.MarginSoftmax { return loss.ArcFace(1e9, 0.5) },
		func() *loss.MarginSoftmax { return loss.CosFace(1e6, 0.35) },
		func() *loss.MarginSoftmax { return loss.SphereFace(1+rng.Intn(8), float32(rng.Intn(3))) },
		func() *loss.MarginSoftmax { return loss.LargeMargin(1+rng.Intn(8), float32(rng.Intn(3))) },
	}
	scales := []float32{1, 1e9, 1e10, 1e20, 1e-30, 1e-35}
	for it := 0; it < 1500; it++ {
		n, c, d := 1+rng.Intn(3), 1+rng.Intn(5), 1+rng.Intn(4)
		x := randMatrix(rng, n, d)
		sc := scales[rng.Intn(len(scales))]
		for i := range x.Data {
			x.Data[i] *= sc
		}
		w := randMatrix(rng, c, d)
		if rng.Intn(3) == 0 {
			for i := range w.Data[:d] {
				w.Data[i] *= 1e-30
			}
		}
		labels := randLabels(rng, n, c)
		head := heads[rng.Intn(len(heads))]()
		dx := filled(n, d, 0)
		if _, err := head.Loss(x, w, labels, &dx, nil); err == nil && !allFinite(dx.Data) {
			t.Fatalf("%v: Loss nil error with non-finite dx %v (x %v w %v labels %v)", head, dx.Data, x.Data, w.Data, labels)
		}
		sh := &loss.ShardedHead{Head: head, Classes: c}
		var st loss.ShardStats
		if sh.Forward(x, w, labels, &st) != nil {
			continue
		}
		dx = filled(n, d, 0)
		if _, err := sh.Backward(x, w, labels, &st, &dx, nil); err == nil && !allFinite(dx.Data) {
			t.Fatalf("%v: ShardedHead nil error with non-finite dx %v", head, dx.Data)
		}
	}
}

// TestTiedLargeLogits (item 9): at large logit magnitudes the
// probabilities come from the row's largest logit and a sum in [1, C], so
// tied logits keep exactly equal probabilities.
func TestTiedLargeLogits(t *testing.T) { forEachLevelAndPath(t, testTiedLargeLogits) }

func testTiedLargeLogits(t *testing.T) {
	for _, s := range []float32{1e7, 1e29} {
		dc := filled(1, 2, 0)
		_, err := loss.CosFace(s, 0).LossFromCosines(loss.Matrix{Rows: 1, Cols: 2, Data: []float32{0.5, 0.5}}, []int32{0}, &dc)
		require.NoError(t, err)
		require.InEpsilon(t, -0.5*float64(s), float64(dc.Data[0]), 1e-6, "CosFace(%g) dcos %v", s, dc.Data)
		require.InEpsilon(t, 0.5*float64(s), float64(dc.Data[1]), 1e-6, "CosFace(%g) dcos %v", s, dc.Data)
		// The head from x and W gives the same (x̂·Ŵ_j = 0.5 exactly).
		h := loss.CosFace(s, 0)
		h.TileBudget = tileBudget
		x := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{1, 0}}
		w := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{0.5, 0.75, 0.5, -0.75}}
		dw := filled(2, 2, 0)
		l, err := h.Loss(x, w, []int32{0}, nil, &dw)
		require.NoError(t, err)
		require.InDelta(t, math.Ln2, float64(l), 1e-6)
	}
	// L-Softmax(1, 0) with two equal W rows: p = (½, ½), dx = Σ (p_j − δ_jy)·W_j = 0.
	lm := loss.LargeMargin(1, 0)
	lm.TileBudget = tileBudget
	x := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{1e7, 0}}
	w := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 0, 1, 0}}
	dx := filled(1, 2, 9)
	l, err := lm.Loss(x, w, []int32{0}, &dx, nil)
	require.NoError(t, err)
	require.InDelta(t, math.Ln2, float64(l), 1e-6)
	for _, v := range dx.Data {
		require.InDelta(t, 0, float64(v), 1e-6, "dx %v", dx.Data)
	}
	// SphereFace(1) with ‖x‖ = 1e10 and five tied classes: p_j = 1/5, loss
	// log 5, and dx = Σ_j (p_j − δ_jy)·Ŵ_j = 0.
	sp := loss.SphereFace(1, 0)
	sp.TileBudget = tileBudget
	x = loss.Matrix{Rows: 1, Cols: 2, Data: []float32{0, 1e10}}
	w = filled(5, 2, 0)
	for j := 0; j < 5; j++ {
		w.Data[2*j+1] = float32(j + 1)
	}
	dx, dw := filled(1, 2, 9), filled(5, 2, 9)
	l, err = sp.Loss(x, w, []int32{2}, &dx, &dw)
	require.NoError(t, err)
	require.InDelta(t, math.Log(5), float64(l), 1e-6)
	for _, v := range dx.Data {
		require.InDelta(t, 0, float64(v), 1e-6, "dx %v", dx.Data)
	}
	// Focal.Softmax with tied logits at 1e7: (p − onehot) exactly.
	dz := filled(1, 3, 0)
	_, err = loss.Focal{}.Softmax(loss.Matrix{Rows: 1, Cols: 3, Data: []float32{1e7, 1e7, -1e7}}, []int32{0}, &dz)
	require.NoError(t, err)
	require.Equal(t, []float32{-0.5, 0.5, 0}, dz.Data)
}

// TestFocalInputRule (edges): a NaN or ±Inf logit or target is
// ErrNonFinite, a finite target outside [0, 1] ErrLabel; Softmax ignores
// Alpha (Validate and Sigmoid check it).
func TestFocalInputRule(t *testing.T) {
	one := func(v float32) loss.Matrix { return loss.Matrix{Rows: 1, Cols: 1, Data: []float32{v}} }
	for _, v := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		d := one(7)
		_, err := loss.Focal{Gamma: 2}.Sigmoid(one(0.3), one(v), &d)
		require.ErrorIs(t, err, loss.ErrNonFinite, "target %v", v)
		_, err = loss.Focal{Gamma: 2}.Sigmoid(one(v), one(0.3), &d)
		require.ErrorIs(t, err, loss.ErrNonFinite, "logit %v", v)
		requireFilled(t, &d, 7, "dlogits")
	}
	for _, v := range []float32{-0.5, 1.5, -math.MaxFloat32} {
		_, err := loss.Focal{Gamma: 2}.Sigmoid(one(0.3), one(v), nil)
		require.ErrorIs(t, err, loss.ErrLabel, "target %v", v)
	}
	nanAlpha := loss.Focal{Gamma: 2, Alpha: float32(math.NaN())}
	logits := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{0.5, -1}}
	_, err := nanAlpha.Softmax(logits, []int32{0}, nil)
	require.NoError(t, err, "Softmax ignores Alpha")
	require.ErrorIs(t, nanAlpha.Validate(), loss.ErrParam)
	_, err = nanAlpha.Sigmoid(logits, loss.Matrix{Rows: 1, Cols: 2, Data: []float32{1, 0}}, nil)
	require.ErrorIs(t, err, loss.ErrParam)
	_, err = loss.Focal{Gamma: -1, Alpha: float32(math.NaN())}.Softmax(logits, []int32{0}, nil)
	require.ErrorIs(t, err, loss.ErrParam, "Softmax still checks Gamma")
}

// TestFocalExactFitsNotRefused (edges): finite results are computed where
// a conservative bound used to refuse them, and refused just beyond.
func TestFocalExactFitsNotRefused(t *testing.T) { forEachLevel(t, testFocalExactFitsNotRefused) }

func testFocalExactFitsNotRefused(t *testing.T) {
	big := float32(3e38)
	// C = 1: the loss is 0 whatever the logits.
	logits := loss.Matrix{Rows: 3, Cols: 1, Data: []float32{big, -big, 1}}
	d := filled(3, 1, 5)
	l, err := loss.Focal{Gamma: 2, Reduction: loss.Sum}.Softmax(logits, []int32{0, 0, 0}, &d)
	require.NoError(t, err)
	require.Equal(t, float32(0), l)
	require.Equal(t, []float32{0, 0, 0}, d.Data)
	// Logits at ±3e38 with the label at the max: loss ≈ 0, finite gradient.
	for _, g := range []float32{0, 2} {
		logits = loss.Matrix{Rows: 2, Cols: 3, Data: []float32{big, -big, -big, -big, big, 0}}
		d = filled(2, 3, 5)
		l, err = loss.Focal{Gamma: g}.Softmax(logits, []int32{0, 1}, &d)
		require.NoError(t, err, "γ=%g", g)
		require.Equal(t, float32(0), l)
		require.True(t, allFinite(d.Data), "%v", d.Data)
		for _, v := range d.Data {
			require.Equal(t, float32(0), v+0, "γ=%g: %v", g, d.Data)
		}
	}
	// The label far below: the loss is 6e38 (Sum) or 3e38 (one row, Mean):
	// beyond float32 for the first, refused; fits for the second.
	logits = loss.Matrix{Rows: 1, Cols: 2, Data: []float32{-big, big}}
	l, err = loss.Focal{}.Softmax(logits, []int32{0}, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite, "loss 6e38 (got %v)", l)
	logits = loss.Matrix{Rows: 1, Cols: 2, Data: []float32{-1.5e38, 1.5e38}}
	l, err = loss.Focal{}.Softmax(logits, []int32{0}, nil)
	require.NoError(t, err)
	require.InEpsilon(t, 3e38, float64(l), 1e-6)
	// Sigmoid: |z| = 3e38 over 2 elements whose mean loss is 1.5e38.
	z := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{big, big}}
	tg := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{0, 1}}
	ds := filled(1, 2, 5)
	l, err = loss.Focal{Gamma: 2}.Sigmoid(z, tg, &ds)
	require.NoError(t, err)
	require.InEpsilon(t, 1.5e38, float64(l), 1e-6)
	require.True(t, allFinite(ds.Data), "%v", ds.Data)
	// The same with Sum is 3e38 and fits; two such elements with Sum do not.
	l, err = loss.Focal{Reduction: loss.Sum}.Sigmoid(z, tg, nil)
	require.NoError(t, err)
	require.InEpsilon(t, 3e38, float64(l), 1e-6)
	_, err = loss.Focal{Reduction: loss.Sum}.Sigmoid(z, loss.Matrix{Rows: 1, Cols: 2, Data: []float32{0, 0}}, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
}

// TestLargeMarginZeroRowExact (edges): L-Softmax's logits W_j·x are
// linear, so a row of x below the zero-row threshold keeps its exact
// logits and gradient Σ_j (p_j − δ_jy)·W_j (m = 1: every logit; m ≥ 2: the
// non-target ones, the target's cosine taken as 0 with no gradient),
// checked against a float64 reference and finite differences.
func TestLargeMarginZeroRowExact(t *testing.T) { forEachLevelAndPath(t, testLargeMarginZeroRowExact) }

func testLargeMarginZeroRowExact(t *testing.T) {
	r := rand.New(rand.NewSource(58))
	n, d, c := 4, 3, 5
	for _, m := range []int{1, 2, 4} {
		x := randMatrix(r, n, d)
		for k := range x.Data[:2*d] { // rows 0 and 1: norm ≈ 1e-31 < 2⁻¹⁰⁰
			x.Data[k] *= 1e-31
		}
		w := randMatrix(r, c, d)
		for k := range w.Data {
			w.Data[k] *= 3e30 // logits of the tiny rows O(1)
		}
		labels := []int32{1, 3, 0, 2}
		// Keep the normal rows' logits moderate: they are ‖W‖‖x‖·cos, O(1e30)
		// otherwise; rescale them to ‖x‖ ≈ 1e-30 too, just above the threshold.
		for k := 2 * d; k < n*d; k++ {
			x.Data[k] *= 1e-30
		}
		h := loss.LargeMargin(m, 0)
		h.TileBudget = tileBudget
		dx, dw := filled(n, d, 0), filled(c, d, 0)
		_, err := h.Loss(x, w, labels, &dx, &dw)
		require.NoError(t, err, "m=%d", m)
		// Reference for the tiny rows, in float64: logits W_j·x (the
		// target for m ≥ 2: ‖W_y‖‖x‖·ψ(π/2), ψ(π/2) = cos(mπ/2) − 2⌊m/2⌋... as the
		// convention takes cos θ = 0).
		for i := 0; i < 2; i++ {
			xi := x.Data[i*d : (i+1)*d]
			y := int(labels[i])
			z := make([]float64, c)
			for j := range z {
				for q := 0; q < d; q++ {
					z[j] += float64(w.Data[j*d+q]) * float64(xi[q])
				}
			}
			if m > 1 {
				var nx, nw float64
				for q := 0; q < d; q++ {
					nx += float64(xi[q]) * float64(xi[q])
					nw += float64(w.Data[y*d+q]) * float64(w.Data[y*d+q])
				}
				k := math.Floor(float64(m) * (math.Pi / 2) / math.Pi)
				psi := math.Pow(-1, k)*math.Cos(float64(m)*math.Pi/2) - 2*k
				z[y] = math.Sqrt(nx) * math.Sqrt(nw) * psi
			}
			mx := slices.Max(z)
			var s float64
			for _, v := range z {
				s += math.Exp(v - mx)
			}
			want := make([]float64, d)
			for j := range z {
				p := math.Exp(z[j]-mx) / s
				if j == y {
					if m > 1 {
						continue // the target's cosine: no gradient
					}
					p--
				}
				for q := 0; q < d; q++ {
					want[q] += p * float64(w.Data[j*d+q]) / float64(n)
				}
			}
			var e, g float64
			for q := 0; q < d; q++ {
				e = math.Max(e, math.Abs(float64(dx.Data[i*d+q])-want[q]))
				g = math.Max(g, math.Abs(want[q]))
			}
			require.LessOrEqual(t, e, 1e-5*g, "m=%d row %d: dx %v want %v", m, i, dx.Data[i*d:(i+1)*d], want)
		}
		if m != 1 {
			continue
		}
		// m = 1: finite differences of the loss in float64 through the API
		// (the loss is smooth in x everywhere for a linear layer).
		for i := 0; i < 2; i++ {
			for q := 0; q < d; q++ {
				hq := 1e-33 + math.Abs(float64(x.Data[i*d+q]))*1e-3
				xp, xm := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(x.Data)}, loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(x.Data)}
				xp.Data[i*d+q] += float32(hq)
				xm.Data[i*d+q] -= float32(hq)
				hq = (float64(xp.Data[i*d+q]) - float64(xm.Data[i*d+q])) / 2
				lp, err := h.Loss(xp, w, labels, nil, nil)
				require.NoError(t, err)
				lm, err := h.Loss(xm, w, labels, nil, nil)
				require.NoError(t, err)
				fd := (float64(lp) - float64(lm)) / (2 * hq)
				require.InDelta(t, fd, float64(dx.Data[i*d+q]), 2e-3*math.Max(1, math.Abs(fd)), "m=1 row %d col %d: FD %g, dx %g", i, q, fd, dx.Data[i*d+q])
			}
		}
	}
}

// TestShardedCallOrder walks the call orders of the contract on one
// shard: Backward before any Forward; Forward → Backward → Backward;
// Forward → configuration change → Backward; a failed Forward after a good
// one; statistics from another call; nil statistics.
func TestShardedCallOrder(t *testing.T) { forEachLevelAndPath(t, testShardedCallOrder) }

func testShardedCallOrder(t *testing.T) {
	r := rand.New(rand.NewSource(59))
	n, d, classes := 7, 5, 6
	head := loss.CosFace(24, 0.35)
	head.TileBudget = tileBudget
	x, w := randMatrix(r, n, d), randMatrix(r, classes, d)
	labels := randLabels(r, n, classes)
	sh := &loss.ShardedHead{Head: head, Classes: classes}
	var st loss.ShardStats
	dx, dw := filled(n, d, 2), filled(classes, d, 2)
	_, err := sh.Backward(x, w, labels, &st, &dx, &dw)
	require.ErrorIs(t, err, loss.ErrParam, "Backward before Forward")
	requireFilled(t, &dx, 2, "dx")

	require.NoError(t, sh.Forward(x, w, labels, &st))
	saved := loss.ShardStats{Max: slices.Clone(st.Max), Sums: slices.Clone(st.Sums)}
	l1, err := sh.Backward(x, w, labels, &st, &dx, &dw)
	require.NoError(t, err)
	dx1, dw1 := slices.Clone(dx.Data), slices.Clone(dw.Data)
	l2, err := sh.Backward(x, w, labels, &st, &dx, &dw)
	require.NoError(t, err)
	require.Equal(t, l1, l2)
	requireBits(t, dx1, dx.Data, "dx of the second Backward")
	requireBits(t, dw1, dw.Data, "dw of the second Backward")
	// The loss equals the unsharded head's (one shard is the whole head).
	want, err := head.Loss(x, w, labels, nil, nil)
	require.NoError(t, err)
	require.InEpsilon(t, float64(want), float64(l1), 1e-6)

	head.Reduction = loss.Sum
	dx = filled(n, d, 2)
	_, err = sh.Backward(x, w, labels, &st, &dx, nil)
	require.ErrorIs(t, err, loss.ErrParam, "configuration changed")
	requireFilled(t, &dx, 2, "dx")
	head.Reduction = loss.Mean

	// Statistics of another call (another batch through the same head).
	xb := randMatrix(r, n, d)
	var other loss.ShardStats
	other2 := &loss.ShardedHead{Head: head, Classes: classes}
	require.NoError(t, other2.Forward(xb, w, labels, &other))
	_, err = sh.Backward(x, w, labels, &other, &dx, nil)
	require.ErrorIs(t, err, loss.ErrParam, "stats of another call")
	requireFilled(t, &dx, 2, "dx")
	_, err = sh.Backward(x, w, labels, nil, &dx, nil)
	require.ErrorIs(t, err, loss.ErrShape, "nil stats")
	_, err = sh.Backward(x, w, labels, &saved, &dx, nil)
	require.NoError(t, err, "a copy of the genuine statistics")

	// A failed Forward leaves no Forward to go back to.
	bad := randMatrix(r, n, d)
	bad.Data[3] = float32(math.NaN())
	require.ErrorIs(t, sh.Forward(bad, w, labels, &st), loss.ErrNonFinite)
	dx = filled(n, d, 2)
	_, err = sh.Backward(x, w, labels, &saved, &dx, nil)
	require.ErrorIs(t, err, loss.ErrParam, "Backward after a failed Forward")
	requireFilled(t, &dx, 2, "dx")
}
