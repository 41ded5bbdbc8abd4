package loss_test

// The package's contracts (those that allHeads() gives the fixed kinds in
// api_test.go, hardening_test.go, tiles_test.go and partialfc_test.go) for
// the adaptive heads: every bad call returns its sentinel and leaves the
// outputs, the adaptive state and AppendMargins as they were (through Loss,
// LossFromCosinesNorms, PartialFC and ShardedHead); overlapping outputs are
// ErrOverlap, the in-place dx = x gives the bits of a separate dx; a nil
// error comes with finite outputs and state on hostile magnitudes and on
// the exact extremes (|cos| = 1, x = W_j, zero rows, tied logits), the
// latter against the float64 reference of adaptive_bf16_test.go;
// Accumulate adds to the old contents; kept and recomputed tiles agree
// bitwise; forward-only calls allocate nothing; PartialFC is bitwise its
// Head on the sampled classes and allocates nothing; LossFromCosinesNorms
// matches Loss; a ShardedHead step is bitwise the same for any GOMAXPROCS.

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// adaptiveContractHeads are adaptiveHeads (the paper settings) and
// variants with sub-centers, label smoothing, Sum and MagFace's threshold
// fallback, with the tests' TileBudget.
func adaptiveContractHeads() map[string]func() *loss.MarginSoftmax {
	base := adaptiveHeads()
	hs := map[string]func() *loss.MarginSoftmax{}
	with := func(name, from string, opt func(h *loss.MarginSoftmax)) {
		mk := base[from]
		hs[name] = func() *loss.MarginSoftmax {
			h := mk()
			opt(h)
			h.TileBudget = tileBudget
			return h
		}
	}
	for name := range base {
		with(name, name, func(*loss.MarginSoftmax) {})
	}
	with("AdaFace/K=3+smooth", "AdaFace", func(h *loss.MarginSoftmax) { h.SubCenters, h.LabelSmoothing = 3, 0.1 })
	with("MagFace/hard+Sum", "MagFace", func(h *loss.MarginSoftmax) { h.EasyMargin, h.Reduction = false, loss.Sum })
	with("Curricular/K=2+smooth", "Curricular", func(h *loss.MarginSoftmax) { h.SubCenters, h.LabelSmoothing = 2, 0.1 })
	with("ElasticCosPlus/K=2", "ElasticCos", func(h *loss.MarginSoftmax) { h.ElasticPlus, h.SubCenters = true, 2 })
	return hs
}

// sortedHeads iterates hs by name, so that the draws each head gets from a
// shared generator are the same in every run.
func sortedHeads(hs map[string]func() *loss.MarginSoftmax) func(yield func(string, func() *loss.MarginSoftmax) bool) {
	return func(yield func(string, func() *loss.MarginSoftmax) bool) {
		for _, name := range slices.Sorted(maps.Keys(hs)) {
			if !yield(name, hs[name]) {
				return
			}
		}
	}
}

// adaSnapshot is a head's state and margins, to compare after a failed
// call.
type adaSnapshot struct {
	st      loss.AdaptiveState
	margins []float32
}

func adaSnap(h *loss.MarginSoftmax) adaSnapshot {
	return adaSnapshot{h.State(), h.AppendMargins(nil)}
}

func (s adaSnapshot) require(t *testing.T, h *loss.MarginSoftmax, what string) {
	t.Helper()
	require.Equal(t, s.st, h.State(), "%s: state changed on error", what)
	got := h.AppendMargins(nil)
	require.Len(t, got, len(s.margins), "%s: margins changed on error", what)
	for i := range got {
		require.Equal(t, math.Float32bits(s.margins[i]), math.Float32bits(got[i]), "%s: margin %d changed on error", what, i)
	}
}

// TestAdaptiveErrors: TestMarginErrors's bad calls (and those only the
// adaptive heads have) on every adaptive head after a successful call, so
// that its state and margins are a call's and not the constructor's: the
// sentinel, a zero loss, dx and dw, the state and AppendMargins untouched.
// The same through LossFromCosinesNorms (dcos, dnorms), PartialFC and a
// ShardedHead (whose own state copy must stay).
func TestAdaptiveErrors(t *testing.T) {
	r := rand.New(rand.NewSource(170))
	for name, mk0 := range sortedHeads(adaptiveContractHeads()) {
		for _, prec := range []loss.Precision{loss.Float32, loss.BFloat16} {
			mk := func() *loss.MarginSoftmax { h := mk0(); h.Precision = prec; return h }
			t.Run(name+"/"+prec.String(), func(t *testing.T) { testAdaptiveErrors(t, r, name, mk) })
		}
	}
}

func testAdaptiveErrors(t *testing.T, r *rand.Rand, name string, mk func() *loss.MarginSoftmax) {
	const n, c, d = 4, 5, 3
	h := mk()
	k := max(h.SubCenters, 1)
	rows := c * k
	x, w := normedMatrix(r, n, d), randMatrix(r, rows, d)
	lab := randLabels(r, n, c)
	// a first call, on other data, so that the state is a call's
	_, err := h.Loss(normedMatrix(r, n, d), randMatrix(r, rows, d), randLabels(r, n, c), nil, nil)
	require.NoError(t, err)
	snap := adaSnap(h)
	require.True(t, len(snap.margins) > 0 || snap.st.T != 0, "%s: the first call moved neither the state nor the margins", name)
	nanX := normedMatrix(r, n, d)
	nanX.Data[2*d+1] = float32(math.NaN())
	infX := normedMatrix(r, n, d)
	infX.Data[d] = float32(math.Inf(1))
	infW := randMatrix(r, rows, d)
	infW.Data[(rows-1)*d] = float32(math.Inf(-1))
	nanW := randMatrix(r, rows, d)
	nanW.Data[1] = float32(math.NaN())
	cases := []struct {
		name string
		want error
		x, w loss.Matrix
		lab  []int32
		dx   *loss.Matrix
		dw   *loss.Matrix
	}{
		{"x data length", loss.ErrShape, loss.Matrix{Rows: n, Cols: d, Data: x.Data[:n*d-1]}, w, lab, nil, nil},
		{"w data length", loss.ErrShape, x, loss.Matrix{Rows: rows, Cols: d, Data: w.Data[:2]}, lab, nil, nil},
		{"D mismatch", loss.ErrShape, normedMatrix(r, n, d+1), w, lab, nil, nil},
		{"no classes", loss.ErrShape, x, loss.Matrix{Rows: 0, Cols: d}, lab, nil, nil},
		{"dx shape", loss.ErrShape, x, w, lab, &loss.Matrix{Rows: n, Cols: d + 1, Data: make([]float32, n*(d+1))}, nil},
		{"dw shape", loss.ErrShape, x, w, lab, nil, &loss.Matrix{Rows: rows - 1, Cols: d, Data: make([]float32, (rows-1)*d)}},
		{"dw data length", loss.ErrShape, x, w, lab, nil, &loss.Matrix{Rows: rows, Cols: d, Data: make([]float32, 1)}},
		{"label high", loss.ErrLabel, x, w, []int32{0, 1, int32(c), 0}, nil, nil},
		{"label negative", loss.ErrLabel, x, w, []int32{0, -1, 0, 0}, nil, nil},
		{"labels short", loss.ErrLabel, x, w, lab[:n-1], nil, nil},
		{"NaN in x", loss.ErrNonFinite, nanX, w, lab, nil, nil},
		{"Inf in x", loss.ErrNonFinite, infX, w, lab, nil, nil},
		{"Inf in w", loss.ErrNonFinite, x, infW, lab, nil, nil},
		{"NaN in w", loss.ErrNonFinite, x, nanW, lab, nil, nil},
		{"dw is w", loss.ErrOverlap, x, w, lab, nil, &w},
		{"dx on w", loss.ErrOverlap, x, w, lab, &loss.Matrix{Rows: n, Cols: d, Data: w.Data[:n*d]}, nil},
	}
	if k > 1 {
		cases = append(cases, struct {
			name string
			want error
			x, w loss.Matrix
			lab  []int32
			dx   *loss.Matrix
			dw   *loss.Matrix
		}{"rows not a multiple of K", loss.ErrShape, x, loss.Matrix{Rows: rows - 1, Cols: d, Data: w.Data[:(rows-1)*d]}, lab, nil, nil})
	}
	for _, tc := range cases {
		dx, dw := gradsOr42(tc.dx, tc.dw, tc.x, tc.w)
		before := snapshot(dx, dw)
		var l float32
		var err error
		require.NotPanics(t, func() { l, err = h.Loss(tc.x, tc.w, tc.lab, dx, dw) }, tc.name)
		require.ErrorIs(t, err, tc.want, tc.name)
		require.NotEmpty(t, err.Error())
		require.Zero(t, l, tc.name)
		requireUntouched(t, before, dx, dw)
		snap.require(t, h, tc.name)
		// forward only too: the state is a training step's
		if tc.dx == nil && tc.dw == nil {
			_, err = h.Loss(tc.x, tc.w, tc.lab, nil, nil)
			require.ErrorIs(t, err, tc.want, tc.name+" forward only")
			snap.require(t, h, tc.name+" forward only")
		}
	}
	// Accumulate into a non-finite buffer: nothing written.
	h.Accumulate = true
	dx := filled(n, d, 0)
	dx.Data[1] = float32(math.NaN())
	before := snapshot(&dx)
	_, err = h.Loss(x, w, lab, &dx, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	requireUntouched(t, before, &dx)
	snap.require(t, h, "accumulate into NaN")
	h.Accumulate = false
	// ElasticFace: Margins of the wrong length or non-finite.
	if strings.HasPrefix(name, "Elastic") {
		_, err := h.Loss(x, w, lab, nil, nil)
		require.NoError(t, err)
		snap = adaSnap(h)
		for _, m := range [][]float32{{0.5}, {0.5, 0.5, float32(math.NaN()), 0.5}} {
			h.Margins = m
			_, err = h.Loss(x, w, lab, nil, nil)
			require.Error(t, err)
			require.True(t, errors.Is(err, loss.ErrShape) || errors.Is(err, loss.ErrNonFinite), "%v", err)
			snap.require(t, h, "Margins")
		}
		h.Margins = nil
	}
	adaCosineErrors(t, h, r, n, rows, strings.HasPrefix(name, "AdaFace") || strings.HasPrefix(name, "MagFace"))
	adaComposedErrors(t, mk, r, n, c, d)
}

// adaCosineErrors: LossFromCosinesNorms's bad calls leave dcos, dnorms,
// the state and the margins alone.
func adaCosineErrors(t *testing.T, h *loss.MarginSoftmax, r *rand.Rand, n, rows int, needsNorms bool) {
	t.Helper()
	c := rows / max(h.SubCenters, 1)
	cos := randMatrix(r, n, rows)
	for i := range cos.Data {
		cos.Data[i] = float32(math.Tanh(float64(cos.Data[i])))
	}
	norms := []float32{3, 20, 50, 90}[:n]
	lab := randLabels(r, n, c)
	_, err := h.LossFromCosinesNorms(cos, norms, lab, nil, nil)
	require.NoError(t, err)
	snap := adaSnap(h)
	nanCos := loss.Matrix{Rows: n, Cols: rows, Data: slices.Clone(cos.Data)}
	nanCos.Data[3] = float32(math.NaN())
	bigCos := loss.Matrix{Rows: n, Cols: rows, Data: slices.Clone(cos.Data)}
	bigCos.Data[2] = 1.5
	shared := append([]float32{0}, cos.Data...)
	sharedCos := loss.Matrix{Rows: n, Cols: rows, Data: shared[1:]}
	for _, tc := range []struct {
		name   string
		want   error
		cos    loss.Matrix
		norms  []float32
		lab    []int32
		dn     []float32
		norm   bool // an error of the kinds that read the norms only
		shared bool // dcos is shared[:n·rows], one element before cos
	}{
		{"NaN cos", loss.ErrNonFinite, nanCos, norms, lab, nil, false, false},
		{"cos above 1", loss.ErrParam, bigCos, norms, lab, nil, false, false},
		{"label high", loss.ErrLabel, cos, norms, []int32{0, int32(c), 0, 0}[:n], nil, false, false},
		{"labels short", loss.ErrLabel, cos, norms, lab[:n-1], nil, false, false},
		{"dcos shifted by one over cos", loss.ErrOverlap, sharedCos, norms, lab, nil, false, true},
		{"dnorms on norms", loss.ErrOverlap, cos, norms, lab, norms, false, false},
		{"norms short", loss.ErrShape, cos, norms[:n-1], lab, nil, true, false},
		{"NaN norm", loss.ErrNonFinite, cos, []float32{3, float32(math.NaN()), 5, 6}[:n], lab, nil, true, false},
		{"negative norm", loss.ErrParam, cos, []float32{3, -1, 5, 6}[:n], lab, nil, true, false},
		{"dnorms short", loss.ErrShape, cos, norms, lab, make([]float32, n-1), true, false},
	} {
		if tc.norm && !needsNorms {
			continue
		}
		dcos := filled(n, rows, 9)
		if tc.shared {
			dcos = loss.Matrix{Rows: n, Cols: rows, Data: shared[:n*rows]}
		}
		dn := tc.dn
		if dn == nil {
			dn = []float32{9, 9, 9, 9, 9}[:n]
		}
		before, dnBefore := snapshot(&dcos), slices.Clone(dn)
		_, err := h.LossFromCosinesNorms(tc.cos, tc.norms, tc.lab, &dcos, dn)
		require.ErrorIs(t, err, tc.want, tc.name)
		requireUntouched(t, before, &dcos)
		require.Equal(t, dnBefore, dn, "%s: dnorms changed on error", tc.name)
		snap.require(t, h, "cosines "+tc.name)
	}
}

// adaComposedErrors: a failing PartialFC call leaves its Head's state and
// margins; a failing ShardedHead Forward or Backward leaves the shard's
// state (after a successful step, so that it is a step's).
func adaComposedErrors(t *testing.T, mk func() *loss.MarginSoftmax, r *rand.Rand, n, c, d int) {
	t.Helper()
	h := mk()
	k := max(h.SubCenters, 1)
	x, w := normedMatrix(r, n, d), randMatrix(r, c*k, d)
	lab := randLabels(r, n, c)
	nanX := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(x.Data)}
	nanX.Data[1] = float32(math.NaN())
	p := &loss.PartialFC{Head: h, SampleRate: 0.5, Seed: 3}
	_, err := p.Loss(x, w, lab, nil, nil)
	require.NoError(t, err)
	snap := adaSnap(h)
	dx, dw := filled(n, d, 5), filled(c*k, d, 5)
	before := snapshot(&dx, &dw)
	_, err = p.Loss(nanX, w, lab, &dx, &dw)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	_, err = p.Loss(x, w, []int32{0, 1, int32(c), 0}[:n], &dx, &dw)
	require.ErrorIs(t, err, loss.ErrLabel)
	requireUntouched(t, before, &dx, &dw)
	snap.require(t, h, "PartialFC")

	head := mk()
	sh := &loss.ShardedHead{Head: head, Classes: c}
	st := &loss.ShardStats{}
	require.NoError(t, sh.Prepare(x, w, lab, st))
	require.NoError(t, sh.Forward(x, w, lab, st))
	_, err = sh.Backward(x, w, lab, st, &dx, &dw)
	require.NoError(t, err)
	shSt := sh.State()
	headSt := head.State()
	dx, dw = filled(n, d, 5), filled(c*k, d, 5)
	before = snapshot(&dx, &dw)
	st2 := &loss.ShardStats{}
	if head.NeedsTargets() {
		require.ErrorIs(t, sh.Prepare(nanX, w, lab, st2), loss.ErrNonFinite)
		require.NoError(t, sh.Prepare(x, w, lab, st2)) // Forward's errors below are not of missing Targets
	}
	require.ErrorIs(t, sh.Forward(nanX, w, lab, st2), loss.ErrNonFinite)
	require.ErrorIs(t, sh.Forward(x, w, []int32{0, 1, int32(c), 0}[:n], st2), loss.ErrLabel)
	_, err = sh.Backward(x, w, lab, nil, &dx, &dw)
	require.ErrorIs(t, err, loss.ErrShape)
	requireUntouched(t, before, &dx, &dw)
	require.Equal(t, shSt, sh.State(), "ShardedHead state changed on error")
	require.Equal(t, headSt, head.State(), "Head state changed through a ShardedHead")
}

// TestAdaptiveOverlap: testOverlapRejected's overlapping outputs on every
// adaptive head are ErrOverlap with nothing written (inputs, outputs,
// state, margins), and the in-place dx = x gives the bits of a separate
// dx (from the same state).
func TestAdaptiveOverlap(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(171))
		const n, c, d = 4, 6, 3
		for name, mk := range sortedHeads(adaptiveContractHeads()) {
			h := mk()
			k := max(h.SubCenters, 1)
			rows := c * k
			buf := randMatrix(r, 1, 4*(n*d+rows*d)).Data
			for i := range buf[:n*d] {
				buf[i] *= float32(1 + i%7*9) // spread norms
			}
			view := func(off, rows, cols int) loss.Matrix {
				return loss.Matrix{Rows: rows, Cols: cols, Data: buf[off : off+rows*cols]}
			}
			x, w := view(0, n, d), view(n*d, rows, d)
			free := n*d + rows*d
			labels := randLabels(r, n, c)
			_, err := h.Loss(x, w, labels, nil, nil)
			require.NoError(t, err, name)
			snap := adaSnap(h)
			for _, cs := range []struct {
				name   string
				dx, dw *loss.Matrix
			}{
				{"dw is w", nil, &w},
				{"dx is dw's memory", ptr(view(free, n, d)), ptr(view(free, rows, d))},
				{"dw on x", nil, ptr(view(0, rows, d))},
				{"dx shifted by one over x", ptr(view(1, n, d)), nil},
				{"dw shifted by one over w", nil, ptr(view(n*d+1, rows, d))},
				{"dx ends inside w", ptr(view(n*d-1, n, d)), nil},
			} {
				before := snapshot(cs.dx, cs.dw)
				xb, wb := slices.Clone(x.Data), slices.Clone(w.Data)
				_, err := h.Loss(x, w, labels, cs.dx, cs.dw)
				require.ErrorIs(t, err, loss.ErrOverlap, "%s: %s", name, cs.name)
				requireUntouched(t, before, cs.dx, cs.dw)
				require.Equal(t, xb, x.Data, cs.name)
				require.Equal(t, wb, w.Data, cs.name)
				snap.require(t, h, name+" "+cs.name)
			}
			xc := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(x.Data)}
			sep := filled(n, d, 0)
			h1, h2 := mk(), mk()
			l1, err := h1.Loss(xc, w, labels, &sep, nil)
			require.NoError(t, err)
			l2, err := h2.Loss(xc, w, labels, &xc, nil)
			require.NoError(t, err, name)
			require.Equal(t, math.Float32bits(l1), math.Float32bits(l2), name)
			requireBits(t, sep.Data, xc.Data, name+": in-place dx")
			require.Equal(t, h1.State(), h2.State(), name)
		}
	})
}

// TestAdaptiveNilErrorMeansFinite: testNilErrorMeansFinite's hostile
// magnitudes (norms from 1e-32 to 1e38, scales up to 1e29, Sum,
// Accumulate into large gradients, states far from the batch) on every
// adaptive kind: a nil error comes with a finite loss, gradients, state
// and margins; an error is ErrNonFinite or ErrParam and leaves the outputs,
// the state and the margins untouched.
func TestAdaptiveNilErrorMeansFinite(t *testing.T) {
	forEachLevelAndPath(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(177))
		pow := func(lo, hi float64) float32 { return float32(math.Pow(10, lo+(hi-lo)*r.Float64())) }
		kinds := []func() *loss.MarginSoftmax{
			func() *loss.MarginSoftmax { return loss.AdaFace(pow(0, 29), 0.4, pow(-2, 3), float32(r.Float64())) },
			func() *loss.MarginSoftmax {
				la := pow(-3, 3)
				return loss.MagFace(pow(0, 29), la, la*pow(0.01, 3), 0.45, 0.8, pow(-2, 3))
			},
			func() *loss.MarginSoftmax { return loss.ElasticArcFace(pow(0, 29), 0.5, pow(-3, 0)) },
			func() *loss.MarginSoftmax { return loss.ElasticCosFace(pow(0, 29), 0.35, pow(-3, 0)) },
			func() *loss.MarginSoftmax { return loss.CurricularFace(pow(0, 29), 0.5, float32(r.Float64())) },
		}
		var ok, failed int
		for it := 0; it < 400; it++ {
			h := kinds[it%len(kinds)]()
			h.TileBudget = tileBudget
			if r.Intn(2) == 0 {
				h.Reduction = loss.Sum
			}
			h.Accumulate = r.Intn(3) == 0
			if r.Intn(2) == 0 {
				h.Precision = loss.BFloat16
			}
			if it%5 == 2 || it%5 == 3 {
				h.ElasticPlus = r.Intn(2) == 0
				h.Seed = r.Uint64()
			}
			if r.Intn(3) == 0 {
				h.LabelSmoothing = 0.1
			}
			k := 1 + r.Intn(2)
			h.SubCenters = k
			_ = h.SetState(loss.AdaptiveState{BatchMean: pow(-3, 30), BatchStd: pow(-3, 30), T: float32(2*r.Float64() - 1), Calls: uint64(r.Intn(5))})
			n, c, d := 2+r.Intn(5), 1+r.Intn(7), 1+r.Intn(5)
			x, w := randMatrix(r, n, d), randMatrix(r, c*k, d)
			xs, ws := pow(-32, 38), pow(-32, 38)
			for i := range x.Data {
				x.Data[i] *= xs * pow(-2, 0)
			}
			for i := range w.Data {
				w.Data[i] *= ws * pow(-2, 0)
			}
			labels := randLabels(r, n, c)
			gs := pow(-3, 38)
			dx, dw := filled(n, d, gs), filled(c*k, d, -gs)
			before := snapshot(&dx, &dw)
			snap := adaSnap(h)
			l, err := h.Loss(x, w, labels, &dx, &dw)
			if err != nil {
				require.True(t, errors.Is(err, loss.ErrNonFinite) || errors.Is(err, loss.ErrParam), "%v: %v", h, err)
				requireUntouched(t, before, &dx, &dw)
				snap.require(t, h, h.String())
				failed++
				continue
			}
			ok++
			st := h.State()
			require.True(t, allFinite([]float32{l, st.BatchMean, st.BatchStd, st.T}) && allFinite(dx.Data) && allFinite(dw.Data) && allFinite(h.AppendMargins(nil)),
				"%v accumulate=%v ‖x‖~%g ‖w‖~%g: nil error with loss %v dx %v dw %v state %+v margins %v", h, h.Accumulate, xs, ws, l, dx.Data, dw.Data, st, h.AppendMargins(nil))
		}
		t.Logf("%d calls succeeded with finite outputs, %d rejected", ok, failed)
		require.Greater(t, ok, 80)
		require.Greater(t, failed, 30)
	})
}

// TestAdaptiveEdges: the exact extremes, against the float64 reference
// (lossRef, with its zero-row convention: cos = 0 and no gradient through
// that row's normalisation): x exactly parallel or antiparallel to W_y
// (|t| = 1 up to rounding), x = W_j for a wrong class (a non-target
// cosine of 1), a zero row of x and a zero row of W, all classes tied, at
// s = 64. The loss must be within the conditioning of acos at ±1
// (testEdgeParallelAntiparallel's bound: float32 moves t by ≤ (D+2)·ε,
// θ by ≤ √(2(D+2)ε), every target logit by ≤ s·√(2(D+2)ε), since
// |dφ/dθ| ≤ 1 for these heads' targets, plus the hard negatives' s·3·(D+2)ε);
// the outputs and the state finite.
func TestAdaptiveEdges(t *testing.T) {
	forEachLevelAndPath(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(178))
		tab := newErrTable()
		const n, c, d = 6, 4, 5
		for _, sp := range adaBF16Specs() {
			if sp.k > 1 {
				continue // the sub-center max at |cos| = 1 ties; K is in the other tests
			}
			for _, form := range []string{"parallel", "wrong class", "zero rows", "tied"} {
				at := fmt.Sprintf("%v %s", sp, form)
				w := make([]float64, c*d)
				for i := range w {
					w[i] = float64(float32(r.NormFloat64()))
				}
				labels := []int32{0, 1, 2, 3, 1, 2}
				x := make([]float64, n*d)
				factors := []float64{2, -0.5, 16, -1, 64, -4} // powers of two keep x ∥ W exactly
				for i := range n {
					src := int(labels[i])
					if form == "wrong class" && i%2 == 1 {
						src = (src + 1) % c
					}
					for q := range d {
						x[i*d+q] = factors[i] * w[src*d+q]
					}
				}
				if form == "zero rows" || form == "tied" {
					// off the poles: random rows, norms spread over [1, 64]
					for i := range n {
						for q := range d {
							x[i*d+q] = float64(float32(r.NormFloat64() * factors[i] * factors[i]))
						}
					}
				}
				switch form {
				case "zero rows":
					for q := range d {
						x[1*d+q], w[2*d+q] = 0, 0
					}
				case "tied":
					for j := 1; j < c; j++ {
						copy(w[j*d:(j+1)*d], w[:d])
					}
				}
				var draws []float64
				var d32 []float32
				if sp.kind == "elasticarc" || sp.kind == "elasticcos" {
					for range n {
						d32 = append(d32, float32(sp.m+sp.std*r.NormFloat64()))
					}
					draws = to64(d32)
				}
				h := sp.api()
				h.Margins = d32
				dx, dw := nanMatrix(n, d), nanMatrix(c, d)
				l, err := h.Loss(matOf(n, d, to32(x)), matOf(c, d, to32(w)), labels, &dx, &dw)
				require.NoError(t, err, at)
				applied := false
				if sp.plus {
					// At |t| = 1 the rows' target cosines tie in exact
					// arithmetic, and rounding orders them (differently in
					// float32 and float64): ElasticPlus's assignment is
					// then the rounding's. The reference takes the API's
					// (a permutation of the draws).
					m := h.AppendMargins(nil)
					require.Equal(t, slices.Sorted(slices.Values(d32)), slices.Sorted(slices.Values(m)), "%s: Plus's margins are the draws permuted", at)
					draws, applied = to64(m), true
				}
				ref := sp.lossRef(x, w, labels, n, c, d, draws, applied)
				requireFinite(t, at, "dx", dx.Data)
				requireFinite(t, at, "dw", dw.Data)
				st := h.State()
				require.True(t, allFinite([]float32{l, st.BatchMean, st.BatchStd, st.T}) && allFinite(h.AppendMargins(nil)), "%s: state %+v", at, st)
				scale := 1 / float64(n)
				if sp.sum {
					scale = 1
				}
				bound := float64(n)*scale*sp.s*(math.Sqrt(2*float64(d+2)*eps32)+3*float64(d+2)*eps32) + 4*eps32*float64(d+c+n+8)*math.Abs(ref.loss)
				require.InDeltaf(t, ref.loss, float64(l), bound, "%s: loss", at)
				if form == "zero rows" {
					for q := range d {
						require.Zero(t, dx.Data[1*d+q], "%s: the zero x row's gradient", at)
						require.Zero(t, dw.Data[2*d+q], "%s: the zero W row's gradient", at)
					}
				}
				if form == "tied" || form == "zero rows" {
					// away from the poles the gradients are the reference's,
					// on the scale of the call's largest (the tied rows' dx
					// is 0 in exact arithmetic: Ŵ_j all equal, Σ_j G_ij = 0)
					var gmax float64
					for _, g := range append(slices.Clone(ref.dx), ref.dw...) {
						gmax = math.Max(gmax, math.Abs(g))
					}
					checkGradScaled(t, tab, sp.kind, at, "dx", dx.Data, ref.dx, d, gmax)
					checkGradScaled(t, tab, sp.kind, at, "dw", dw.Data, ref.dw, d, gmax)
				}
			}
		}
	})
}

// TestAdaptiveAccumulate: with Accumulate every gradient is the old
// contents plus what the overwriting call writes (from the same state: the
// state is set back, ElasticFace's Calls with it), with no allocations.
func TestAdaptiveAccumulate(t *testing.T) {
	forEachLevelAndPath(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(179))
		for _, shape := range [][3]int{{5, 7, 3}, {40, 700, 24}} {
			n, c, d := shape[0], shape[1], shape[2]
			x := normedMatrix(r, n, d)
			labels := randLabels(r, n, c)
			for name, mk := range sortedHeads(adaptiveContractHeads()) {
				h := mk()
				k := max(h.SubCenters, 1)
				w := randMatrix(r, c*k, d)
				st0 := h.State()
				dx, dw := filled(n, d, 0), filled(c*k, d, 0)
				l1, err := h.Loss(x, w, labels, &dx, &dw)
				require.NoError(t, err)
				m1 := h.AppendMargins(nil)
				ax, aw := randMatrix(r, n, d), randMatrix(r, c*k, d)
				ox, ow := slices.Clone(ax.Data), slices.Clone(aw.Data)
				h.Accumulate = true
				require.NoError(t, h.SetState(st0))
				l2, err := h.Loss(x, w, labels, &ax, &aw)
				require.NoError(t, err)
				require.Equal(t, l1, l2, name)
				require.Equal(t, m1, h.AppendMargins(nil), name)
				for q := range ax.Data {
					require.Equal(t, ox[q]+dx.Data[q], ax.Data[q], "%s %v: dx[%d]", name, shape, q)
				}
				for q := range aw.Data {
					require.InDelta(t, ox2(ow, dw.Data, q), aw.Data[q], 1e-6*(1+math.Abs(float64(ow[q]))), "%s %v: dw[%d]", name, shape, q)
				}
				require.Zero(t, testing.AllocsPerRun(2, func() { _, _ = h.Loss(x, w, labels, &ax, &aw) }), "%s accumulate allocations", name)
			}
		}
	})
}

// TestAdaptiveKeptTilesBitwise: testKeptTilesBitwise for the adaptive
// heads: reading the kept forward tiles gives bitwise the results of
// recomputing them (and the same state and margins), at shapes with many
// tiles and shards; and a forward-only call allocates nothing.
func TestAdaptiveKeptTilesBitwise(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(180))
		for _, shape := range [][3]int{{37, 1500, 19}, {5, 40, 3}, {300, 700, 8}} {
			n, c, d := shape[0], shape[1], shape[2]
			x := normedMatrix(r, n, d)
			labels := randLabels(r, n, c)
			for name, mk := range sortedHeads(adaptiveContractHeads()) {
				k := max(mk().SubCenters, 1)
				w := randMatrix(r, c*k, d)
				var out [2][]float32
				var st [2]loss.AdaptiveState
				for p, budget := range []int{0, -1} {
					h := mk()
					h.TileBudget = budget
					dx, dw := filled(n, d, 0), filled(c*k, d, 0)
					l, err := h.Loss(x, w, labels, &dx, &dw)
					require.NoError(t, err)
					out[p] = append(append(append([]float32{l}, dx.Data...), dw.Data...), h.AppendMargins(nil)...)
					st[p] = h.State()
					if shape[0] == 37 {
						require.Zero(t, testing.AllocsPerRun(3, func() { _, _ = h.Loss(x, w, labels, nil, nil) }), "%s forward only: allocations", name)
					}
				}
				require.Equal(t, st[0], st[1], name)
				for i := range out[0] {
					require.Equal(t, math.Float32bits(out[1][i]), math.Float32bits(out[0][i]), "%s %v: output %d", name, shape, i)
				}
			}
		}
	})
}

// TestAdaptivePartialFCMatchesHead: testPartialFCMatchesHead and
// testPartialFCRateOne for the adaptive heads: PartialFC gives bitwise its
// Head's loss, dx, dw rows and state on the sampled classes (all of them
// at rate 1), over two calls (the state moving), on both tile paths.
func TestAdaptivePartialFCMatchesHead(t *testing.T) {
	forEachLevelAndPath(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(181))
		n, c, d := 40, 700, 24
		x := normedMatrix(r, n, d)
		labels := randLabels(r, n, c)
		nan := float32(math.NaN())
		for name, mk := range sortedHeads(adaptiveContractHeads()) {
			k := max(mk().SubCenters, 1)
			w := randMatrix(r, c*k, d)
			for _, rate := range []float32{0.3, 1} {
				p := &loss.PartialFC{Head: mk(), SampleRate: rate, Seed: 5}
				ref := mk()
				for call := 0; call < 2; call++ {
					dx, dw := filled(n, d, nan), filled(c*k, d, nan)
					l, err := p.Loss(x, w, labels, &dx, &dw)
					require.NoError(t, err, "%s rate %g", name, rate)
					s := p.Sampled()
					wS, labS := pfcGather(w, s, k), pfcRemap(t, labels, s)
					rdx, rdw := filled(n, d, 0), filled(len(s)*k, d, 0)
					rl, err := ref.Loss(x, wS, labS, &rdx, &rdw)
					require.NoError(t, err)
					at := fmt.Sprintf("%s rate %g call %d", name, rate, call)
					require.Equal(t, math.Float32bits(rl), math.Float32bits(l), "%s: loss", at)
					pfcRequireBits(t, rdx.Data, dx.Data, "%s: dx", at)
					pfcRequireBits(t, rdw.Data, pfcGather(dw, s, k).Data, "%s: dw", at)
					require.Equal(t, ref.State(), p.Head.State(), "%s: state", at)
					pfcRequireBits(t, ref.AppendMargins(nil), p.Head.AppendMargins(nil), "%s: margins", at)
				}
			}
		}
	})
}

// TestAdaptiveCosinesMatchLoss: testCosinesMatchLoss for the adaptive
// heads: LossFromCosinesNorms on x̂·Ŵᵀ (computed in float64, rounded once)
// with the norms ‖x_i‖ gives Loss's loss, and its dcos chained through the
// normalisations (plus dnorms_i·x̂_i, MagFace's radial term) gives Loss's dx
// and dw, to the golden tolerances, from the same state, with sub-centers
// and label smoothing.
func TestAdaptiveCosinesMatchLoss(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(182))
		tab := newErrTable()
		names := slices.Sorted(maps.Keys(adaptiveHeads()))
		for _, shp := range [][3]int{{6, 7, 5}, {40, 300, 33}} {
			n, c, d := shp[0], shp[1], shp[2]
			for _, name := range names {
				for _, k := range []int{1, 3} {
					for _, eps := range []float32{0, 0.1} {
						mk := func() *loss.MarginSoftmax {
							h := adaptiveHeads()[name]()
							h.SubCenters, h.LabelSmoothing, h.TileBudget = k, eps, tileBudget
							h.Seed = 11
							return h
						}
						at := fmt.Sprintf("%s/k%d/ε%g %dx%dx%d", name, k, eps, n, c, d)
						rows := c * k
						x := to64(normedMatrix(r, n, d).Data)
						w := to64(randMatrix(r, rows, d).Data)
						labels := randLabels(r, n, c)
						norms := make([]float32, n)
						for i := range n {
							norms[i] = float32(math.Sqrt(dot(x[i*d:(i+1)*d], x[i*d:(i+1)*d])))
						}
						cos := cosinesOf(x, w, n, rows, d)
						hc, hl := mk(), mk()
						dcos, dn := nanMatrix(n, rows), make([]float32, n)
						lc, err := hc.LossFromCosinesNorms(matOf(n, rows, cos), norms, labels, &dcos, dn)
						require.NoError(t, err, at)
						dx, dw := nanMatrix(n, d), nanMatrix(rows, d)
						ll, err := hl.Loss(matOf(n, d, to32(x)), matOf(rows, d, to32(w)), labels, &dx, &dw)
						require.NoError(t, err, at)
						checkLoss(t, tab, "vs-loss", at, lc, float64(ll))
						cdx, cdw := chainCosines(x, w, dcos.Data, n, rows, d)
						for i := range n {
							for q := range d {
								cdx[i*d+q] += float64(dn[i]) * x[i*d+q] / float64(norms[i])
							}
						}
						checkGrad(t, tab, "vs-loss", at, "dx", dx.Data, cdx, d)
						checkGrad(t, tab, "vs-loss", at, "dw", dw.Data, cdw, d)
						require.Equal(t, hl.State().Calls, hc.State().Calls, at)
						// The state and margins within adaRefState's bounds
						// of each other (at D+1: the cosine entry's norms
						// and cosines carry one more rounding, float64 to
						// float32, than the float32 reference it assumes).
						ml := hl.AppendMargins(nil)
						adaRefState(t, at, adaHeadSpecs[name], hc.State(), hc.AppendMargins(nil),
							adaOut64{state: hl.State(), margins: to64(ml)}, x, n, d, d+1)
					}
				}
			}
		}
		tab.log(t, "LossFromCosinesNorms vs Loss")
	})
}

// adaHeadSpecs are adaptiveHeads' parameters, for adaRefState's bounds.
var adaHeadSpecs = map[string]adaSpec{
	"AdaFace":        {kind: "adaface", h: f32(0.333), alpha: f32(0.01)},
	"MagFace":        {kind: "magface", la: 10, ua: 110, lm: f32(0.45), um: f32(0.8)},
	"ElasticArc":     {kind: "elasticarc"},
	"ElasticCos":     {kind: "elasticcos"},
	"ElasticArcPlus": {kind: "elasticarc", plus: true},
	"Curricular":     {kind: "curricular", alpha: f32(0.01)},
}

// TestAdaptiveShardedDeterministic: a 3-shard ShardedHead step (Prepare,
// the SUM of Targets, Forward, the merge, Backward) of every adaptive head,
// in Float32 and BFloat16, with and without sampling, gives the same bits
// (loss, dx, dw, every shard's state) for GOMAXPROCS 1, 2 and 3; and
// PartialFC over an adaptive head allocates nothing in steady state.
func TestAdaptiveShardedDeterministic(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(183))
		n, c, d := 70, 700, 17
		x := normedMatrix(r, n, d)
		labels := randLabels(r, n, c)
		for name, mk := range sortedHeads(adaptiveContractHeads()) {
			k := max(mk().SubCenters, 1)
			w := randMatrix(r, c*k, d)
			for _, prec := range []loss.Precision{loss.Float32, loss.BFloat16} {
				for _, rate := range []float32{0, 0.5} {
					if rate != 0 && mk().LabelSmoothing != 0 {
						continue // a sampling ShardedHead refuses smoothing (ErrParam: it needs every class)
					}
					at := fmt.Sprintf("%s %v rate %g", name, prec, rate)
					var ref []float32
					var refSt loss.AdaptiveState
					for _, procs := range []int{1, 2, 3} {
						h := mk()
						h.Precision = prec
						shards := []*loss.ShardedHead{{Head: h, SampleRate: rate, Seed: 4}, {Head: h, SampleRate: rate, Seed: 5}, {Head: h, SampleRate: rate, Seed: 6}}
						old := runtime.GOMAXPROCS(procs)
						l, dx, dw, err := shardedStep(t, shards, x, w, labels, k)
						runtime.GOMAXPROCS(old)
						require.NoError(t, err, at)
						for q := range shards {
							require.Equal(t, shards[0].State(), shards[q].State(), "%s: shard %d state", at, q)
						}
						got := append(append([]float32{l}, dx...), dw...)
						if ref == nil {
							ref, refSt = got, shards[0].State()
							continue
						}
						require.Equal(t, refSt, shards[0].State(), "%s: GOMAXPROCS=%d state", at, procs)
						for q := range got {
							if math.Float32bits(got[q]) != math.Float32bits(ref[q]) {
								t.Fatalf("%s: GOMAXPROCS=%d differs from 1 at output %d: %v vs %v", at, procs, q, got[q], ref[q])
							}
						}
					}
				}
			}
			h := mk()
			p := &loss.PartialFC{Head: h, SampleRate: 0.2, Seed: 1}
			dx, dw := filled(n, d, 0), filled(c*k, d, 0)
			_, err := p.Loss(x, w, labels, &dx, &dw)
			require.NoError(t, err, name)
			require.Zero(t, testing.AllocsPerRun(2, func() { _, _ = p.Loss(x, w, labels, &dx, &dw) }), "%s: PartialFC allocations", name)
			require.Zero(t, testing.AllocsPerRun(2, func() { _, _ = p.Loss(x, w, labels, nil, nil) }), "%s: PartialFC forward-only allocations", name)
		}
	})
}
