package loss_test

import (
	"fmt"

	"github.com/marginloss/marginloss/loss"
)

// AdaFace's margin follows the feature norm: the state (the norms' EMAs)
// moves at every call, and AppendMargins gives each row's ŝ.
func ExampleAdaFace() {
	x := loss.Matrix{Rows: 3, Cols: 2, Data: []float32{9, 1, -4, 20, 30, -3}}
	w := loss.Matrix{Rows: 3, Cols: 2, Data: []float32{1, 0, 0, 1, -1, 0}}
	l := loss.AdaFace(16, 0.4, 0.333, 1) // t_alpha 1: this batch's statistics
	v, err := l.Loss(x, w, []int32{0, 1, 0}, nil, nil)
	if err != nil {
		panic(err)
	}
	st := l.State()
	fmt.Printf("loss %.4f, μ %.3f, σ %.3f, ŝ %.3f\n", v, st.BatchMean, st.BatchStd, l.AppendMargins(nil))
	// Output: loss 0.0008, μ 19.867, σ 10.557, ŝ [-0.341 0.017 0.324]
}

// MagFace at the cosine level: the norms enter the margin and the
// regulariser, and dnorms is their gradient.
func ExampleMarginSoftmax_LossFromCosinesNorms() {
	cos := loss.Matrix{Rows: 2, Cols: 3, Data: []float32{0.8, 0.1, -0.3, 0.2, 0.6, 0.1}}
	norms := []float32{30, 90}
	dnorms := make([]float32, 2)
	l := loss.MagFace(64, 10, 110, 0.45, 0.8, 35)
	v, err := l.LossFromCosinesNorms(cos, norms, []int32{0, 1}, nil, dnorms)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f, margins %.4f, dnorms %.4f\n", v, l.AppendMargins(nil), dnorms)
	// Output: loss 10.1167, margins [0.5200 0.7300], dnorms [-0.0180 0.1109]
}

// ElasticFace draws a margin per row and call from Seed; Margins replays
// given draws instead (and draws nothing).
func ExampleElasticArcFace() {
	x, w, labels := exampleData()
	l := loss.ElasticArcFace(4, 0.5, 0.05)
	l.Seed = 7
	if _, err := l.Loss(x, w, labels, nil, nil); err != nil {
		panic(err)
	}
	fmt.Printf("drawn %.4f, calls %d\n", l.AppendMargins(nil), l.State().Calls)
	l.Margins = []float32{0.45, 0.55}
	if _, err := l.Loss(x, w, labels, nil, nil); err != nil {
		panic(err)
	}
	fmt.Printf("given %.4f, calls %d\n", l.AppendMargins(nil), l.State().Calls)
	// Output:
	// drawn [0.4692 0.5443], calls 1
	// given [0.4500 0.5500], calls 1
}

// CurricularFace on two class shards: every row's target cosine is needed
// before the logits (the hard-negative threshold, T), so each shard
// Prepares its rows' targets and the transport sums them (here in process).
func ExampleShardedHead_Prepare() {
	x, w, labels := exampleData()
	head := loss.CurricularFace(4, 0.5, 0.1)
	shards := []*loss.ShardedHead{{Head: head, Offset: 0, Classes: 3}, {Head: head, Offset: 2, Classes: 3}}
	ws := []loss.Matrix{{Rows: 2, Cols: 2, Data: w.Data[:4]}, {Rows: 1, Cols: 2, Data: w.Data[4:]}}
	st := []*loss.ShardStats{{}, {}}
	targets := make([]float32, x.Rows)
	for k, sh := range shards {
		if err := sh.Prepare(x, ws[k], labels, st[k]); err != nil {
			panic(err)
		}
		for i, v := range st[k].Targets {
			targets[i] += v // allreduce(Targets, SUM)
		}
	}
	for k, sh := range shards {
		copy(st[k].Targets, targets)
		if err := sh.Forward(x, ws[k], labels, st[k]); err != nil {
			panic(err)
		}
	}
	var merged loss.ShardStats
	if err := loss.MergeShardStats(&merged, st...); err != nil {
		panic(err)
	}
	v, err := shards[0].Backward(x, ws[0], labels, &merged, nil, nil)
	if err != nil {
		panic(err)
	}
	ref, _ := loss.CurricularFace(4, 0.5, 0.1).Loss(x, w, labels, nil, nil)
	fmt.Printf("sharded %.4f, whole %.4f, T %.4f\n", v, ref, shards[1].State().T)
	// Output: sharded 0.0870, whole 0.0870, T 0.0987
}
