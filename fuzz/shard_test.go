package fuzz

import (
	"math"
	"slices"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// FuzzShardedHead drives ShardedHead through Forward, a combine (the
// all-reduce recipe or MergeShardStats) and Backward, on 2–3 shards of
// arbitrary sizes, with sub-centers, smoothing, sampling and Accumulate. It
// must never panic and errors must wrap a sentinel; a nil error must come
// with finite outputs; a second Backward must repeat the first bitwise;
// and without sampling the shards must reproduce the unsharded Head.Loss
// (the loss within 1e-5·max(1, |l|), the summed partial dx and every
// class's dw, summed over its sub-centers, norm-wise within 1e-4 of the
// head's or 1e-6 of the largest term the gradient sums). The data are
// quantised to 1/16 in [−8, 8) and the comparison uses the kinds whose
// margin is smooth in t (CosFace, SphereFace, L-Softmax), since rounding
// differences of the GEMM edges (the shards tile the classes otherwise)
// would flip ArcFace's fallback branch; ArcFace gets the other checks.
func FuzzShardedHead(f *testing.F) {
	f.Add([]byte{0, 3, 5, 2, 0, 0, 1, 40, 10, 250, 3, 7, 128, 1, 9})
	f.Add([]byte{1, 6, 8, 4, 1, 1, 2, 10, 200, 17, 33, 90, 5})
	f.Add([]byte{2, 2, 3, 1, 2, 0, 0, 64, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{3, 5, 7, 3, 5, 1, 1, 20, 100, 50, 25, 12, 6, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{byteReader{b: data}}
		kind := r.u8() % 4
		n, classes, d := 1+int(r.u8()%6), 2+int(r.u8()%7), 1+int(r.u8()%5)
		opts := r.u8()
		nShards := 2 + int(r.u8()%2)
		split := r.u8()
		sb := r.u8()
		s := 1 + float32(sb%64)
		var head *loss.MarginSoftmax
		switch kind {
		case 0:
			head = loss.CosFace(s, float32(sb%5)/10)
		case 1:
			head = loss.SphereFace(1+int(sb%4), float32(opts%3))
		case 2:
			head = loss.LargeMargin(1+int(sb%4), float32(opts%3))
		case 3:
			head = loss.ArcFace(s, 0.5)
			head.EasyMargin = opts&64 != 0
		}
		k := 1
		if (kind == 0 || kind == 3) && opts&1 != 0 {
			k = 2
			head.SubCenters = 2
		}
		head.Reduction = loss.Reduction(opts >> 1 % 2)
		sampling := opts&8 != 0
		if opts&4 != 0 && !sampling {
			head.LabelSmoothing = 0.1
		}
		head.Accumulate = opts&16 != 0
		if opts&32 != 0 {
			head.TileBudget = -1
		}
		allGather := opts&128 != 0
		q := func() float32 { return float32(int8(r.u8())) / 16 }
		x := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
		w := loss.Matrix{Rows: classes * k, Cols: d, Data: make([]float32, classes*k*d)}
		for i := range x.Data {
			x.Data[i] = q()
		}
		for i := range w.Data {
			w.Data[i] = q()
		}
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(r.u8() % uint8(classes))
		}
		// Shard bounds: nShards non-empty class ranges.
		bounds := []int{0}
		for q := 1; q < nShards; q++ {
			lo := bounds[q-1] + 1
			hi := classes - (nShards - q)
			if lo > hi {
				break
			}
			bounds = append(bounds, lo+int(split>>(2*q))%(hi-lo+1))
		}
		bounds = append(bounds, classes)
		rate := float32(0)
		if sampling {
			rate = 0.5
		}

		hs := make([]*loss.ShardedHead, len(bounds)-1)
		ws := make([]loss.Matrix, len(hs))
		st := make([]*loss.ShardStats, len(hs))
		for p := range hs {
			hs[p] = &loss.ShardedHead{Head: head, Offset: bounds[p], Classes: classes, SampleRate: rate, Seed: uint64(p)}
			ws[p] = loss.Matrix{Rows: (bounds[p+1] - bounds[p]) * k, Cols: d, Data: w.Data[bounds[p]*k*d : bounds[p+1]*k*d]}
			st[p] = new(loss.ShardStats)
			if err := hs[p].Forward(x, ws[p], labels, st[p]); err != nil {
				if !known(err) {
					t.Fatalf("Forward: error wraps no sentinel: %v", err)
				}
				return
			}
		}
		if allGather {
			copies := make([]loss.ShardStats, len(st))
			for p := range copies {
				copies[p] = loss.ShardStats{Max: slices.Clone(st[p].Max), Sums: slices.Clone(st[p].Sums)}
			}
			for p := range st {
				parts := make([]*loss.ShardStats, len(st))
				for q := range parts {
					parts[q] = &copies[q]
				}
				parts[p] = st[p]
				if err := loss.MergeShardStats(st[p], parts...); err != nil {
					t.Fatalf("MergeShardStats: %v", err)
				}
			}
		} else {
			mx := make([]float32, n)
			sums := make([]float32, 3*n)
			for i := range mx {
				mx[i] = float32(math.Inf(-1))
				for _, p := range st {
					mx[i] = max(mx[i], p.Max[i])
				}
			}
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
		dw := make([]float32, classes*k*d)
		var l0 float32
		for p := range hs {
			pdx := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
			pdw := loss.Matrix{Rows: ws[p].Rows, Cols: d, Data: make([]float32, ws[p].Rows*d)}
			l, err := hs[p].Backward(x, ws[p], labels, st[p], &pdx, &pdw)
			if err != nil {
				if !known(err) {
					t.Fatalf("Backward: error wraps no sentinel: %v", err)
				}
				return
			}
			if !finiteAll([]float32{l}, pdx.Data, pdw.Data) {
				t.Fatalf("%v shard %d: nil error with non-finite output: loss %v dx %v dw %v", head, p, l, pdx.Data, pdw.Data)
			}
			if p > 0 && l != l0 {
				t.Fatalf("%v: shard %d loss %v, shard 0 %v", head, p, l, l0)
			}
			l0 = l
			// A second Backward repeats the first bitwise (Accumulate adds
			// the same gradient again onto what the first left).
			rdx := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
			rdw := loss.Matrix{Rows: ws[p].Rows, Cols: d, Data: make([]float32, ws[p].Rows*d)}
			l2, err := hs[p].Backward(x, ws[p], labels, st[p], &rdx, &rdw)
			if err != nil || math.Float32bits(l2) != math.Float32bits(l) || !slices.Equal(bitsOf(rdx.Data), bitsOf(pdx.Data)) || !slices.Equal(bitsOf(rdw.Data), bitsOf(pdw.Data)) {
				t.Fatalf("%v shard %d: second Backward differs (err %v)", head, p, err)
			}
			for i, v := range pdx.Data {
				dx[i] += v
			}
			copy(dw[bounds[p]*k*d:], pdw.Data)
		}
		if sampling || kind == 3 {
			return
		}
		hdx := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
		hdw := loss.Matrix{Rows: classes * k, Cols: d, Data: make([]float32, classes*k*d)}
		want, err := head.Loss(x, w, labels, &hdx, &hdw)
		if err != nil {
			t.Fatalf("%v: the shards succeeded, the head failed: %v", head, err)
		}
		if math.Abs(float64(l0-want)) > 1e-5*math.Max(1, math.Abs(float64(want))) {
			t.Fatalf("%v: sharded loss %v, head %v", head, l0, want)
		}
		// Term scale: the largest |∂L/∂z|·‖W‖/‖x‖-like factor is bounded by
		// the reduction factor times the largest logit scale and norm ratio.
		var nx, nw float64
		for i := 0; i < n; i++ {
			nx = math.Max(nx, norm(x.Data[i*d:(i+1)*d]))
		}
		for j := 0; j < classes*k; j++ {
			nw = math.Max(nw, norm(w.Data[j*d:(j+1)*d]))
		}
		terms := float64(s) * (1 + nx) * (1 + nw) * 64
		if kind != 0 {
			terms = (1 + nx) * (1 + nw) * 64
		}
		if head.Reduction == loss.Mean {
			terms /= float64(n)
		}
		check := func(what string, got, want []float32) {
			if e, g := diffNorm(got, want), norm(want); e > 1e-4*g+1e-6*terms {
				t.Fatalf("%v: sharded %s differs by %.3g (‖head‖ %.3g, terms %.3g)\nsharded %v\nhead    %v", head, what, e, g, terms, got, want)
			}
		}
		check("dx", dx, hdx.Data)
		check("dw per class", classSums(dw, k, d), classSums(hdw.Data, k, d))
	})
}

func bitsOf(v []float32) []uint32 {
	b := make([]uint32, len(v))
	for i, x := range v {
		b[i] = math.Float32bits(x)
	}
	return b
}

func norm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func diffNorm(a, b []float32) float64 {
	var s float64
	for i := range a {
		e := float64(a[i]) - float64(b[i])
		s += e * e
	}
	return math.Sqrt(s)
}

// classSums adds each class's K rows of a C·K×D gradient: a sub-center
// tie may send the class's gradient to another of its rows.
func classSums(g []float32, k, d int) []float32 {
	out := make([]float32, len(g)/k)
	for r := 0; r < len(g)/d; r++ {
		c := r / k
		for q := 0; q < d; q++ {
			out[c*d+q] += g[r*d+q]
		}
	}
	return out
}
