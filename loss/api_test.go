package loss_test

import (
	"errors"
	"math"
	"math/rand"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

func randMatrix(r *rand.Rand, rows, cols int) loss.Matrix {
	m := loss.Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
	for i := range m.Data {
		m.Data[i] = float32(r.NormFloat64())
	}
	return m
}

func randLabels(r *rand.Rand, n, c int) []int32 {
	l := make([]int32, n)
	for i := range l {
		l[i] = int32(r.Intn(c))
	}
	return l
}

func filled(rows, cols int, v float32) loss.Matrix {
	m := loss.Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
	for i := range m.Data {
		m.Data[i] = v
	}
	return m
}

// gradsOr42 returns dx and dw, each replaced when nil by a fresh matrix of
// x's or w's shape filled with 42: the outputs an error case must leave as
// they were.
func gradsOr42(dx, dw *loss.Matrix, x, w loss.Matrix) (*loss.Matrix, *loss.Matrix) {
	if dx == nil {
		m := filled(x.Rows, x.Cols, 42)
		dx = &m
	}
	if dw == nil {
		m := filled(w.Rows, w.Cols, 42)
		dw = &m
	}
	return dx, dw
}

func allHeads() map[string]func() *loss.MarginSoftmax {
	budget := func(h *loss.MarginSoftmax) *loss.MarginSoftmax { h.TileBudget = tileBudget; return h }
	return map[string]func() *loss.MarginSoftmax{
		"arcface":  func() *loss.MarginSoftmax { return budget(loss.ArcFace(64, 0.5)) },
		"arceasy":  func() *loss.MarginSoftmax { h := loss.ArcFace(30, 0.4); h.EasyMargin = true; return budget(h) },
		"arcdet":   func() *loss.MarginSoftmax { h := loss.ArcFace(30, 0.4); h.DetachMargin = true; return budget(h) },
		"cosface":  func() *loss.MarginSoftmax { return budget(loss.CosFace(30, 0.35)) },
		"combined": func() *loss.MarginSoftmax { return budget(loss.CombinedMargin(30, 0.9, 0.4, 0.15)) },
		"sphere":   func() *loss.MarginSoftmax { return budget(loss.SphereFace(4, 5)) },
		"large":    func() *loss.MarginSoftmax { return budget(loss.LargeMargin(3, 2)) },
	}
}

// TestMarginDeterministicAcrossGOMAXPROCS runs a shape with many tiles and
// shards at several worker counts and requires bitwise-equal outputs.
func TestMarginDeterministicAcrossGOMAXPROCS(t *testing.T) {
	forEachLevelAndPath(t, testMarginDeterministicAcrossGOMAXPROCS)
}

func testMarginDeterministicAcrossGOMAXPROCS(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	n, c, d := 70, 2100, 33 // 70 rows: two row chunks; 2100 classes: 16 shards of tiles
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	for name, mk := range allHeads() {
		var ref []float32
		for _, procs := range []int{1, 2, 3, 8} {
			old := runtime.GOMAXPROCS(procs)
			dx, dw := filled(n, d, 0), filled(c, d, 0)
			l, err := mk().Loss(x, w, labels, &dx, &dw)
			runtime.GOMAXPROCS(old)
			require.NoError(t, err)
			got := append(append([]float32{l}, dx.Data...), dw.Data...)
			if ref == nil {
				ref = got
				continue
			}
			for k := range got {
				if math.Float32bits(got[k]) != math.Float32bits(ref[k]) {
					t.Fatalf("%s: GOMAXPROCS=%d differs from 1 at output %d: %v vs %v", name, procs, k, got[k], ref[k])
				}
			}
		}
	}
}

func TestFocalCenterDeterministic(t *testing.T) { forEachLevel(t, testFocalCenterDeterministic) }

func testFocalCenterDeterministic(t *testing.T) {
	r := rand.New(rand.NewSource(8))
	n, c, d := 200, 13, 9
	logits, targets := randMatrix(r, n, c), randMatrix(r, n, c)
	for i := range targets.Data {
		targets.Data[i] = float32(math.Abs(float64(targets.Data[i]))) / 4
		targets.Data[i] = min(targets.Data[i], 1)
	}
	labels := randLabels(r, n, c)
	x := randMatrix(r, n, d)
	centers := randMatrix(r, c, d)
	run := func() []float32 {
		g1, g2, g3 := filled(n, c, 0), filled(n, c, 0), filled(n, d, 0)
		a, err := loss.Focal{Gamma: 2}.Softmax(logits, labels, &g1)
		require.NoError(t, err)
		b, err := loss.Focal{Gamma: 1.5, Alpha: 0.25}.Sigmoid(logits, targets, &g2)
		require.NoError(t, err)
		ct := &loss.Center{Centers: loss.Matrix{Rows: c, Cols: d, Data: slices.Clone(centers.Data)}, Alpha: 0.5}
		cl, err := ct.Loss(x, labels, &g3)
		require.NoError(t, err)
		require.NoError(t, ct.Update(x, labels))
		out := []float32{a, b, cl}
		for _, s := range [][]float32{g1.Data, g2.Data, g3.Data, ct.Centers.Data} {
			out = append(out, s...)
		}
		return out
	}
	old := runtime.GOMAXPROCS(1)
	ref := run()
	for _, p := range []int{2, 5} {
		runtime.GOMAXPROCS(p)
		got := run()
		for k := range got {
			require.Equal(t, math.Float32bits(ref[k]), math.Float32bits(got[k]), "GOMAXPROCS=%d output %d", p, k)
		}
	}
	runtime.GOMAXPROCS(old)
}

// TestNoAllocs asserts zero heap allocations per steady-state call.
func TestNoAllocs(t *testing.T) { forEachLevel(t, testNoAllocs) }

func testNoAllocs(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	n, c, d := 64, 1000, 32
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	dx, dw := filled(n, d, 0), filled(c, d, 0)
	for name, mk := range allHeads() {
		h := mk()
		_, err := h.Loss(x, w, labels, &dx, &dw)
		require.NoError(t, err)
		a := testing.AllocsPerRun(20, func() { _, _ = h.Loss(x, w, labels, &dx, &dw) })
		require.Zero(t, a, "%s: allocations per call", name)
		a = testing.AllocsPerRun(20, func() { _, _ = h.Loss(x, w, labels, nil, nil) })
		require.Zero(t, a, "%s forward only: allocations per call", name)
	}
	logits := randMatrix(r, n, c)
	targets := filled(n, c, 0.5)
	dl := filled(n, c, 0)
	f := loss.Focal{Gamma: 2, Alpha: 0.25}
	_, _ = f.Softmax(logits, labels, &dl)
	_, _ = f.Sigmoid(logits, targets, &dl)
	if !raceEnabled { // Focal's scratch is pooled; see raceEnabled
		require.Zero(t, testing.AllocsPerRun(20, func() { _, _ = f.Softmax(logits, labels, &dl) }), "focal softmax")
		require.Zero(t, testing.AllocsPerRun(20, func() { _, _ = f.Sigmoid(logits, targets, &dl) }), "focal sigmoid")
	}
	ct := &loss.Center{Centers: randMatrix(r, c, d), Alpha: 0.1}
	_, _ = ct.Loss(x, labels, &dx)
	_ = ct.Update(x, labels)
	require.Zero(t, testing.AllocsPerRun(20, func() { _, _ = ct.Loss(x, labels, &dx) }), "center loss")
	require.Zero(t, testing.AllocsPerRun(20, func() { _ = ct.Update(x, labels) }), "center update")
}

// errCase is one bad call; every output must stay untouched.
type errCase struct {
	name string
	want error
	x, w loss.Matrix
	lab  []int32
	dx   *loss.Matrix
	dw   *loss.Matrix
	head *loss.MarginSoftmax
}

func TestMarginErrors(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	n, c, d := 4, 5, 3
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	lab := randLabels(r, n, c)
	nanX := randMatrix(r, n, d)
	nanX.Data[2*d+1] = float32(math.NaN())
	infW := randMatrix(r, c, d)
	infW.Data[4*d] = float32(math.Inf(-1))
	arc := loss.ArcFace(30, 0.5)
	cases := []errCase{
		{"x data length", loss.ErrShape, loss.Matrix{Rows: n, Cols: d, Data: x.Data[:n*d-1]}, w, lab, nil, nil, arc},
		{"w data length", loss.ErrShape, x, loss.Matrix{Rows: c, Cols: d, Data: w.Data[:2]}, lab, nil, nil, arc},
		{"D mismatch", loss.ErrShape, randMatrix(r, n, d+1), w, lab, nil, nil, arc},
		{"no classes", loss.ErrShape, x, loss.Matrix{Rows: 0, Cols: d}, lab, nil, nil, arc},
		{"dx shape", loss.ErrShape, x, w, lab, &loss.Matrix{Rows: n, Cols: d + 1, Data: make([]float32, n*(d+1))}, nil, arc},
		{"dw shape", loss.ErrShape, x, w, lab, nil, &loss.Matrix{Rows: c - 1, Cols: d, Data: make([]float32, (c-1)*d)}, arc},
		{"dw data length", loss.ErrShape, x, w, lab, nil, &loss.Matrix{Rows: c, Cols: d, Data: make([]float32, 1)}, arc},
		{"label high", loss.ErrLabel, x, w, []int32{0, 1, int32(c), 0}, nil, nil, arc},
		{"label negative", loss.ErrLabel, x, w, []int32{0, -1, 0, 0}, nil, nil, arc},
		{"labels short", loss.ErrLabel, x, w, lab[:n-1], nil, nil, arc},
		{"NaN in x", loss.ErrNonFinite, nanX, w, lab, nil, nil, arc},
		{"Inf in w", loss.ErrNonFinite, x, infW, lab, nil, nil, loss.LargeMargin(2, 0)},
		{"s zero", loss.ErrParam, x, w, lab, nil, nil, loss.ArcFace(0, 0.5)},
		{"s negative", loss.ErrParam, x, w, lab, nil, nil, loss.CosFace(-1, 0.3)},
		{"s NaN", loss.ErrParam, x, w, lab, nil, nil, loss.CombinedMargin(float32(math.NaN()), 1, 0.3, 0.2)},
		{"arc m ≥ π/2", loss.ErrParam, x, w, lab, nil, nil, loss.ArcFace(30, 1.6)},
		{"arc m < 0", loss.ErrParam, x, w, lab, nil, nil, loss.ArcFace(30, -0.1)},
		{"cos m < 0", loss.ErrParam, x, w, lab, nil, nil, loss.CosFace(30, -0.1)},
		{"combined m1 0", loss.ErrParam, x, w, lab, nil, nil, loss.CombinedMargin(30, 0, 0.3, 0.2)},
		{"sphere m 0", loss.ErrParam, x, w, lab, nil, nil, loss.SphereFace(0, 1)},
		{"sphere m 9", loss.ErrParam, x, w, lab, nil, nil, loss.SphereFace(9, 1)},
		{"large λ < 0", loss.ErrParam, x, w, lab, nil, nil, loss.LargeMargin(2, -1)},
		{"zero-value head", loss.ErrParam, x, w, lab, nil, nil, &loss.MarginSoftmax{}},
		{"bad reduction", loss.ErrParam, x, w, lab, nil, nil, &[]loss.MarginSoftmax{*loss.ArcFace(30, 0.5)}[0]},
	}
	cases[len(cases)-1].head.Reduction = 7
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dx, dw := gradsOr42(tc.dx, tc.dw, tc.x, tc.w)
			dxBefore, dwBefore := slices.Clone(dx.Data), slices.Clone(dw.Data)
			var l float32
			var err error
			require.NotPanics(t, func() { l, err = tc.head.Loss(tc.x, tc.w, tc.lab, dx, dw) })
			require.ErrorIs(t, err, tc.want)
			require.NotEmpty(t, err.Error())
			require.Zero(t, l)
			require.Equal(t, dxBefore, dx.Data, "dx touched")
			require.Equal(t, dwBefore, dw.Data, "dw touched")
		})
	}
}

func TestErrorsNameTheRow(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	x, w := randMatrix(r, 6, 4), randMatrix(r, 3, 4)
	x.Data[3*4+2] = float32(math.Inf(1))
	_, err := loss.ArcFace(30, 0.5).Loss(x, w, []int32{0, 1, 2, 0, 1, 2}, nil, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.Contains(t, err.Error(), "x row 3")
}

func TestFocalCenterErrors(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	logits := randMatrix(r, 3, 4)
	targets := filled(3, 4, 0.5)
	lab := []int32{0, 3, 1}
	check := func(want error, f func(g *loss.Matrix) error, rows, cols int) {
		t.Helper()
		g := filled(rows, cols, 7)
		before := slices.Clone(g.Data)
		var err error
		require.NotPanics(t, func() { err = f(&g) })
		require.ErrorIs(t, err, want)
		require.Equal(t, before, g.Data)
	}
	soft := func(f loss.Focal, lg loss.Matrix, lb []int32) func(*loss.Matrix) error {
		return func(g *loss.Matrix) error { _, err := f.Softmax(lg, lb, g); return err }
	}
	sig := func(f loss.Focal, lg, tg loss.Matrix) func(*loss.Matrix) error {
		return func(g *loss.Matrix) error { _, err := f.Sigmoid(lg, tg, g); return err }
	}
	nanL := randMatrix(r, 3, 4)
	nanL.Data[5] = float32(math.NaN())
	check(loss.ErrParam, soft(loss.Focal{Gamma: -1}, logits, lab), 3, 4)
	check(loss.ErrLabel, soft(loss.Focal{Gamma: 2}, logits, []int32{0, 4, 1}), 3, 4)
	check(loss.ErrLabel, soft(loss.Focal{Gamma: 2}, logits, []int32{0}), 3, 4)
	check(loss.ErrNonFinite, soft(loss.Focal{Gamma: 2}, nanL, lab), 3, 4)
	check(loss.ErrShape, soft(loss.Focal{Gamma: 2}, logits, lab), 3, 5)
	check(loss.ErrShape, sig(loss.Focal{Gamma: 2, Alpha: 0.25}, logits, filled(3, 3, 0.5)), 3, 4)
	check(loss.ErrParam, sig(loss.Focal{Gamma: 2, Alpha: 1.5}, logits, targets), 3, 4)
	check(loss.ErrLabel, sig(loss.Focal{Gamma: 2, Alpha: 0.25}, logits, filled(3, 4, 1.5)), 3, 4)
	check(loss.ErrNonFinite, sig(loss.Focal{Gamma: 2, Alpha: 0.25}, nanL, targets), 3, 4)

	centers := randMatrix(r, 4, 2)
	x := randMatrix(r, 3, 2)
	for _, alpha := range []float32{0, -0.5, 1.5, float32(math.NaN())} {
		ct := &loss.Center{Centers: loss.Matrix{Rows: 4, Cols: 2, Data: slices.Clone(centers.Data)}, Alpha: alpha}
		err := ct.Update(x, lab)
		require.ErrorIs(t, err, loss.ErrParam, "α %v", alpha)
		require.Equal(t, centers.Data, ct.Centers.Data)
	}
	ct := &loss.Center{Centers: loss.Matrix{Rows: 4, Cols: 2, Data: slices.Clone(centers.Data)}, Alpha: 0.5}
	require.ErrorIs(t, ct.Update(x, []int32{0, 9, 1}), loss.ErrLabel)
	require.ErrorIs(t, ct.Update(randMatrix(r, 3, 3), lab), loss.ErrShape)
	require.Equal(t, centers.Data, ct.Centers.Data)
	check(loss.ErrShape, func(g *loss.Matrix) error { _, err := ct.Loss(x, lab, g); return err }, 3, 3)
	check(loss.ErrNonFinite, func(g *loss.Matrix) error {
		bad := loss.Matrix{Rows: 3, Cols: 2, Data: []float32{1, 2, 3, float32(math.Inf(1)), 5, 6}}
		_, err := ct.Loss(bad, lab, g)
		return err
	}, 3, 2)
}

func TestEmptyBatch(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	w := randMatrix(r, 5, 3)
	dx := loss.Matrix{Rows: 0, Cols: 3}
	dw := filled(5, 3, 9)
	l, err := loss.ArcFace(30, 0.5).Loss(loss.Matrix{Rows: 0, Cols: 3}, w, nil, &dx, &dw)
	require.NoError(t, err)
	require.Zero(t, l)
	require.Equal(t, make([]float32, 15), dw.Data)
	// shapes are still validated
	_, err = loss.ArcFace(30, 0.5).Loss(loss.Matrix{Rows: 0, Cols: 3}, w, nil, nil, &loss.Matrix{Rows: 4, Cols: 3, Data: make([]float32, 12)})
	require.ErrorIs(t, err, loss.ErrShape)

	dl := loss.Matrix{Rows: 0, Cols: 4}
	l, err = loss.Focal{Gamma: 2}.Softmax(loss.Matrix{Rows: 0, Cols: 4}, nil, &dl)
	require.NoError(t, err)
	require.Zero(t, l)
	l, err = loss.Focal{Gamma: 2}.Sigmoid(loss.Matrix{Rows: 0, Cols: 4}, loss.Matrix{Rows: 0, Cols: 4}, &dl)
	require.NoError(t, err)
	require.Zero(t, l)
	ct := &loss.Center{Centers: randMatrix(r, 4, 3), Alpha: 0.5}
	before := slices.Clone(ct.Centers.Data)
	l, err = ct.Loss(loss.Matrix{Rows: 0, Cols: 3}, nil, nil)
	require.NoError(t, err)
	require.Zero(t, l)
	require.NoError(t, ct.Update(loss.Matrix{Rows: 0, Cols: 3}, nil))
	require.Equal(t, before, ct.Centers.Data)
}

func TestErrorsAreDistinct(t *testing.T) {
	all := []error{loss.ErrShape, loss.ErrLabel, loss.ErrNonFinite, loss.ErrParam}
	for i, a := range all {
		for j, b := range all {
			require.Equal(t, i == j, errors.Is(a, b))
		}
	}
}

// TestCenterUpdateSimultaneous checks the rule on a hand-worked case: two
// rows of class 0 and one of class 2; class 1 untouched.
func TestCenterUpdateSimultaneous(t *testing.T) {
	ct := &loss.Center{Centers: loss.Matrix{Rows: 3, Cols: 1, Data: []float32{1, 5, -2}}, Alpha: 0.5}
	x := loss.Matrix{Rows: 3, Cols: 1, Data: []float32{3, 2, 0}}
	require.NoError(t, ct.Update(x, []int32{0, 2, 0}))
	// class 0: n=2, Σ(c−x) = (1−3)+(1−0) = −1 → 1 − 0.5·(−1)/3 = 1.1666…
	// class 2: n=1, Σ(c−x) = −2−2 = −4 → −2 − 0.5·(−4)/2 = −1
	require.InDelta(t, 7.0/6, ct.Centers.Data[0], 1e-6)
	require.Equal(t, float32(5), ct.Centers.Data[1])
	require.InDelta(t, -1, ct.Centers.Data[2], 1e-6)
}

func TestBackendName(t *testing.T) {
	require.Contains(t, []string{"generic", "avx2", "avx512", "neon"}, loss.Backend())
}

// TestBackendExpected pins the level when CI says which one this machine
// (or emulator) must select, e.g. MARGINLOSS_EXPECT_BACKEND=avx2 under
// qemu-x86_64 -cpu Haswell.
func TestBackendExpected(t *testing.T) {
	want := os.Getenv("MARGINLOSS_EXPECT_BACKEND")
	if want == "" {
		t.Skip("MARGINLOSS_EXPECT_BACKEND not set")
	}
	require.Equal(t, want, loss.Backend())
}
