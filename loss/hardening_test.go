package loss_test

// Regression tests for the hardening issue: each one fails on the code
// before it (NaN/Inf with a nil error, unbounded work, races, overlaps
// accepted, caller memory retained).

import (
	"errors"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

func allFinite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// TestFocalSmallGammaConfident: 0 < γ < 1 with a subnormal q = 1 − p_t
// made q^(γ−1) overflow although the gradient is finite.
func TestFocalSmallGammaConfident(t *testing.T) { forEachLevel(t, testFocalSmallGammaConfident) }

func testFocalSmallGammaConfident(t *testing.T) {
	for _, g := range []float32{1e-4, 0.01, 0.049, 0.3, 0.99} {
		f := loss.Focal{Gamma: g}
		for lr := float32(-680); lr >= -760; lr -= 2.5 {
			logits := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{0, lr}}
			d := loss.Matrix{Rows: 1, Cols: 2, Data: make([]float32, 2)}
			l, err := f.Softmax(logits, []int32{0}, &d)
			require.NoError(t, err)
			require.True(t, allFinite(d.Data) && allFinite([]float32{l}), "γ=%g log r=%g: loss %v grad %v", g, lr, l, d.Data)
			require.True(t, d.Data[0] <= 0 && d.Data[1] >= 0, "γ=%g log r=%g: signs of %v", g, lr, d.Data)

			for _, tg := range []float32{0, 1, 0.3} {
				for _, z := range []float32{lr, -lr} {
					lm := loss.Matrix{Rows: 1, Cols: 1, Data: []float32{z}}
					tm := loss.Matrix{Rows: 1, Cols: 1, Data: []float32{tg}}
					ds := loss.Matrix{Rows: 1, Cols: 1, Data: make([]float32, 1)}
					l, err := f.Sigmoid(lm, tm, &ds)
					require.NoError(t, err)
					require.True(t, allFinite(ds.Data) && allFinite([]float32{l}), "sigmoid γ=%g z=%g t=%g: loss %v grad %v", g, z, tg, l, ds.Data)
				}
			}
		}
	}
	// The cases, and the gradient's exact value where it is
	// representable: a confident row with q = σ(log r), log r = −30.
	d := loss.Matrix{Rows: 1, Cols: 2, Data: make([]float32, 2)}
	_, err := loss.Focal{Gamma: 0.01}.Softmax(loss.Matrix{Rows: 1, Cols: 2, Data: []float32{0, -720}}, []int32{0}, &d)
	require.NoError(t, err)
	require.True(t, allFinite(d.Data), "%v", d.Data)
	ds := loss.Matrix{Rows: 1, Cols: 1, Data: make([]float32, 1)}
	_, err = loss.Focal{Gamma: 0.01}.Sigmoid(loss.Matrix{Rows: 1, Cols: 1, Data: []float32{-720}}, loss.Matrix{Rows: 1, Cols: 1, Data: []float32{0}}, &ds)
	require.NoError(t, err)
	require.True(t, allFinite(ds.Data), "%v", ds.Data)

	_, err = loss.Focal{Gamma: 0.5}.Softmax(loss.Matrix{Rows: 1, Cols: 2, Data: []float32{0, -30}}, []int32{0}, &d)
	require.NoError(t, err)
	q := math.Exp(-30) / (1 + math.Exp(-30))
	py := 1 - q
	F := math.Pow(q, 0.5) - 0.5*math.Pow(q, -0.5)*py*math.Log1p(-q)
	require.InEpsilon(t, -F*q, d.Data[0], 1e-5)
	require.InEpsilon(t, F*q, d.Data[1], 1e-5)
}

// TestWorkBoundedByElements: a batch with no elements but 2⁴⁰ rows used to
// be walked row by row (hours).
func TestWorkBoundedByElements(t *testing.T) {
	huge := math.MaxInt / 4096 // 2⁵¹ rows on 64-bit, 2¹⁹ on 32-bit
	empty := loss.Matrix{Rows: huge, Cols: 0}
	done := make(chan error, 8)
	go func() {
		_, err := loss.Focal{Gamma: 2}.Sigmoid(empty, empty, nil)
		done <- err
		d := empty
		_, err = loss.Focal{Gamma: 2}.Sigmoid(empty, empty, &d)
		done <- err
		_, err = loss.Focal{Gamma: 2}.Softmax(empty, nil, nil)
		done <- err
		ct := &loss.Center{Centers: filled(2, 3, 0), Alpha: 0.5}
		_, err = ct.Loss(empty, nil, nil)
		done <- err
		done <- ct.Update(empty, nil)
		_, err = loss.ArcFace(30, 0.5).Loss(empty, filled(2, 3, 1), nil, nil, nil)
		done <- err
		ct2 := &loss.Center{Centers: loss.Matrix{Rows: huge, Cols: 0}, Alpha: 0.5}
		_, err = ct2.Loss(loss.Matrix{}, nil, nil)
		done <- err
		_, err = loss.ArcFace(30, 0.5).Loss(loss.Matrix{}, loss.Matrix{Rows: huge, Cols: 0}, nil, nil, nil)
		done <- err
	}()
	want := []error{nil, nil, loss.ErrShape, loss.ErrShape, loss.ErrShape, loss.ErrShape, loss.ErrShape, loss.ErrShape}
	for k, w := range want {
		select {
		case err := <-done:
			if w == nil {
				require.NoError(t, err, "call %d", k)
			} else {
				require.ErrorIs(t, err, w, "call %d", k)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("call %d still running after 20 s: work is not bounded by the number of elements", k)
		}
	}
}

// TestConcurrentStringSetLambda is a data race under -race when String
// reads λ without the lock.
func TestConcurrentStringSetLambda(t *testing.T) {
	h := loss.SphereFace(4, 100)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			h.SetLambda(float32(i))
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			require.True(t, strings.HasPrefix(h.String(), "SphereFace(m=4, λ="))
		}
	}()
	wg.Wait()
}

// untouched records outputs and checks that a failed call left them as
// they were.
func snapshot(ms ...*loss.Matrix) [][]float32 {
	var s [][]float32
	for _, m := range ms {
		if m != nil {
			s = append(s, slices.Clone(m.Data))
		}
	}
	return s
}

func requireUntouched(t *testing.T, before [][]float32, ms ...*loss.Matrix) {
	t.Helper()
	k := 0
	for _, m := range ms {
		if m != nil {
			for i := range m.Data {
				require.Equal(t, math.Float32bits(before[k][i]), math.Float32bits(m.Data[i]), "output %d element %d changed on error", k, i)
			}
			k++
		}
	}
}

// TestFiniteInputsNonFiniteOutputs: the five cases were accepted
// and returned NaN or Inf. Each is now an error, with outputs untouched.
func TestFiniteInputsNonFiniteOutputs(t *testing.T) {
	forEachLevelAndPath(t, testFiniteInputsNonFiniteOutputs)
}

func testFiniteInputsNonFiniteOutputs(t *testing.T) {
	call := func(h *loss.MarginSoftmax, x, w loss.Matrix, labels []int32) error {
		dx, dw := filled(x.Rows, x.Cols, 7), filled(w.Rows, w.Cols, 7)
		before := snapshot(&dx, &dw)
		_, err := h.Loss(x, w, labels, &dx, &dw)
		requireUntouched(t, before, &dx, &dw)
		return err
	}
	big := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{2e19, 0, 0, 2e19}}
	require.ErrorIs(t, call(loss.LargeMargin(1, 0), big, big, []int32{0, 1}), loss.ErrNonFinite)
	x := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{-1e38, 0}}
	w := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 0, 0, 1}}
	require.ErrorIs(t, call(loss.SphereFace(4, 0), x, w, []int32{0}), loss.ErrNonFinite)
	unit := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{-1, 0}} // cos θ = −1 against class 0
	require.ErrorIs(t, call(loss.CosFace(64, 1e37), unit, w, []int32{0}), loss.ErrParam)
	require.ErrorIs(t, call(loss.CombinedMargin(64, 1, 0.3, 1e37), unit, w, []int32{0}), loss.ErrParam)
	require.ErrorIs(t, call(loss.ArcFace(3e38, 0.5), unit, w, []int32{0}), loss.ErrParam)
	require.ErrorIs(t, loss.CosFace(64, 1e37).Validate(), loss.ErrParam)

	ct := &loss.Center{Centers: filled(1, 2, 0), Alpha: 0.5}
	dx := filled(1, 2, 3)
	before := snapshot(&dx)
	_, err := ct.Loss(filled(1, 2, 1e20), []int32{0}, &dx)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	requireUntouched(t, before, &dx)
	// opposite extremes: x − c overflows float32 although both are finite
	ct = &loss.Center{Centers: filled(1, 2, -3e38), Alpha: 0.5}
	_, err = ct.Loss(filled(1, 2, 3e38), []int32{0}, &dx)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	requireUntouched(t, before, &dx)
	// and Update stays finite there (a convex combination)
	require.NoError(t, ct.Update(filled(1, 2, 3e38), []int32{0}))
	require.True(t, allFinite(ct.Centers.Data), "%v", ct.Centers.Data)
}

// TestNilErrorMeansFinite draws hostile magnitudes (norms from 1e-35 to
// 1e38, large scales, Sum reductions, accumulation into large gradients)
// and requires of every call: a nil error comes with a finite loss and
// finite gradients; an error leaves the outputs untouched.
func TestNilErrorMeansFinite(t *testing.T) { forEachLevelAndPath(t, testNilErrorMeansFinite) }

func testNilErrorMeansFinite(t *testing.T) {
	r := rand.New(rand.NewSource(77))
	pow := func(lo, hi float64) float32 { return float32(math.Pow(10, lo+(hi-lo)*r.Float64())) }
	heads := []func() *loss.MarginSoftmax{
		func() *loss.MarginSoftmax { return loss.ArcFace(pow(0, 29), 0.5) },
		func() *loss.MarginSoftmax { return loss.CosFace(pow(0, 29), 0.35) },
		func() *loss.MarginSoftmax { return loss.CombinedMargin(pow(0, 28), 8, 0.3, 0.2) },
		func() *loss.MarginSoftmax { return loss.SphereFace(1+r.Intn(8), pow(-3, 3)) },
		func() *loss.MarginSoftmax { return loss.LargeMargin(1+r.Intn(8), pow(-3, 3)) },
	}
	var ok, failed int
	for it := 0; it < 300; it++ {
		h := heads[it%len(heads)]()
		if r.Intn(2) == 0 {
			h.Reduction = loss.Sum
		}
		h.Accumulate = r.Intn(3) == 0
		n, c, d := 1+r.Intn(6), 1+r.Intn(7), 1+r.Intn(5)
		x, w := randMatrix(r, n, d), randMatrix(r, c, d)
		xs, ws := pow(-32, 38), pow(-32, 38)
		for i := range x.Data {
			x.Data[i] *= xs * pow(-2, 0)
		}
		for i := range w.Data {
			w.Data[i] *= ws * pow(-2, 0)
		}
		labels := randLabels(r, n, c)
		gs := pow(-3, 38)
		dx, dw := filled(n, d, gs), filled(c, d, -gs)
		before := snapshot(&dx, &dw)
		l, err := h.Loss(x, w, labels, &dx, &dw)
		if err != nil {
			require.True(t, errors.Is(err, loss.ErrNonFinite) || errors.Is(err, loss.ErrParam), "%v: %v", h, err)
			requireUntouched(t, before, &dx, &dw)
			failed++
			continue
		}
		ok++
		require.True(t, allFinite([]float32{l}) && allFinite(dx.Data) && allFinite(dw.Data),
			"%v accumulate=%v ‖x‖~%g ‖w‖~%g: nil error with loss %v dx %v dw %v", h, h.Accumulate, xs, ws, l, dx.Data, dw.Data)
	}
	t.Logf("%d calls succeeded with finite outputs, %d rejected", ok, failed)
	require.Greater(t, ok, 60)
	require.Greater(t, failed, 30)

	for it := 0; it < 300; it++ {
		n, c := 1+r.Intn(5), 1+r.Intn(6)
		logits := randMatrix(r, n, c)
		s := pow(-3, 38.5)
		for i := range logits.Data {
			logits.Data[i] = float32(math.Max(-math.MaxFloat32, math.Min(math.MaxFloat32, float64(logits.Data[i])*float64(s))))
		}
		f := loss.Focal{Gamma: float32(r.Intn(2)) * pow(-3, 2.9), Alpha: float32(r.Float64()), Accumulate: r.Intn(3) == 0}
		if r.Intn(2) == 0 {
			f.Reduction = loss.Sum
		}
		dl := filled(n, c, pow(-3, 3))
		before := snapshot(&dl)
		l, err := f.Softmax(logits, randLabels(r, n, c), &dl)
		if err != nil {
			require.ErrorIs(t, err, loss.ErrNonFinite)
			requireUntouched(t, before, &dl)
		} else {
			require.True(t, allFinite([]float32{l}) && allFinite(dl.Data), "softmax %+v: loss %v grad %v", f, l, dl.Data)
		}
		targets := randMatrix(r, n, c)
		for i := range targets.Data {
			targets.Data[i] = float32([]float64{0, 1, r.Float64()}[r.Intn(3)])
		}
		l, err = f.Sigmoid(logits, targets, &dl)
		if err != nil {
			require.ErrorIs(t, err, loss.ErrNonFinite)
		} else {
			require.True(t, allFinite([]float32{l}) && allFinite(dl.Data), "sigmoid %+v: loss %v grad %v", f, l, dl.Data)
		}
	}
}

// TestOverlapRejected: outputs sharing memory with inputs or with each
// other gave silently wrong gradients. Each form is now ErrOverlap with
// nothing written; the documented in-place forms give the same bits as
// separate buffers.
func TestOverlapRejected(t *testing.T) { forEachLevel(t, testOverlapRejected) }

func testOverlapRejected(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	n, c, d := 4, 6, 3
	// one backing array, carved so that shifted views overlap
	buf := randMatrix(r, 1, 4*(n*d+c*d)).Data
	view := func(off, rows, cols int) loss.Matrix {
		return loss.Matrix{Rows: rows, Cols: cols, Data: buf[off : off+rows*cols]}
	}
	x, w := view(0, n, d), view(n*d, c, d)
	free := n*d + c*d // start of unused memory
	labels := randLabels(r, n, c)
	h := loss.ArcFace(30, 0.5)
	cases := []struct {
		name   string
		dx, dw *loss.Matrix
	}{
		{"dw is w", nil, &w},
		{"dx is dw's memory", ptr(view(free, n, d)), ptr(view(free, c, d))},
		{"dw on x", nil, ptr(view(0, c, d))},
		{"dx shifted by one over x", ptr(view(1, n, d)), nil},
		{"dw shifted by one over w", nil, ptr(view(n*d+1, c, d))},
		{"dx ends inside w", ptr(view(n*d-1, n, d)), nil},
	}
	for _, cs := range cases {
		before := snapshot(cs.dx, cs.dw)
		xb, wb := slices.Clone(x.Data), slices.Clone(w.Data)
		_, err := h.Loss(x, w, labels, cs.dx, cs.dw)
		require.ErrorIs(t, err, loss.ErrOverlap, cs.name)
		requireUntouched(t, before, cs.dx, cs.dw)
		require.Equal(t, xb, x.Data, cs.name)
		require.Equal(t, wb, w.Data, cs.name)
	}

	// in place: dx = x gives the bits of a separate dx
	for name, mk := range allHeads() {
		xc := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(x.Data)}
		sep := filled(n, d, 0)
		l1, err := mk().Loss(xc, w, labels, &sep, nil)
		require.NoError(t, err)
		l2, err := mk().Loss(xc, w, labels, &xc, nil)
		require.NoError(t, err, name)
		require.Equal(t, l1, l2)
		require.Equal(t, sep.Data, xc.Data, "%s: in-place dx", name)
	}

	// focal: dlogits == logits is allowed, dlogits over targets is not
	logits := randMatrix(r, n, c)
	sep := filled(n, c, 0)
	_, err := loss.Focal{Gamma: 2}.Softmax(logits, labels, &sep)
	require.NoError(t, err)
	_, err = loss.Focal{Gamma: 2}.Softmax(logits, labels, &logits)
	require.NoError(t, err)
	require.Equal(t, sep.Data, logits.Data)
	targets := filled(n, c, 0.5)
	_, err = loss.Focal{Gamma: 2}.Sigmoid(logits, targets, &targets)
	require.ErrorIs(t, err, loss.ErrOverlap)
	shifted := loss.Matrix{Rows: 1, Cols: 2, Data: logits.Data[1:3]}
	_, err = loss.Focal{Gamma: 2}.Softmax(loss.Matrix{Rows: 1, Cols: 2, Data: logits.Data[:2]}, []int32{0}, &shifted)
	require.ErrorIs(t, err, loss.ErrOverlap)

	// center: dx on Centers, and Update with x on Centers
	centers := randMatrix(r, c, d)
	ct := &loss.Center{Centers: centers, Alpha: 0.5}
	onCenters := loss.Matrix{Rows: n, Cols: d, Data: centers.Data[:n*d]}
	before := slices.Clone(centers.Data)
	_, err = ct.Loss(x, labels, &onCenters)
	require.ErrorIs(t, err, loss.ErrOverlap)
	require.ErrorIs(t, ct.Update(onCenters, labels), loss.ErrOverlap)
	require.Equal(t, before, centers.Data)
	xc := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(x.Data)}
	sepC := filled(n, d, 0)
	_, err = ct.Loss(xc, labels, &sepC)
	require.NoError(t, err)
	_, err = ct.Loss(xc, labels, &xc)
	require.NoError(t, err)
	require.Equal(t, sepC.Data, xc.Data)
}

func ptr(m loss.Matrix) *loss.Matrix { return &m }

// TestNoCallerMemoryRetained: after an error raised once setup had run, the
// head kept x, w and labels alive until its next successful call.
func TestNoCallerMemoryRetained(t *testing.T) {
	h := loss.ArcFace(30, 0.5)
	ct := &loss.Center{Centers: filled(3, 8, 0), Alpha: 0.5}
	var wx, ww, wcx weak.Pointer[float32]
	var wl weak.Pointer[int32]
	func() {
		r := rand.New(rand.NewSource(1))
		x, w := randMatrix(r, 64, 8), randMatrix(r, 4096, 8)
		w.Data[len(w.Data)-1] = float32(math.NaN()) // found after setup, in the norms
		labels := randLabels(r, 64, 3)
		dx, dw := filled(64, 8, 0), filled(4096, 8, 0)
		_, err := h.Loss(x, w, labels, &dx, &dw)
		require.ErrorIs(t, err, loss.ErrNonFinite)
		cx := filled(2, 8, 1e20) // found after the first pass
		cdx := filled(2, 8, 0)
		_, err = ct.Loss(cx, []int32{0, 1}, &cdx)
		require.ErrorIs(t, err, loss.ErrNonFinite)
		wx, ww, wl, wcx = weak.Make(&x.Data[0]), weak.Make(&w.Data[0]), weak.Make(&labels[0]), weak.Make(&cx.Data[0])
	}()
	runtime.GC()
	runtime.GC()
	require.Nil(t, wx.Value(), "x is still reachable after the failed call")
	require.Nil(t, ww.Value(), "w is still reachable after the failed call")
	require.Nil(t, wl.Value(), "labels are still reachable after the failed call")
	require.Nil(t, wcx.Value(), "Center still holds x after the failed call")
	runtime.KeepAlive(h)
	runtime.KeepAlive(ct)
}

// TestEmptyBatchValidatesEverything: one rule for every loss: an empty
// batch still validates every input, so NaN in w is an error as NaN in
// Centers is.
func TestEmptyBatchValidatesEverything(t *testing.T) {
	w := filled(3, 2, 1)
	w.Data[5] = float32(math.NaN())
	dw := filled(3, 2, 4)
	_, err := loss.ArcFace(30, 0.5).Loss(loss.Matrix{Cols: 2}, w, nil, nil, &dw)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.Equal(t, filled(3, 2, 4).Data, dw.Data)
	ct := &loss.Center{Centers: w, Alpha: 0.5}
	_, err = ct.Loss(loss.Matrix{Cols: 2}, nil, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.ErrorIs(t, ct.Update(loss.Matrix{Cols: 2}, nil), loss.ErrNonFinite)
	// a norm beyond float32 is non-finite in an empty batch too
	huge := filled(1, 2, 3e38)
	_, err = loss.ArcFace(30, 0.5).Loss(loss.Matrix{Cols: 2}, huge, nil, nil, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	// Accumulate into a dw that already holds a NaN: refused as a call with
	// rows refuses it (the output would not be finite), dw untouched; a
	// finite dw stays as it is (FuzzAdaptive found N = 0 returning nil).
	for _, mk := range []func() *loss.MarginSoftmax{
		func() *loss.MarginSoftmax { return loss.ArcFace(30, 0.5) },
		func() *loss.MarginSoftmax { return loss.ElasticCosFace(64, 0.35, 0.05) },
	} {
		for _, nan := range []bool{true, false} {
			dw := filled(3, 2, 4)
			if nan { // in every row, so in PartialFC's sampled ones too
				dw.Data[1], dw.Data[3], dw.Data[5] = float32(math.NaN()), float32(math.Inf(-1)), float32(math.NaN())
			}
			want := slices.Clone(dw.Data)
			h := mk()
			h.Accumulate = true
			_, err := h.Loss(loss.Matrix{Cols: 2}, filled(3, 2, 1), nil, nil, &dw)
			pfc := &loss.PartialFC{Head: mk(), SampleRate: 0.5}
			pfc.Head.Accumulate = true
			_, errP := pfc.Loss(loss.Matrix{Cols: 2}, filled(3, 2, 1), nil, nil, &dw)
			sh := &loss.ShardedHead{Head: mk(), Classes: 3}
			sh.Head.Accumulate = true
			var st loss.ShardStats
			ws, xs := filled(3, 2, 1), loss.Matrix{Cols: 2}
			require.NoError(t, sh.Forward(xs, ws, nil, &st))
			_, errS := sh.Backward(xs, ws, nil, &st, nil, &dw)
			if nan {
				require.ErrorIs(t, err, loss.ErrNonFinite, "%v", h)
				require.ErrorIs(t, errP, loss.ErrNonFinite, "PartialFC %v", h)
				require.ErrorIs(t, errS, loss.ErrNonFinite, "ShardedHead %v", h)
			} else {
				require.NoError(t, err, "%v", h)
				require.NoError(t, errP, "PartialFC %v", h)
				require.NoError(t, errS, "ShardedHead %v", h)
			}
			for i := range want {
				require.Equal(t, math.Float32bits(want[i]), math.Float32bits(dw.Data[i]), "%v: dw[%d]", h, i)
			}
		}
	}
}

// TestValidate: the configuration alone is checked, with the error Loss
// would give.
func TestValidate(t *testing.T) {
	for name, mk := range allHeads() {
		require.NoError(t, mk().Validate(), name)
	}
	bad := []*loss.MarginSoftmax{loss.ArcFace(30, 2), loss.ArcFace(0, 0.5), loss.CosFace(64, 1e37),
		loss.SphereFace(9, 0), loss.LargeMargin(2, -1), {}, func() *loss.MarginSoftmax { h := loss.ArcFace(30, 0.5); h.Reduction = 7; return h }()}
	for _, h := range bad {
		err := h.Validate()
		require.ErrorIs(t, err, loss.ErrParam, "%v", h)
		_, err2 := h.Loss(filled(1, 2, 1), filled(2, 2, 1), []int32{0}, nil, nil)
		require.Equal(t, err.Error(), err2.Error())
	}
	require.NoError(t, loss.Focal{}.Validate())
	require.NoError(t, loss.Focal{Gamma: 2, Alpha: 0.25}.Validate())
	require.ErrorIs(t, loss.Focal{Gamma: -1}.Validate(), loss.ErrParam)
	require.ErrorIs(t, loss.Focal{Gamma: loss.MaxFocalGamma + 1}.Validate(), loss.ErrParam)
	require.ErrorIs(t, loss.Focal{Alpha: 1.5}.Validate(), loss.ErrParam)
	require.ErrorIs(t, loss.Focal{Alpha: float32(math.NaN())}.Validate(), loss.ErrParam)

	require.NoError(t, (&loss.Center{Centers: filled(2, 3, 0), Alpha: 0.5}).Validate())
	require.ErrorIs(t, (&loss.Center{Centers: filled(2, 3, 0)}).Validate(), loss.ErrParam)
	require.ErrorIs(t, (&loss.Center{Centers: loss.Matrix{Rows: 2, Cols: 3}, Alpha: 0.5}).Validate(), loss.ErrShape)
	nanC := filled(2, 3, 0)
	nanC.Data[4] = float32(math.Inf(1))
	require.ErrorIs(t, (&loss.Center{Centers: nanC, Alpha: 0.5}).Validate(), loss.ErrNonFinite)
}

// TestFocalAlphaZeroValue: Alpha 0 means no weighting, like torchvision's
// −1; (0, 1] weights positives by α; targets outside [0, 1] are ErrLabel.
func TestFocalAlphaZeroValue(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	logits := randMatrix(r, 3, 4)
	targets := filled(3, 4, 0)
	targets.Data[1], targets.Data[6] = 1, 1
	logits.Data[1] = -8 // a badly missed positive
	run := func(a float32) (float32, []float32) {
		d := filled(3, 4, 0)
		l, err := loss.Focal{Gamma: 2, Alpha: a}.Sigmoid(logits, targets, &d)
		require.NoError(t, err)
		return l, d.Data
	}
	l0, g0 := run(0)
	lm, gm := run(-1)
	require.Equal(t, lm, l0)
	require.Equal(t, gm, g0)
	l25, _ := run(0.25)
	require.NotEqual(t, l0, l25)
	require.Greater(t, l0, float32(0.5), "a missed positive must cost something with the zero value")
	bad := filled(3, 4, 0)
	bad.Data[2] = -0.1
	_, err := loss.Focal{}.Sigmoid(logits, bad, nil)
	require.ErrorIs(t, err, loss.ErrLabel)
}

// TestAccumulate: with Accumulate every gradient is the old contents plus
// what the overwriting call writes.
func TestAccumulate(t *testing.T) { forEachLevelAndPath(t, testAccumulate) }

func testAccumulate(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, shape := range [][3]int{{5, 7, 3}, {64, 1500, 40}, {3, 40, 700}} {
		n, c, d := shape[0], shape[1], shape[2]
		x, w := randMatrix(r, n, d), randMatrix(r, c, d)
		labels := randLabels(r, n, c)
		for name, mk := range allHeads() {
			h := mk()
			dx, dw := filled(n, d, 0), filled(c, d, 0)
			l1, err := h.Loss(x, w, labels, &dx, &dw)
			require.NoError(t, err)
			ax, aw := randMatrix(r, n, d), randMatrix(r, c, d)
			ox, ow := slices.Clone(ax.Data), slices.Clone(aw.Data)
			h.Accumulate = true
			l2, err := h.Loss(x, w, labels, &ax, &aw)
			require.NoError(t, err)
			require.Equal(t, l1, l2)
			for k := range ax.Data {
				require.Equal(t, ox[k]+dx.Data[k], ax.Data[k], "%s %v: dx[%d]", name, shape, k)
			}
			for k := range aw.Data {
				require.InDelta(t, ox2(ow, dw.Data, k), aw.Data[k], 1e-6*(1+math.Abs(float64(ow[k]))), "%s %v: dw[%d]", name, shape, k)
			}
			require.Zero(t, testing.AllocsPerRun(5, func() { _, _ = h.Loss(x, w, labels, &ax, &aw) }), "%s accumulate allocations", name)
		}
		logits := randMatrix(r, n, c)
		for _, f := range []loss.Focal{{Gamma: 2}, {Gamma: 0.5, Alpha: 0.25}} {
			targets := filled(n, c, 0.3)
			for form := 0; form < 2; form++ {
				call := func(g *loss.Matrix) {
					var err error
					if form == 0 {
						_, err = f.Softmax(logits, labels, g)
					} else {
						_, err = f.Sigmoid(logits, targets, g)
					}
					require.NoError(t, err)
				}
				d1 := filled(n, c, 0)
				call(&d1)
				acc := randMatrix(r, n, c)
				old := slices.Clone(acc.Data)
				f.Accumulate = true
				call(&acc)
				f.Accumulate = false
				for k := range acc.Data {
					require.Equal(t, old[k]+d1.Data[k], acc.Data[k], "focal form %d: dlogits[%d]", form, k)
				}
			}
		}
		ct := &loss.Center{Centers: randMatrix(r, c, d), Alpha: 0.5}
		d1 := filled(n, d, 0)
		_, err := ct.Loss(x, labels, &d1)
		require.NoError(t, err)
		acc := randMatrix(r, n, d)
		old := slices.Clone(acc.Data)
		ct.Accumulate = true
		_, err = ct.Loss(x, labels, &acc)
		require.NoError(t, err)
		for k := range acc.Data {
			require.Equal(t, old[k]+d1.Data[k], acc.Data[k], "center dx[%d]", k)
		}
	}
	// accumulating into a non-finite buffer is an error, nothing written
	h := loss.ArcFace(30, 0.5)
	h.Accumulate = true
	dx := filled(1, 2, 0)
	dx.Data[1] = float32(math.NaN())
	_, err := h.Loss(filled(1, 2, 1), filled(2, 2, 1), []int32{0}, &dx, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.Equal(t, float32(0), dx.Data[0])
}

func ox2(old, g []float32, k int) float64 { return float64(old[k] + g[k]) }

// TestNilReceivers: a nil head or Center is an error, not a panic.
func TestNilReceivers(t *testing.T) {
	var h *loss.MarginSoftmax
	_, err := h.Loss(filled(1, 2, 1), filled(2, 2, 1), []int32{0}, nil, nil)
	require.ErrorIs(t, err, loss.ErrParam)
	require.ErrorIs(t, h.Validate(), loss.ErrParam)
	h.SetLambda(3)
	require.Zero(t, h.Lambda())
	require.NotEmpty(t, h.String())
	var c *loss.Center
	_, err = c.Loss(filled(1, 2, 1), []int32{0}, nil)
	require.ErrorIs(t, err, loss.ErrShape)
	require.ErrorIs(t, c.Update(filled(1, 2, 1), []int32{0}), loss.ErrShape)
	require.ErrorIs(t, c.Validate(), loss.ErrShape)
}
