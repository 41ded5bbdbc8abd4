package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/marginloss/marginloss/eval"
	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// config is everything the flags set. The defaults are examples/mnist's:
// ArcFace s=30 m=0.5, MLP 784→256→128, global batch 128, 8 epochs of SGD
// with lr 0.1 (warm-up, cosine decay), momentum 0.9, weight decay 5e-4 and
// gradient-norm clipping at 5. The steps are optim.SGD's (torch.optim.SGD):
// the backbone's replicated on every rank, W's on each rank's own rows (a
// dW is stored: the clipping needs W's gradient norm, summed over the
// shards, before W is stepped, so the head's fused step does not fit).
type config struct {
	Epochs      int
	Batch       int // global batch: the ranks share its rows
	LR          float64
	Momentum    float64
	WeightDecay float64
	Warmup      float64 // epochs of linear learning-rate warm-up
	Clip        float64 // global gradient-norm clipping (0 = off)
	Hidden      int
	EmbedDim    int
	S, M        float64 // ArcFace scale and margin
	Seed        uint64
	TrainSize   int
	TestSize    int
	DataDir     string
	Stats       string // "allreduce" (MAX, Rescale, SUM) or "allgather" (MergeShardStats)
	EvalEach    bool
}

func defaultConfig() config {
	return config{
		Epochs: 8, Batch: 128, LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4, Warmup: 0.5, Clip: 5,
		Hidden: 256, EmbedDim: 128, S: 30, M: 0.5, Seed: 1, Stats: "allreduce",
	}
}

// checkResult compares one sharded step with the unsharded loss on rank 0.
// A "max rel diff" of matrices a (sharded) and b (single process) is
// max_i |a_i − b_i| / max_i |b_i|; the loss's is |a − b| / |b|.
type checkResult struct {
	Loss, DX, DW float64
}

// result is what a run reports; every rank gets the same values.
type result struct {
	Check     checkResult
	Accuracy  float64
	Verify    eval.VerifyResult // insightface's protocol on the disjoint test pairs
	VerifyErr error             // why there is no Verify (too few test images)
	Identical bool              // backbone weights bitwise equal on all ranks at the end
	TrainTime time.Duration
	Losses    []float32 // mean loss of each epoch
}

// trainer is one rank's state.
type trainer struct {
	c     Comm
	cfg   config
	rng   *rand.Rand // initialisation, then the shuffles
	net   *mnistmlp.MLP
	bb    []*mnistmlp.Param // the backbone's parameters (replicated)
	w     *mnistmlp.Param   // this rank's rows of W: classes [head.Offset, head.Offset+rows)
	bbSt  []optim.State     // the backbone's optimizer state, one per parameter
	wSt   optim.State       // W's (this shard's rows)
	rows  int
	D     int
	head  *ShardedHead
	st    ShardStats
	parts []*ShardStats // the all-gather path's parts

	// per-step buffers
	local, packed, x, dx, scratch, statBuf []float32
	labels                                 []int32
}

// newShardHead builds this rank's head for the classes [off, off+rows).
func newShardHead(c Comm, cfg config, off int) *ShardedHead {
	h := &ShardedHead{Head: loss.ArcFace(float32(cfg.S), float32(cfg.M)), Offset: off, Classes: mnistmlp.NumClass}
	return h
}

// newTrainer initialises the model of one rank. Every rank draws the same
// backbone and the same full W from the seed, in examples/mnist's order
// (whose shuffles then continue the same generator), and keeps its rows
// of W.
func newTrainer(c Comm, cfg config) (*trainer, error) {
	if cfg.Stats != "allreduce" && cfg.Stats != "allgather" {
		return nil, fmt.Errorf("-stats: want allreduce or allgather, not %q", cfg.Stats)
	}
	if c.Size() > mnistmlp.NumClass {
		return nil, fmt.Errorf("%d ranks but only %d classes: every rank needs at least one class", c.Size(), mnistmlp.NumClass)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d6e697374))
	D := cfg.EmbedDim
	net := mnistmlp.NewMLP([]int{mnistmlp.ImageSize, cfg.Hidden, D}, rng)
	// The first layer expands the sparse images to a dense batch and uses
	// the asm GEMMs (examples/mnist's -input dense).
	net.DenseInput = true
	full := make([]float32, mnistmlp.NumClass*D)
	std := math.Sqrt(1 / float64(D))
	for i := range full {
		full[i] = float32(rng.NormFloat64() * std)
	}
	lo, hi := split(mnistmlp.NumClass, c.Size(), c.Rank())
	w := mnistmlp.NewParam((hi-lo)*D, true)
	copy(w.W, full[lo*D:hi*D])
	t := &trainer{c: c, cfg: cfg, rng: rng, net: net, bb: net.Params(), w: w, rows: hi - lo, D: D,
		head: newShardHead(c, cfg, lo)}
	t.bbSt = make([]optim.State, len(t.bb))
	return t, nil
}

// headStep runs the distributed forward and backward of the head for the
// global batch (indices into d): this rank embeds its rows, the embeddings
// and labels are all-gathered, the sharded head's statistics are combined
// across ranks and its partial dx all-reduced. It returns the loss; t.x
// holds the global embeddings, t.labels their labels, t.dx the full
// dL/dx and t.w.Grad this shard's dW.
func (t *trainer) headStep(d *mnistmlp.Dataset, batch []int) (float32, error) {
	c, D := t.c, t.D
	n := len(batch)
	lo, hi := split(n, c.Size(), c.Rank())
	emb := t.net.Forward(d, batch[lo:hi])
	// Each gathered row is the embedding and then the label (exact as a
	// float32 below 2^24), so one Allgather carries both.
	t.local = mnistmlp.Grow(t.local, (hi-lo)*(D+1))
	for i := range hi - lo {
		copy(t.local[i*(D+1):], emb[i*D:(i+1)*D])
		t.local[i*(D+1)+D] = float32(d.Labels[batch[lo+i]])
	}
	t.packed = mnistmlp.Grow(t.packed, n*(D+1))
	var err error
	if t.scratch, err = allgatherRows(c, t.local, n, D+1, t.packed, t.scratch); err != nil {
		return 0, err
	}
	t.x, t.labels = mnistmlp.Grow(t.x, n*D), mnistmlp.Grow(t.labels, n)
	for i := range n {
		copy(t.x[i*D:(i+1)*D], t.packed[i*(D+1):])
		t.labels[i] = int32(t.packed[i*(D+1)+D])
	}
	x := loss.Matrix{Rows: n, Cols: D, Data: t.x}
	w := loss.Matrix{Rows: t.rows, Cols: D, Data: t.w.W}

	if err := t.head.Forward(x, w, t.labels, &t.st); err != nil {
		return 0, fmt.Errorf("ShardedHead.Forward: %w", err)
	}
	if err := t.combineStats(); err != nil {
		return 0, err
	}
	t.dx = mnistmlp.Grow(t.dx, n*D)
	dx := loss.Matrix{Rows: n, Cols: D, Data: t.dx}
	dw := loss.Matrix{Rows: t.rows, Cols: D, Data: t.w.Grad}
	v, err := t.head.Backward(x, w, t.labels, &t.st, &dx, &dw)
	if err != nil {
		return 0, fmt.Errorf("ShardedHead.Backward: %w", err)
	}
	// Each shard's dx covers the logits of its classes: the sum over the
	// shards is the gradient of the loss.
	if err := c.AllreduceSum(t.dx); err != nil {
		return 0, err
	}
	return v, nil
}

// combineStats turns this shard's statistics into the global ones: MAX
// all-reduce, Rescale, SUM all-reduce; or, with -stats allgather, one
// all-gather of every shard's statistics and MergeShardStats.
func (t *trainer) combineStats() error {
	st := &t.st
	if t.cfg.Stats == "allreduce" {
		if err := t.c.AllreduceMax(st.Max); err != nil {
			return err
		}
		st.Rescale()
		return t.c.AllreduceSum(st.Sums)
	}
	size, n := t.c.Size(), len(st.Max)
	if len(st.Sums) != 3*n {
		return fmt.Errorf("ShardStats: %d sums for %d rows", len(st.Sums), n)
	}
	per := 4 * n
	send := mnistmlp.Grow(t.statBuf, per*(size+1))
	t.statBuf = send
	copy(send, st.Max)
	copy(send[n:], st.Sums)
	recv := send[per:]
	if err := t.c.Allgather(send[:per], recv); err != nil {
		return err
	}
	if len(t.parts) != size {
		t.parts = make([]*ShardStats, size)
		for r := range t.parts {
			t.parts[r] = &ShardStats{}
		}
	}
	for r, p := range t.parts {
		b := recv[r*per : (r+1)*per]
		p.Max, p.Sums = b[:n:n], b[n:per:per]
	}
	return MergeShardStats(st, t.parts...)
}

// step is one training step on the global batch; it returns the loss.
func (t *trainer) step(d *mnistmlp.Dataset, batch []int, lr float32) (float32, error) {
	v, err := t.headStep(d, batch)
	if err != nil {
		return 0, err
	}
	lo, hi := split(len(batch), t.c.Size(), t.c.Rank())
	t.net.Backward(t.dx[lo*t.D : hi*t.D])
	// Each rank's backbone gradient covers its rows of the batch; their SUM
	// is the gradient of the global loss. The scale after the SUM is 1
	// because the loss is already the mean over the global batch (DDP,
	// which averages the gradients of per-rank mean losses, scales by
	// 1/size instead).
	for _, p := range t.bb {
		if err := t.c.AllreduceSum(p.Grad); err != nil {
			return 0, err
		}
	}
	// Global gradient-norm clipping as in examples/mnist: the backbone's
	// part is the same on every rank, W's is summed over the shards.
	if t.cfg.Clip > 0 {
		wsq := []float32{float32(mnistmlp.SumSquares([]*mnistmlp.Param{t.w}))}
		if err := t.c.AllreduceSum(wsq); err != nil {
			return 0, err
		}
		norm := math.Sqrt(mnistmlp.SumSquares(t.bb) + float64(wsq[0]))
		if norm > t.cfg.Clip {
			f := float32(t.cfg.Clip / norm)
			mnistmlp.ScaleGrads(t.bb, f)
			mnistmlp.ScaleGrads([]*mnistmlp.Param{t.w}, f)
		}
	}
	// optim.SGD's step is elementwise, so stepping W's rows shard by shard
	// gives the bits of stepping the whole W.
	sgd := func(p *mnistmlp.Param, st *optim.State) error {
		o := optim.SGD{LR: lr, Momentum: float32(t.cfg.Momentum)}
		if p.Decay {
			o.WeightDecay = float32(t.cfg.WeightDecay)
		}
		return o.Step(p.W, p.Grad, st)
	}
	for i, p := range t.bb {
		if err := sgd(p, &t.bbSt[i]); err != nil {
			return 0, err
		}
	}
	return v, sgd(t.w, &t.wSt) // dW stays on its shard
}

// gatherW returns the full C×D class matrix on every rank.
func (t *trainer) gatherW(src []float32) ([]float32, error) {
	full := make([]float32, mnistmlp.NumClass*t.D)
	var err error
	t.scratch, err = allgatherRows(t.c, src, mnistmlp.NumClass, t.D, full, t.scratch)
	return full, err
}

// check runs one sharded step (without an update) on the first batch of
// the training set and compares it on rank 0 with the unsharded loss on
// the gathered batch and the gathered W.
func (t *trainer) check(d *mnistmlp.Dataset) (checkResult, error) {
	batch := make([]int, min(t.cfg.Batch, d.N))
	for i := range batch {
		batch[i] = i
	}
	v, err := t.headStep(d, batch)
	if err != nil {
		return checkResult{}, err
	}
	wFull, err := t.gatherW(t.w.W)
	if err != nil {
		return checkResult{}, err
	}
	dwFull, err := t.gatherW(t.w.Grad)
	if err != nil {
		return checkResult{}, err
	}
	var r checkResult
	if t.c.Rank() == 0 {
		n, D := len(batch), t.D
		single := loss.ArcFace(float32(t.cfg.S), float32(t.cfg.M))
		dx := loss.Matrix{Rows: n, Cols: D, Data: make([]float32, n*D)}
		dw := loss.Matrix{Rows: mnistmlp.NumClass, Cols: D, Data: make([]float32, mnistmlp.NumClass*D)}
		want, err := single.Loss(loss.Matrix{Rows: n, Cols: D, Data: t.x},
			loss.Matrix{Rows: mnistmlp.NumClass, Cols: D, Data: wFull}, t.labels, &dx, &dw)
		if err != nil {
			return r, fmt.Errorf("single-process loss: %w", err)
		}
		r = checkResult{
			Loss: math.Abs(float64(v)-float64(want)) / math.Abs(float64(want)),
			DX:   maxRelDiff(t.dx, dx.Data),
			DW:   maxRelDiff(dwFull, dw.Data),
		}
	}
	// Every rank reports rank 0's numbers.
	buf := []float32{float32(r.Loss), float32(r.DX), float32(r.DW)}
	if err := t.c.AllreduceSum(buf); err != nil {
		return r, err
	}
	return checkResult{float64(buf[0]), float64(buf[1]), float64(buf[2])}, nil
}

// maxRelDiff is max_i |a_i − b_i| / max_i |b_i| (0 when both are all 0).
func maxRelDiff(a, b []float32) float64 {
	var num, den float64
	for i, v := range b {
		num = max(num, math.Abs(float64(a[i])-float64(v)))
		den = max(den, math.Abs(float64(v)))
	}
	if num == 0 {
		return 0
	}
	return num / den
}

// evaluate scores the test set: the accuracy of the nearest class weight
// by cosine (eval.Top1) and verification by insightface's protocol
// (eval.Verification) on mnistmlp.VerificationPairs, the trainer's disjoint
// pairs. Each rank embeds its share of the test set; a SUM all-reduce of
// the rows (each row is nonzero on one rank only, so the sum is exact)
// gives every rank all embeddings, and every rank computes the same scores.
// A verification error (too few test images) is returned in verr.
func (t *trainer) evaluate(test *mnistmlp.Dataset) (acc float64, ver eval.VerifyResult, verr error, err error) {
	wFull, err := t.gatherW(t.w.W)
	if err != nil {
		return 0, ver, nil, err
	}
	D := t.D
	emb := make([]float32, test.N*D)
	lo, hi := split(test.N, t.c.Size(), t.c.Rank())
	rows := make([]int, 0, 500)
	for b := lo; b < hi; b += 500 {
		rows = rows[:0]
		for i := b; i < min(b+500, hi); i++ {
			rows = append(rows, i)
		}
		copy(emb[b*D:], t.net.Forward(test, rows)[:len(rows)*D])
	}
	if err := t.c.AllreduceSum(emb); err != nil {
		return 0, ver, nil, err
	}
	if test.N == 0 {
		return 0, ver, errors.New("no test images"), nil
	}
	all := loss.Matrix{Rows: test.N, Cols: D, Data: emb}
	if acc, err = eval.Top1(all, loss.Matrix{Rows: len(wFull) / D, Cols: D, Data: wFull}, test.Labels); err != nil {
		return 0, ver, nil, err
	}
	ia, ib, same := mnistmlp.VerificationPairs(test.Labels)
	a := loss.Matrix{Rows: len(same), Cols: D, Data: make([]float32, len(same)*D)}
	b := loss.Matrix{Rows: len(same), Cols: D, Data: make([]float32, len(same)*D)}
	for k := range same {
		copy(a.Row(k), all.Row(ia[k]))
		copy(b.Row(k), all.Row(ib[k]))
	}
	ver, verr = eval.Verification(a, b, same, eval.VerifyOptions{})
	return acc, ver, verr, nil
}

// identical reports whether every rank holds bitwise the same backbone:
// each rank compares its weights with their MAX over the ranks.
func (t *trainer) identical() (bool, error) {
	var differ float32
	for _, p := range t.bb {
		m := append([]float32(nil), p.W...)
		if err := t.c.AllreduceMax(m); err != nil {
			return false, err
		}
		for i, v := range m {
			if v != p.W[i] {
				differ = 1
				break
			}
		}
	}
	buf := []float32{differ}
	if err := t.c.AllreduceMax(buf); err != nil {
		return false, err
	}
	return buf[0] == 0, nil
}

// train runs the check step, trains for cfg.Epochs and evaluates. Progress
// goes to out on rank 0 only (out may be nil).
func train(c Comm, cfg config, trainSet, test *mnistmlp.Dataset, out io.Writer) (result, error) {
	if out == nil || c.Rank() != 0 {
		out = io.Discard
	}
	var res result
	if trainSet.N == 0 {
		return res, errors.New("empty training set")
	}
	t, err := newTrainer(c, cfg)
	if err != nil {
		return res, err
	}
	if res.Check, err = t.check(trainSet); err != nil {
		return res, fmt.Errorf("check step: %w", err)
	}
	fmt.Fprintf(out, "check step (%d rows, W sharded %s): loss rel diff %.3g, dx max rel diff %.3g, dw max rel diff %.3g\n",
		min(cfg.Batch, trainSet.N), shardDesc(c.Size()), res.Check.Loss, res.Check.DX, res.Check.DW)

	n := trainSet.N
	batch := min(cfg.Batch, n)
	itersPerEpoch := (n + batch - 1) / batch
	totalIters := itersPerEpoch * cfg.Epochs
	warm := int(cfg.Warmup * float64(itersPerEpoch))
	lrAt := func(it int) float32 {
		if it < warm {
			return float32(cfg.LR * float64(it+1) / float64(warm))
		}
		p := float64(it-warm) / float64(max(totalIters-warm, 1))
		return float32(cfg.LR * 0.5 * (1 + math.Cos(math.Pi*p)))
	}
	// The same seed on every rank: the same shuffles, so the ranks agree on
	// every global batch and each reads only its rows.
	rng := t.rng
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	start := time.Now()
	it := 0
	for ep := range cfg.Epochs {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum float64
		t0 := time.Now()
		for lo := 0; lo < n; lo += batch {
			hi := min(lo+batch, n)
			v, err := t.step(trainSet, order[lo:hi], lrAt(it))
			if err != nil {
				return res, fmt.Errorf("epoch %d, iteration %d: %w", ep+1, it, err)
			}
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return res, fmt.Errorf("epoch %d, iteration %d: loss is %v", ep+1, it, v)
			}
			sum += float64(v) * float64(hi-lo)
			it++
		}
		res.Losses = append(res.Losses, float32(sum/float64(n)))
		note := ""
		if cfg.EvalEach && ep+1 < cfg.Epochs {
			acc, _, _, err := t.evaluate(test)
			if err != nil {
				return res, err
			}
			note = fmt.Sprintf(", test accuracy %.4f", acc)
		}
		fmt.Fprintf(out, "epoch %d/%d: mean loss %.4f, %.1fs%s\n", ep+1, cfg.Epochs, sum/float64(n), time.Since(t0).Seconds(), note)
	}
	res.TrainTime = time.Since(start)
	if res.Identical, err = t.identical(); err != nil {
		return res, err
	}
	if res.Accuracy, res.Verify, res.VerifyErr, err = t.evaluate(test); err != nil {
		return res, err
	}
	return res, nil
}

// shardDesc describes the class split, e.g. "0-4|5-9".
func shardDesc(size int) string {
	s := ""
	for r := range size {
		lo, hi := split(mnistmlp.NumClass, size, r)
		if r > 0 {
			s += "|"
		}
		s += fmt.Sprintf("%d-%d", lo, hi-1)
	}
	return s
}
