package loss_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// shardCase is a head configuration for the sharded and sub-center tests.
type shardCase struct {
	name string
	make func() *loss.MarginSoftmax
}

func shardCases() []shardCase {
	with := func(f func() *loss.MarginSoftmax, opt func(*loss.MarginSoftmax)) func() *loss.MarginSoftmax {
		return func() *loss.MarginSoftmax {
			h := f()
			h.TileBudget = tileBudget
			opt(h)
			return h
		}
	}
	none := func(*loss.MarginSoftmax) {}
	var cs []shardCase
	for name, f := range allHeads() {
		cs = append(cs, shardCase{name, with(f, none)})
		cs = append(cs, shardCase{name + "+smooth", with(f, func(h *loss.MarginSoftmax) { h.LabelSmoothing = 0.1 })})
	}
	arc := func() *loss.MarginSoftmax { return loss.ArcFace(16, 0.5) }
	cos := func() *loss.MarginSoftmax { return loss.CosFace(16, 0.35) }
	comb := func() *loss.MarginSoftmax { return loss.CombinedMargin(16, 1, 0.3, 0.2) }
	cs = append(cs,
		shardCase{"ArcFace/K=3", with(arc, func(h *loss.MarginSoftmax) { h.SubCenters = 3 })},
		shardCase{"CosFace/K=2+smooth/Sum", with(cos, func(h *loss.MarginSoftmax) { h.SubCenters, h.LabelSmoothing, h.Reduction = 2, 0.2, loss.Sum })},
		shardCase{"Combined/K=3+detach", with(comb, func(h *loss.MarginSoftmax) { h.SubCenters, h.DetachMargin = 3, true })},
	)
	return cs
}

// relDiff is the norm-wise relative difference ‖a−b‖₂ / ‖b‖₂ (‖a−b‖₂
// when b = 0).
func relDiff(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		e := float64(a[i]) - float64(b[i])
		d += e * e
		m += float64(b[i]) * float64(b[i])
	}
	if m == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / m)
}

// runShards splits w's classes into len(bounds)−1 shards at the given class
// bounds and runs the sharded step, combining the statistics by the
// all-reduce recipe (MAX, Rescale, SUM in float32) or by MergeShardStats.
func runShards(t *testing.T, head *loss.MarginSoftmax, x, w loss.Matrix, labels []int32, bounds []int, allGather bool) (float32, []float32, []float32) {
	t.Helper()
	k := max(head.SubCenters, 1)
	classes := w.Rows / k
	d := w.Cols
	shards := len(bounds) - 1
	hs := make([]*loss.ShardedHead, shards)
	ws := make([]loss.Matrix, shards)
	st := make([]*loss.ShardStats, shards)
	for s := range hs {
		hs[s] = &loss.ShardedHead{Head: head, Offset: bounds[s], Classes: classes}
		ws[s] = loss.Matrix{Rows: (bounds[s+1] - bounds[s]) * k, Cols: d, Data: w.Data[bounds[s]*k*d : bounds[s+1]*k*d]}
		st[s] = new(loss.ShardStats)
		if err := hs[s].Forward(x, ws[s], labels, st[s]); err != nil {
			t.Fatalf("shard %d Forward: %v", s, err)
		}
	}
	n := x.Rows
	if allGather {
		// Every shard gets copies of all parts (as an all-gather delivers).
		gathered := make([]loss.ShardStats, shards)
		for q := range gathered {
			gathered[q] = loss.ShardStats{Max: append([]float32(nil), st[q].Max...), Sums: append([]float32(nil), st[q].Sums...)}
		}
		for s := range st {
			parts := make([]*loss.ShardStats, shards)
			for q := range parts {
				if q == s {
					parts[q] = st[s]
					continue
				}
				parts[q] = &gathered[q]
			}
			if err := loss.MergeShardStats(st[s], parts...); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		mx := make([]float32, n)
		for i := range mx {
			mx[i] = float32(math.Inf(-1))
			for _, p := range st {
				mx[i] = max(mx[i], p.Max[i])
			}
		}
		sums := make([]float32, 3*n)
		for _, p := range st {
			copy(p.Max, mx)
			p.Rescale()
			for i, v := range p.Sums {
				sums[i] += v
			}
		}
		for _, p := range st {
			copy(p.Sums, sums)
		}
	}
	dx := make([]float32, n*d)
	dw := make([]float32, w.Rows*d)
	var l0 float32
	for s := range hs {
		pdx := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
		pdw := loss.Matrix{Rows: ws[s].Rows, Cols: d, Data: dw[bounds[s]*k*d : bounds[s+1]*k*d]}
		l, err := hs[s].Backward(x, ws[s], labels, st[s], &pdx, &pdw)
		if err != nil {
			t.Fatalf("shard %d Backward: %v", s, err)
		}
		if s > 0 && l != l0 {
			t.Fatalf("%v: shard %d loss %v, shard 0 %v", head, s, l, l0)
		}
		l0 = l
		for i, v := range pdx.Data {
			dx[i] += v
		}
	}
	return l0, dx, dw
}

// TestShardedMatchesHead: K in-process shards (uneven, one holding a single
// class) reproduce Head.Loss within 1e-6 relative (the loss; the gradients
// norm-wise, ‖a−b‖₂/‖b‖₂) for every kind, with label smoothing and
// sub-centers, through both combine paths, on both tile paths. They differ
// from the head only by float32 rounding: other tile widths (other GEMM
// edges), float32 statistics and partial dx summed in float32. Element-wise
// the largest difference is about 1e-6 of max|dx| (s = 64).
func TestShardedMatchesHead(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(41))
		n, d, classes := 37, 24, 23
		for _, tc := range shardCases() {
			head := tc.make()
			k := max(head.SubCenters, 1)
			x, w := randMatrix(r, n, d), randMatrix(r, classes*k, d)
			labels := randLabels(r, n, classes)
			labels[0], labels[1] = 7, 7 // the single-class shard holds a target
			dx, dw := filled(n, d, 0), filled(classes*k, d, 0)
			want, err := head.Loss(x, w, labels, &dx, &dw)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			for _, ag := range []bool{false, true} {
				got, gdx, gdw := runShards(t, head, x, w, labels, []int{0, 7, 8, 16, classes}, ag)
				lr := math.Abs(float64(got-want)) / math.Abs(float64(want))
				if lr > 1e-6 || relDiff(gdx, dx.Data) > 1e-6 || relDiff(gdw, dw.Data) > 1e-6 {
					t.Errorf("%s allGather=%v: loss rel diff %.3g, dx %.3g, dw %.3g (want ≤ 1e-6)", tc.name, ag, lr, relDiff(gdx, dx.Data), relDiff(gdw, dw.Data))
				}
			}
			// One shard holding every class is the head itself.
			got, gdx, gdw := runShards(t, head, x, w, labels, []int{0, classes}, false)
			if lr := math.Abs(float64(got-want)) / math.Abs(float64(want)); lr > 1e-6 || relDiff(gdx, dx.Data) > 1e-6 || relDiff(gdw, dw.Data) > 1e-6 {
				t.Errorf("%s one shard: loss %.3g dx %.3g dw %.3g", tc.name, lr, relDiff(gdx, dx.Data), relDiff(gdw, dw.Data))
			}
		}
	})
}

// TestShardedErrors: bad calls give the documented errors and leave the
// outputs untouched.
func TestShardedErrors(t *testing.T) {
	r := rand.New(rand.NewSource(42))
	n, d := 5, 4
	x, w := randMatrix(r, n, d), randMatrix(r, 3, d)
	labels := []int32{0, 1, 5, 2, 4}
	h := &loss.ShardedHead{Head: loss.ArcFace(16, 0.5), Offset: 0, Classes: 6}
	var st loss.ShardStats
	if err := h.Forward(x, w, labels, &st); err != nil {
		t.Fatal(err)
	}
	dx, dw := filled(n, d, 7), filled(3, d, 7)
	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	_, err := h.Backward(x, w, labels, &st, &dx, &dw)
	if err != nil {
		t.Fatal(err)
	}
	dx, dw = filled(n, d, 7), filled(3, d, 7)
	x2 := loss.Matrix{Rows: n, Cols: d, Data: append([]float32(nil), x.Data...)}
	_, err = h.Backward(x2, w, labels, &st, &dx, &dw)
	check("other x", err, loss.ErrParam)
	_, err = h.Backward(x, w, labels, &loss.ShardStats{Max: st.Max[:2], Sums: st.Sums[:6]}, &dx, &dw)
	check("short stats", err, loss.ErrShape)
	bad := loss.ShardStats{Max: append([]float32(nil), st.Max...), Sums: append([]float32(nil), st.Sums...)}
	bad.Sums[3] = float32(math.NaN())
	_, err = h.Backward(x, w, labels, &bad, &dx, &dw)
	check("NaN stats", err, loss.ErrNonFinite)
	_, err = h.Backward(x, w, labels, &st, &dx, &loss.Matrix{Rows: 2, Cols: d, Data: make([]float32, 2*d)})
	check("dw shape", err, loss.ErrShape)
	for _, v := range append(dx.Data, dw.Data...) {
		if v != 7 {
			t.Fatal("an output changed on error")
		}
	}
	before := append([]float32(nil), st.Max...)
	check("label ≥ Classes", h.Forward(x, w, []int32{0, 1, 6, 2, 4}, &st), loss.ErrLabel)
	check("shard outside", (&loss.ShardedHead{Head: loss.ArcFace(16, 0.5), Offset: 4, Classes: 6}).Forward(x, w, labels, &st), loss.ErrParam)
	check("nil head", (&loss.ShardedHead{Offset: 0, Classes: 6}).Forward(x, w, labels, &st), loss.ErrParam)
	check("K rows", (&loss.ShardedHead{Head: &loss.MarginSoftmax{}, Classes: 6}).Forward(x, w, labels, &st), loss.ErrParam)
	check("overlap", h.Forward(x, w, labels, &loss.ShardStats{Max: x.Data[:0:n]}), loss.ErrOverlap)
	for i := range before {
		if math.Float32bits(before[i]) != math.Float32bits(st.Max[i]) {
			t.Fatal("st changed on error")
		}
	}
	check("merge sizes", loss.MergeShardStats(&st, &st, &loss.ShardStats{Max: make([]float32, 1), Sums: make([]float32, 3)}), loss.ErrShape)
	check("merge none", loss.MergeShardStats(&st), loss.ErrShape)
	sub := &loss.ShardedHead{Head: loss.ArcFace(16, 0.5), Classes: 6}
	sub.Head.SubCenters = 2
	check("rows not a multiple of K", sub.Forward(x, w, labels, &st), loss.ErrShape)
}

// TestShardedNoAllocsDeterministic: steady-state Forward and Backward
// allocate nothing, and give the same bits for any GOMAXPROCS.
func TestShardedNoAllocsDeterministic(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(43))
		n, d := 40, 32
		x, w := randMatrix(r, n, d), randMatrix(r, 300, d)
		labels := randLabels(r, n, 500)
		for _, rate := range []float32{0, 0.3} {
			h := &loss.ShardedHead{Head: loss.ArcFace(30, 0.5), Offset: 100, Classes: 500, SampleRate: rate, Seed: 3}
			if rate == 0 {
				h.Head.LabelSmoothing = 0.1
			}
			var st loss.ShardStats
			dx, dw := filled(n, d, 0), filled(300, d, 0)
			step := func() float32 {
				if err := h.Forward(x, w, labels, &st); err != nil {
					t.Fatal(err)
				}
				st.Rescale()
				l, err := h.Backward(x, w, labels, &st, &dx, &dw)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			step()
			if a := testing.AllocsPerRun(3, func() { step() }); a != 0 {
				t.Errorf("%v allocations per step", a)
			}
			var ref []float32
			for _, p := range []int{1, 2, 3, 8} {
				if rate != 0 { // a fresh value: the same draw
					h = &loss.ShardedHead{Head: h.Head, Offset: 100, Classes: 500, SampleRate: rate, Seed: 3}
				}
				old := runtime.GOMAXPROCS(p)
				l := step()
				runtime.GOMAXPROCS(old)
				got := append(append([]float32{l}, dx.Data...), dw.Data...)
				if ref == nil {
					ref = got
					continue
				}
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
						t.Fatalf("rate %g GOMAXPROCS=%d: value %d differs", rate, p, i)
					}
				}
			}
		}
	})
}

// Two processes each holding half of the classes; here both shards run in
// one process, with the all-reduce done by hand.
func ExampleShardedHead() {
	x := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{1, 0, 0, 1}}
	w := loss.Matrix{Rows: 4, Cols: 2, Data: []float32{1, 0, 0, 1, -1, 0, 0, -1}}
	labels := []int32{0, 3}
	head := loss.ArcFace(8, 0.2)
	shards := []*loss.ShardedHead{{Head: head, Offset: 0, Classes: 4}, {Head: head, Offset: 2, Classes: 4}}
	ws := []loss.Matrix{{Rows: 2, Cols: 2, Data: w.Data[:4]}, {Rows: 2, Cols: 2, Data: w.Data[4:]}}
	stats := []*loss.ShardStats{{}, {}}
	for s, h := range shards {
		if err := h.Forward(x, ws[s], labels, stats[s]); err != nil {
			panic(err)
		}
	}
	if err := loss.MergeShardStats(stats[0], stats[0], stats[1]); err != nil { // the all-gather path
		panic(err)
	}
	stats[1] = stats[0]
	dx := loss.Matrix{Rows: 2, Cols: 2, Data: make([]float32, 4)}
	for s, h := range shards {
		part := loss.Matrix{Rows: 2, Cols: 2, Data: make([]float32, 4)}
		l, err := h.Backward(x, ws[s], labels, stats[s], &part, nil)
		if err != nil {
			panic(err)
		}
		fmt.Printf("shard %d: loss %.4f\n", s, l)
		for i, v := range part.Data {
			dx.Data[i] += v
		}
	}
	whole, _ := head.Loss(x, w, labels, nil, nil)
	fmt.Printf("unsharded: loss %.4f\n", whole)
	// Output:
	// shard 0: loss 8.1597
	// shard 1: loss 8.1597
	// unsharded: loss 8.1597
}

// TestSubCenterShapeAndLabels: Loss with K sub-centers wants w.Rows a
// multiple of K (ErrShape) and labels in [0, w.Rows/K) (ErrLabel).
func TestSubCenterShapeAndLabels(t *testing.T) {
	r := rand.New(rand.NewSource(44))
	x, w := randMatrix(r, 3, 4), randMatrix(r, 7, 4)
	h := loss.ArcFace(16, 0.5)
	h.SubCenters = 2
	if _, err := h.Loss(x, w, []int32{0, 1, 2}, nil, nil); !errors.Is(err, loss.ErrShape) {
		t.Errorf("7 rows, K=2: %v, want ErrShape", err)
	}
	w.Rows, w.Data = 6, w.Data[:24]
	if _, err := h.Loss(x, w, []int32{0, 1, 3}, nil, nil); !errors.Is(err, loss.ErrLabel) {
		t.Errorf("label 3 of 3 classes: %v, want ErrLabel", err)
	}
	if _, err := h.Loss(x, w, []int32{0, 1, 2}, nil, nil); err != nil {
		t.Errorf("valid call: %v", err)
	}
}

// TestShardedPartialFC: with SampleRate each shard keeps its positives and
// ⌈rate·Cs⌉ classes in all (PartialFC_V2); the sharded step equals the head
// on the union of the samples (within 1e-6, as TestShardedMatchesHead), dw
// rows outside the samples are zero, and the draw is deterministic and
// changes from call to call.
func TestShardedPartialFC(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(45))
		n, d, classes := 6, 16, 40
		bounds := []int{0, 13, 27, classes}
		for _, k := range []int{1, 2} {
			head := loss.CosFace(16, 0.35)
			head.SubCenters, head.TileBudget = k, tileBudget
			x, w := randMatrix(r, n, d), randMatrix(r, classes*k, d)
			labels := randLabels(r, n, classes)
			var prev []int32
			for call := 0; call < 2; call++ {
				hs := make([]*loss.ShardedHead, len(bounds)-1)
				var union []int32
				st := make([]*loss.ShardStats, len(hs))
				for s := range hs {
					hs[s] = &loss.ShardedHead{Head: head, Offset: bounds[s], Classes: classes, SampleRate: 0.4, Seed: 9}
					st[s] = new(loss.ShardStats)
				}
				// call 1 runs each shard twice: the second draw differs
				for rep := 0; rep <= call; rep++ {
					union = union[:0]
					for s, h := range hs {
						ws := loss.Matrix{Rows: (bounds[s+1] - bounds[s]) * k, Cols: d, Data: w.Data[bounds[s]*k*d : bounds[s+1]*k*d]}
						if err := h.Forward(x, ws, labels, st[s]); err != nil {
							t.Fatal(err)
						}
						samp := h.Sampled()
						cs := bounds[s+1] - bounds[s]
						want := 0
						for float32(float64(want)/float64(cs)) < 0.4 {
							want++
						}
						pos := map[int32]bool{}
						for _, y := range labels {
							if int(y) >= bounds[s] && int(y) < bounds[s+1] {
								pos[y] = true
							}
						}
						if len(samp) != max(want, len(pos)) {
							t.Fatalf("shard %d: |S| = %d, want %d", s, len(samp), max(want, len(pos)))
						}
						union = append(union, samp...)
					}
				}
				if call == 1 && slices.Equal(prev, union) {
					t.Errorf("K=%d: the second draw repeats the first", k)
				}
				if call == 0 && prev == nil {
					prev = append([]int32(nil), union...)
				}
				// the all-gather combine
				gathered := make([]*loss.ShardStats, len(st))
				for q := range st {
					gathered[q] = &loss.ShardStats{Max: append([]float32(nil), st[q].Max...), Sums: append([]float32(nil), st[q].Sums...)}
				}
				dx := make([]float32, n*d)
				dw := filled(classes*k, d, 7)
				var got float32
				for s, h := range hs {
					if err := loss.MergeShardStats(st[s], gathered...); err != nil {
						t.Fatal(err)
					}
					ws := loss.Matrix{Rows: (bounds[s+1] - bounds[s]) * k, Cols: d, Data: w.Data[bounds[s]*k*d : bounds[s+1]*k*d]}
					pdx := filled(n, d, 0)
					pdw := loss.Matrix{Rows: ws.Rows, Cols: d, Data: dw.Data[bounds[s]*k*d : bounds[s+1]*k*d]}
					l, err := h.Backward(x, ws, labels, st[s], &pdx, &pdw)
					if err != nil {
						t.Fatal(err)
					}
					got = l
					for i, v := range pdx.Data {
						dx[i] += v
					}
				}
				// the head on the union
				wU := make([]float32, 0, len(union)*k*d)
				index := map[int32]int32{}
				for q, c := range union {
					index[c] = int32(q)
					wU = append(wU, w.Data[int(c)*k*d:(int(c)+1)*k*d]...)
				}
				labU := make([]int32, n)
				for i, y := range labels {
					labU[i] = index[y]
				}
				rdx, rdw := filled(n, d, 0), filled(len(union)*k, d, 0)
				want, err := head.Loss(x, loss.Matrix{Rows: len(union) * k, Cols: d, Data: wU}, labU, &rdx, &rdw)
				if err != nil {
					t.Fatal(err)
				}
				gdwU := make([]float32, 0, len(wU))
				inU := map[int]bool{}
				for _, c := range union {
					inU[int(c)] = true
					gdwU = append(gdwU, dw.Data[int(c)*k*d:(int(c)+1)*k*d]...)
				}
				if lr := math.Abs(float64(got-want)) / math.Abs(float64(want)); lr > 1e-6 || relDiff(dx, rdx.Data) > 1e-6 || relDiff(gdwU, rdw.Data) > 1e-6 {
					t.Errorf("K=%d call %d: loss rel diff %.3g, dx %.3g, dw %.3g", k, call, lr, relDiff(dx, rdx.Data), relDiff(gdwU, rdw.Data))
				}
				for c := 0; c < classes; c++ {
					if inU[c] {
						continue
					}
					for _, v := range dw.Data[c*k*d : (c+1)*k*d] {
						if v != 0 {
							t.Fatalf("K=%d: dw row of unsampled class %d not zeroed", k, c)
						}
					}
				}
			}
		}
	})
	smooth := loss.ArcFace(16, 0.5)
	smooth.LabelSmoothing = 0.1
	h := &loss.ShardedHead{Head: smooth, Classes: 4, SampleRate: 0.5}
	r := rand.New(rand.NewSource(46))
	if err := h.Forward(randMatrix(r, 2, 3), randMatrix(r, 4, 3), []int32{0, 1}, new(loss.ShardStats)); !errors.Is(err, loss.ErrParam) {
		t.Errorf("sampling with label smoothing: %v, want ErrParam", err)
	}
}

// TestCheckFiniteFindsFirst: the finite check of large matrices reports the
// first NaN or ±Inf wherever it sits in its block of four, and nothing in a
// finite matrix (huge and subnormal values included).
func TestCheckFiniteFindsFirst(t *testing.T) {
	c := &loss.Center{Centers: filled(3, 7, 1), Alpha: 0.5}
	c.Centers.Data[5] = math.MaxFloat32
	c.Centers.Data[6] = 1e-45
	if err := c.Validate(); err != nil {
		t.Fatalf("finite centers: %v", err)
	}
	for k := 0; k < 21; k++ {
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			c.Centers.Data[k] = bad
			if k+1 < 21 {
				c.Centers.Data[20] = float32(math.NaN()) // a later one must not be the one named
			}
			err := c.Validate()
			want := fmt.Sprintf("row %d column %d", k/7, k%7)
			if !errors.Is(err, loss.ErrNonFinite) || !strings.Contains(err.Error(), want) {
				t.Fatalf("bad value at %d: %v, want ErrNonFinite naming %s", k, err, want)
			}
			c.Centers = filled(3, 7, 1)
		}
	}
}
