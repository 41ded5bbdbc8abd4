package loss

import (
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/marginloss/marginloss/asm"
)

// ShardedHead is one process's part of a class-sharded (model-parallel)
// margin head, as in insightface's arcface_torch: the C class rows are
// split across processes, each holding classes [Offset, Offset+w.Rows/K)
// of Classes in total (K = Head.SubCenters, or 1), and every process sees
// the whole batch (the embeddings all-gathered). A step is
//
//	h.Forward(x, w, labels, &st)     // this shard's per-row statistics
//	allreduce(st.Max, MAX)           // any transport: MPI, NCCL, gRPC…
//	st.Rescale()
//	allreduce(st.Sums, SUM)
//	loss, err := h.Backward(x, w, labels, &st, dx, dw)
//	allreduce(dx, SUM)               // partial dx of every shard
//
// or, over an all-gather, MergeShardStats(&st, parts...) in place of the
// two all-reduces and Rescale. Every shard then holds the same loss, its
// own dw and a partial dx; the sum of the partial dx is the full gradient.
// K in-process shards reproduce the unsharded Head.Loss within float32
// rounding (1e-6 relative, TestShardedMatchesHead).
//
// Head's options apply (Reduction, margins, EasyMargin, DetachMargin,
// SubCenters, LabelSmoothing over all Classes, TileBudget); Accumulate
// adds the shard's dw and partial dx. Backward must see the same x, w and
// labels (same slices, unchanged) as the Forward before it: it reuses that
// call's norms and, within TileBudget, its logit tiles. The configuration
// (Head's parameters and options, SampleRate) must not change between
// the two: Backward returns an error wrapping ErrParam when it did.
// Backward may be called more than once after one Forward (for example dx
// first, then dw): each call computes from the Forward's state alone, so
// every call gives bitwise what the first would have (a kept logit tile
// serves the first Backward; later ones recompute the tiles, as beyond
// TileBudget). A ShardedHead keeps
// its own scratch; calls on one value are serialised.
//
// Classes is at most math.MaxInt32 (labels are int32).
type ShardedHead struct {
	// Head is the loss; the ShardedHead only reads its configuration.
	Head *MarginSoftmax
	// Offset is the first class this shard holds.
	Offset int
	// Classes is C, the number of classes over all shards.
	Classes int
	// SampleRate, when in (0, 1), samples this shard's classes as
	// arcface_torch's PartialFC_V2 does: each Forward keeps every class of
	// the shard that occurs in the labels plus negatives drawn uniformly
	// without replacement from its other classes, ⌈SampleRate·Cs⌉ in all
	// (Cs the shard's classes; the rule and the draw are PartialFC's), and
	// the statistics and gradients cover only those; dw rows of the other
	// classes are zeroed (left as they are with Accumulate). Sampled returns
	// the set. 0 or 1 means every class. LabelSmoothing needs every class
	// (ErrParam otherwise): its mean would be over the union of all shards'
	// samples, whose size no shard knows.
	SampleRate float32
	// Seed seeds the draw; with the number of earlier successful Forward
	// calls on this value it fixes S, whatever GOMAXPROCS is.
	Seed uint64

	mu    sync.Mutex
	ws    headWorkspace
	fwd   forwardKey // the inputs of the last successful Forward
	ready bool
	// the configuration of the last successful Forward
	cfg  headConfig
	rate float32
	// that Forward's own statistics per row, before any combine: the
	// largest non-target logit, Σ e^(z−max) relative to it, and the target
	// logit (rows whose label is on this shard); Backward checks the
	// combined statistics against them.
	ownMax, ownSum, ownZt []float32

	// sampling (SampleRate in (0, 1))
	calls uint64       // successful Forward calls so far
	pfc   pfcWorkspace // the draw: S as local class indices, ascending
	sampS []int32      // S of the last successful Forward, global classes
	loc   []int32      // the batch's labels on this shard, local
	labS  []int32      // per row: position in S of its label, or |S| (elsewhere)
	wS    []float32    // the rows of S
	dwS   []float32    // their gradient
	dwSM  Matrix       // dwS as the head's dw

	// the adaptive state (AdaFace, CurricularFace, ElasticFace), taken
	// from Head.State() at the first Forward (or SetState)
	state    AdaptiveState
	stateSet bool
	prep     headWorkspace // Prepare's own scratch (Forward's is kept for Backward)
}

// State returns the ShardedHead's own copy of the adaptive state: Head's
// until the first Forward (or SetState), then updated by every successful
// Forward. A ShardedHead keeps its own copy so that Head stays read-only
// and in-process shards can share one Head.
func (h *ShardedHead) State() AdaptiveState {
	if h == nil || h.Head == nil {
		return AdaptiveState{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stateSet {
		return h.Head.State()
	}
	return h.state
}

// SetState replaces the ShardedHead's copy of the adaptive state (ErrParam
// as MarginSoftmax.SetState).
func (h *ShardedHead) SetState(st AdaptiveState) error {
	if h == nil {
		return errNilShard
	}
	if err := checkState(st); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state, h.stateSet = st, true
	return nil
}

// Prepare fills this shard's st.Targets (or sets it to nil when the head
// does not need it, NeedsTargets): per row the target cosine where the
// label is on this shard, 0 elsewhere. All-reduce st.Targets with SUM
// before Forward. x, w and labels are those of the Forward that follows.
// On error st is left as it was.
func (h *ShardedHead) Prepare(x, w Matrix, labels []int32, st *ShardStats) error {
	if st == nil {
		return fmt.Errorf("%w: nil *ShardStats", ErrShape)
	}
	if h == nil || h.Head == nil {
		return errNilShard
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.Head
	l.mu.Lock()
	defer l.mu.Unlock()
	g, err := l.margin()
	if err != nil {
		return err
	}
	if _, err := h.check(x, w, labels); err != nil {
		return err
	}
	if !l.needsTargets() {
		st.Targets = nil
		return nil
	}
	n := x.Rows
	outs := [...]span{statSpan("st.Targets", st.Targets, n)}
	ins := [...]span{spanOf("x", x.Data), spanOf("w", w.Data), spanOf("labels", labels)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return err
	}
	if n == 0 {
		st.Targets = grow(st.Targets, 0)
		return nil
	}
	ws := &h.prep
	ws.setup(l, g, x, w, labels, false, classSpan{h.Offset, h.Classes})
	defer ws.release()
	if err := ws.norms(); err != nil {
		return err
	}
	st.Targets = grow(st.Targets, n)
	for i := 0; i < n; i++ {
		st.Targets[i] = 0
		if ws.lab[i] >= 0 {
			st.Targets[i] = ws.t[i]
		}
	}
	return nil
}

// checkTargets checks the reduced Targets of a NeedsTargets head against
// this shard's own rows (their values must be bit for bit this shard's).
func (h *ShardedHead) checkTargets(st *ShardStats, ws *headWorkspace) error {
	n := ws.n
	if len(st.Targets) != n {
		return fmt.Errorf("%w: %s needs every row's target cosine: call Prepare and all-reduce ShardStats.Targets (SUM) before Forward (Targets has %d values for %d rows)", ErrParam, h.Head.kind.desc().name, len(st.Targets), n)
	}
	for i, v := range st.Targets {
		if !isFinite(v) {
			return fmt.Errorf("%w: ShardStats.Targets[%d] = %v", ErrNonFinite, i, v)
		}
		if !(v >= -1 && v <= 1) {
			return fmt.Errorf("%w: ShardStats.Targets[%d] = %g, outside [−1, 1]", ErrParam, i, v)
		}
		if ws.lab[i] >= 0 && v != ws.t[i] {
			return fmt.Errorf("%w: ShardStats.Targets[%d] = %g, but this shard holds the label and computed %g (Targets of another batch, or not Prepare's)", ErrParam, i, v, ws.t[i])
		}
	}
	return nil
}

// sampling reports whether Forward samples this shard's classes.
func (h *ShardedHead) sampling() bool { return h.SampleRate > 0 && h.SampleRate < 1 }

// Sampled returns the classes (global indices, ascending) that the last
// successful Forward kept on this shard: all of them without sampling.
func (h *ShardedHead) Sampled() []int32 {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int32(nil), h.sampS...)
}

// forwardKey identifies a Forward call's inputs by address and size, to
// check that Backward gets the same ones (it holds no reference).
type forwardKey struct {
	x, w, labels uintptr
	n, rows, d   int
	offset, cls  int
}

func keyOf(x, w Matrix, labels []int32, offset, classes int) forwardKey {
	addr := func(p unsafe.Pointer) uintptr { return uintptr(p) }
	return forwardKey{
		x: addr(unsafe.Pointer(unsafe.SliceData(x.Data))), w: addr(unsafe.Pointer(unsafe.SliceData(w.Data))),
		labels: addr(unsafe.Pointer(unsafe.SliceData(labels))),
		n:      x.Rows, rows: w.Rows, d: w.Cols, offset: offset, cls: classes,
	}
}

// ShardStats are one shard's per-row statistics for a batch of N rows, in
// two flat buffers that a transport reduces as they are.
type ShardStats struct {
	// Max holds, per row, the largest non-target logit: all-reduce it with
	// MAX. Before that it is this shard's (−Inf when the shard has no
	// non-target class for the row).
	Max []float32
	// Sums holds 3·N values, all-reduced with SUM after Rescale: per row,
	// Σ e^(z−Max) over the non-target logits (N values), then the target
	// logit (N values, 0 on every shard but the label's), then Σ z over all
	// classes (N values; with LabelSmoothing only, else 0).
	Sums []float32
	// Targets holds, per row, the raw target cosine t_i (the class cosine,
	// max over K) on the shard that holds class y_i and 0 elsewhere:
	// all-reduce it with SUM after Prepare and before Forward. Only for
	// heads with NeedsTargets; nil otherwise. (Adding zeros is exact, so
	// every shard then holds the owner's float32 value bit for bit, and
	// masks, sorts and T agree across shards.)
	Targets []float32

	local []float32 // this shard's Max, kept for Rescale
}

// Rows is the number of rows the statistics are for.
func (st *ShardStats) Rows() int {
	if st == nil {
		return 0
	}
	return len(st.Max)
}

// Rescale, between the MAX and the SUM all-reduce, rescales this shard's
// Σ e^(z−m) from its own maxima to the reduced ones now in Max. It does
// nothing on statistics that did not come from Forward.
func (st *ShardStats) Rescale() {
	n := len(st.Max)
	if len(st.local) != n || len(st.Sums) != 3*n {
		return
	}
	for i, m := range st.Max {
		lm := st.local[i]
		switch {
		case math.IsInf(float64(lm), -1):
			st.Sums[i] = 0
		case lm != m:
			st.Sums[i] = float32(float64(st.Sums[i]) * math.Exp(float64(lm)-float64(m)))
		}
		st.local[i] = m
	}
}

func (st *ShardStats) resize(n int) {
	st.Max, st.Sums, st.local = grow(st.Max, n), grow(st.Sums, 3*n), grow(st.local, n)
}

// MergeShardStats combines the statistics of every shard, as Forward left
// them (each part's Max its own maxima, its sums relative to them), into
// dst: the all-gather path. dst may be one of parts; the parts are merged
// in order, in float64. It returns an error wrapping ErrShape when the
// parts are empty or differ in size, ErrNonFinite on a NaN or +Inf, and
// ErrOverlap when dst's buffers share memory with a part's in any other
// way than dst being that part (or with each other). On error dst is
// left as it was.
func MergeShardStats(dst *ShardStats, parts ...*ShardStats) error {
	if dst == nil || len(parts) == 0 {
		return fmt.Errorf("%w: MergeShardStats needs a destination and at least one part", ErrShape)
	}
	n := -1
	for k, p := range parts {
		if p == nil {
			return fmt.Errorf("%w: MergeShardStats part %d is nil", ErrShape, k)
		}
		if n < 0 {
			n = len(p.Max)
		}
		if len(p.Max) != n || len(p.Sums) != 3*n {
			return fmt.Errorf("%w: MergeShardStats part %d has %d maxima and %d sums, want %d and %d", ErrShape, k, len(p.Max), len(p.Sums), n, 3*n)
		}
		for i, v := range p.Max {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 1) {
				return fmt.Errorf("%w: MergeShardStats part %d Max[%d] = %v", ErrNonFinite, k, i, v)
			}
		}
		if i := indexNonFinite(p.Sums); i >= 0 {
			return fmt.Errorf("%w: MergeShardStats part %d Sums[%d] = %v", ErrNonFinite, k, i, p.Sums[i])
		}
	}
	if err := mergeOverlap(dst, parts, n); err != nil {
		return err
	}
	if !inParts(dst, parts) {
		dst.resize(n)
	}
	for i := 0; i < n; i++ {
		mx := math.Inf(-1)
		for _, p := range parts {
			mx = math.Max(mx, float64(p.Max[i]))
		}
		var sum, zt, zs float64
		for _, p := range parts {
			if m := float64(p.Max[i]); !math.IsInf(m, -1) {
				sum += float64(p.Sums[i]) * math.Exp(m-mx)
			}
			zt += float64(p.Sums[n+i])
			zs += float64(p.Sums[2*n+i])
		}
		dst.Max[i], dst.Sums[i], dst.Sums[n+i], dst.Sums[2*n+i] = float32(mx), float32(sum), float32(zt), float32(zs)
		if len(dst.local) == n {
			dst.local[i] = float32(mx)
		}
	}
	return nil
}

// statSpan is the memory a statistics buffer of n values will occupy: its
// own when its capacity holds n (resize reslices it), none otherwise.
func statSpan(name string, s []float32, n int) span {
	if cap(s) < n {
		return span{name: name}
	}
	return spanOf(name, s[:n])
}

// mergeOverlap reports an ErrOverlap error when the buffers MergeShardStats
// writes (dst's, as resized to n rows) share memory with each other or
// with a part's, other than dst being that very part.
func mergeOverlap(dst *ShardStats, parts []*ShardStats, n int) error {
	outs := [...]span{statSpan("dst.Max", dst.Max, n), statSpan("dst.Sums", dst.Sums, 3*n), statSpan("dst's saved maxima", dst.local, n)}
	if err := checkOverlap(outs[:], nil); err != nil {
		return err
	}
	for q, p := range parts {
		ins := [...]span{spanOf("Max", p.Max), spanOf("Sums", p.Sums)}
		for a, o := range outs {
			for b, in := range ins {
				if !o.overlaps(in) || p == dst && a == b {
					continue
				}
				return fmt.Errorf("%w: MergeShardStats %s shares memory with parts[%d].%s (only dst being one of the parts is allowed)", ErrOverlap, o.name, q, in.name)
			}
		}
	}
	return nil
}

func inParts(dst *ShardStats, parts []*ShardStats) bool {
	for _, p := range parts {
		if p == dst {
			return true
		}
	}
	return false
}

var errNilShard = fmt.Errorf("%w: nil *ShardedHead or ShardedHead.Head", ErrParam)

// check validates the configuration and the inputs, as Head.Loss does, for
// a shard holding w's classes.
func (h *ShardedHead) check(x, w Matrix, labels []int32) (k int, err error) {
	if h == nil || h.Head == nil {
		return 0, errNilShard
	}
	l := h.Head
	if err := checkMatrix("x", x); err != nil {
		return 0, err
	}
	if err := checkMatrix("w", w); err != nil {
		return 0, err
	}
	k = l.subCenters()
	if w.Rows < 1 || w.Cols < 1 || w.Rows%k != 0 {
		return 0, fmt.Errorf("%w: w is %d×%d, want at least one class and one dimension, rows a multiple of SubCenters = %d", ErrShape, w.Rows, w.Cols, k)
	}
	if !(h.SampleRate >= 0 && h.SampleRate <= 1) {
		return 0, fmt.Errorf("%w: ShardedHead SampleRate = %g, want 0 ≤ rate ≤ 1 (0 or 1: every class)", ErrParam, h.SampleRate)
	}
	if h.sampling() && l.LabelSmoothing != 0 {
		return 0, fmt.Errorf("%w: ShardedHead with SampleRate = %g and LabelSmoothing = %g: smoothing needs every class", ErrParam, h.SampleRate, l.LabelSmoothing)
	}
	if h.Classes > math.MaxInt32 {
		return 0, fmt.Errorf("%w: ShardedHead Classes = %d, want at most %d (labels and Sampled are int32)", ErrParam, h.Classes, math.MaxInt32)
	}
	if h.Offset < 0 || h.Classes < 1 || h.Offset > h.Classes-w.Rows/k {
		return 0, fmt.Errorf("%w: shard of classes [%d, %d) outside the %d classes", ErrParam, h.Offset, h.Offset+w.Rows/k, h.Classes)
	}
	if x.Cols != w.Cols && !(x.Rows == 0 && x.Cols == 0) {
		return 0, fmt.Errorf("%w: x has %d columns but w has %d (both are D)", ErrShape, x.Cols, w.Cols)
	}
	if err := checkLabels(labels, x.Rows, h.Classes); err != nil {
		return 0, err
	}
	return k, nil
}

// Forward computes this shard's statistics for the whole batch x (N×D, every
// process's embeddings), the global labels (in [0, Classes)) and this
// shard's class rows w (w.Rows/K classes from Offset), into st (resized to
// N rows). On error st is left as it was.
func (h *ShardedHead) Forward(x, w Matrix, labels []int32, st *ShardStats) error {
	if st == nil {
		return fmt.Errorf("%w: nil *ShardStats", ErrShape)
	}
	if h == nil || h.Head == nil {
		return errNilShard
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ready = false
	l := h.Head
	l.mu.Lock()
	defer l.mu.Unlock()
	g, err := l.margin()
	if err != nil {
		return err
	}
	if _, err := h.check(x, w, labels); err != nil {
		return err
	}
	n := x.Rows
	outs := [...]span{statSpan("st.Max", st.Max, n), statSpan("st.Sums", st.Sums, 3*n), statSpan("st (local maxima)", st.local, n)}
	ins := [...]span{spanOf("x", x.Data), spanOf("w", w.Data), spanOf("labels", labels)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return err
	}
	ws := &h.ws
	wIn, labIn, span := w, labels, classSpan{h.Offset, h.Classes}
	k := l.subCenters()
	if h.sampling() {
		if err := h.sample(w, labels, k); err != nil {
			return err
		}
		wIn = Matrix{Rows: len(h.pfc.s) * k, Cols: w.Cols, Data: h.wS}
		labIn, span = h.labS, classSpan{0, h.Classes}
	}
	if n > 0 {
		if err := l.checkCall(n); err != nil {
			return err
		}
		ws.setup(l, g, x, wIn, labIn, true, span)
		ws.magReg = h.Offset == 0
		defer ws.release()
		ws.lazyW = true
		if err := ws.norms(); err != nil {
			return err
		}
		if l.kind.adaptive() {
			var targets []float32
			if l.needsTargets() {
				if err := h.checkTargets(st, ws); err != nil {
					return err
				}
				targets = st.Targets
			}
			cur := h.state
			if !h.stateSet {
				cur = l.state
			}
			if err := ws.adaptiveMargins(l, cur, targets); err != nil {
				return err
			}
		}
		phiMax, _ := l.phiBounds()
		if err := ws.forwardChecked(ws.adaptivePhiMax(phiMax), 0, nil, nil); err != nil {
			return err
		}
	} else {
		for j := 0; j < w.Rows; j++ {
			if nr := asm.L2Norm(w.Row(j)); !isFinite(nr) {
				return fmt.Errorf("%w: w row %d has norm %v (a NaN or ±Inf element, or a norm beyond float32)", ErrNonFinite, j, nr)
			}
		}
	}
	st.resize(n)
	h.ownMax, h.ownSum, h.ownZt = grow(h.ownMax, n), grow(h.ownSum, n), grow(h.ownZt, n)
	for i := 0; i < n; i++ {
		mx, sum, zs := ws.rowStats(i)
		var zt float64
		if ws.lab[i] >= 0 {
			zt = float64(ws.zt[i])
		}
		st.Max[i], st.local[i] = float32(mx), float32(mx)
		if ws.eps != 0 {
			zs += zt
		}
		st.Sums[i], st.Sums[n+i], st.Sums[2*n+i] = float32(sum), float32(zt), float32(zs)
		h.ownMax[i], h.ownSum[i], h.ownZt[i] = st.Max[i], st.Sums[i], st.Sums[n+i]
	}
	if n > 0 && ws.ada.on {
		h.state, h.stateSet = ws.ada.state, true
	}
	h.fwd, h.ready = keyOf(x, w, labels, h.Offset, h.Classes), true
	h.cfg, h.rate = l.config(), h.SampleRate
	h.sampS = h.sampS[:0]
	if h.sampling() {
		for _, c := range h.pfc.s {
			h.sampS = append(h.sampS, c+int32(h.Offset))
		}
		h.calls++
	} else {
		for c := 0; c < w.Rows/k; c++ {
			h.sampS = append(h.sampS, int32(h.Offset+c))
		}
	}
	return nil
}

// sample draws this call's S (PartialFC's rule, from the shard's positives)
// and gathers its rows of w into h.wS and the rows' label positions into
// h.labS, checking the gathered rows' norms (rows outside S are never read).
func (h *ShardedHead) sample(w Matrix, labels []int32, k int) error {
	cs := w.Rows / k
	h.loc = h.loc[:0]
	for _, y := range labels {
		if y := int(y) - h.Offset; y >= 0 && y < cs {
			h.loc = append(h.loc, int32(y))
		}
	}
	m := h.pfc.sample(h.loc, cs, h.SampleRate, h.Seed, h.calls)
	row := k * w.Cols
	h.wS = grow(h.wS, m*row)
	for q, c := range h.pfc.s[:m] {
		src := w.Data[int(c)*row : (int(c)+1)*row]
		for r := 0; r < k; r++ {
			if nr := asm.L2Norm(src[r*w.Cols : (r+1)*w.Cols]); !isFinite(nr) {
				return fmt.Errorf("%w: w row %d (class %d) has norm %v (a NaN or ±Inf element, or a norm beyond float32)", ErrNonFinite, int(c)*k+r, int(c)+h.Offset, nr)
			}
		}
		copy(h.wS[q*row:(q+1)*row], src)
	}
	h.labS = grow(h.labS, len(labels))
	for i, y := range labels {
		if y := int32(int(y) - h.Offset); y >= 0 && int(y) < cs {
			h.labS[i] = h.pfc.position(y)
		} else {
			h.labS[i] = int32(m)
		}
	}
	return nil
}

// Backward takes the statistics combined over every shard and returns the
// loss (the same on every shard), this shard's dw (w.Rows×D) and a partial
// dx (N×D) that the transport sums over the shards; either may be nil.
// x, w and labels must be those of the Forward call before it, and the
// configuration the same (else an error wrapping ErrParam). The statistics
// must be the combine of that Forward's: Backward checks them against this
// shard's own part (the combined maximum is at least this shard's, the
// combined sum at least its share, and at least 1 where the maximum is
// finite; the target logit, where the label is on this shard, is this
// shard's), and returns ErrNonFinite for a NaN or +Inf and ErrParam for
// statistics that cannot be that combine (another batch's, or corrupted).
// On error dx and dw are left untouched. Backward may be repeated.
func (h *ShardedHead) Backward(x, w Matrix, labels []int32, st *ShardStats, dx, dw *Matrix) (float32, error) {
	if h == nil || h.Head == nil {
		return 0, errNilShard
	}
	if st == nil {
		return 0, fmt.Errorf("%w: nil *ShardStats", ErrShape)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.Head
	l.mu.Lock()
	defer l.mu.Unlock()
	if !h.ready {
		return 0, fmt.Errorf("%w: ShardedHead.Backward without a successful Forward before it", ErrParam)
	}
	if what := h.cfg.changed(l.config()); what != "" {
		return 0, fmt.Errorf("%w: ShardedHead.Backward: Head's %s changed since Forward (change the configuration before Forward)", ErrParam, what)
	}
	if h.SampleRate != h.rate {
		return 0, fmt.Errorf("%w: ShardedHead.Backward: SampleRate changed from %g to %g since Forward", ErrParam, h.rate, h.SampleRate)
	}
	if _, err := h.check(x, w, labels); err != nil {
		return 0, err
	}
	if h.fwd != keyOf(x, w, labels, h.Offset, h.Classes) {
		return 0, fmt.Errorf("%w: ShardedHead.Backward needs the x, w, labels, Offset and Classes of the Forward call before it", ErrParam)
	}
	n, d := x.Rows, w.Cols
	if len(st.Max) != n || len(st.Sums) != 3*n {
		return 0, fmt.Errorf("%w: ShardStats with %d maxima and %d sums, want %d and %d", ErrShape, len(st.Max), len(st.Sums), n, 3*n)
	}
	if err := h.checkStats(st); err != nil {
		return 0, err
	}
	if err := checkGrad("dx", dx, n, x.Cols); err != nil {
		return 0, err
	}
	if err := checkGrad("dw", dw, w.Rows, d); err != nil {
		return 0, err
	}
	outs := [...]span{gradSpan("dx", dx, "x"), gradSpan("dw", dw, "")}
	ins := [...]span{spanOf("x", x.Data), spanOf("w", w.Data), spanOf("labels", labels), spanOf("st.Max", st.Max), spanOf("st.Sums", st.Sums)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return 0, err
	}
	ws := &h.ws
	phiMax, dphiMax := l.phiBounds()
	accum := l.Accumulate
	if n == 0 {
		if !accum {
			zero(dx)
			zero(dw)
		} else if err := accumFinite("dw", dw); err != nil {
			return 0, err // as a call with rows refuses it (bounds)
		}
		return 0, nil
	}
	// The workspace kept the Forward call's state; it only needs the
	// caller's matrices back (the gathered rows of S when sampling).
	k := l.subCenters()
	ws.x, ws.w, ws.labels = x, w, labels
	dwIn := dw
	if h.sampling() {
		m := len(h.pfc.s)
		ws.w, ws.labels = Matrix{Rows: m * k, Cols: d, Data: h.wS}, h.labS
		if dw != nil {
			h.dwS = grow(h.dwS, m*k*d)
			clear(h.dwS) // Accumulate adds the head's gradient to it
			h.dwSM = Matrix{Rows: m * k, Cols: d, Data: h.dwS}
			dwIn = &h.dwSM
		}
	}
	defer func() { ws.release(); h.dwSM = Matrix{} }()
	if dwIn != dw && accum {
		if i := indexNonFinite(dw.Data); i >= 0 {
			return 0, fmt.Errorf("%w: Accumulate into dw, which holds %v at %d", ErrNonFinite, dw.Data[i], i)
		}
	}
	// The bound of what is added to dw is taken over the caller's dw (the
	// sampled rows' gradient is scattered into it), not the zeroed scratch.
	if err := ws.bounds(ws.adaptivePhiMax(phiMax), dphiMax, dx, dw); err != nil {
		return 0, err
	}
	var total float64
	for i := 0; i < n; i++ {
		total += ws.finishRow(i, float64(st.Max[i]), float64(st.Sums[i]), float64(st.Sums[n+i]), float64(st.Sums[2*n+i]))
	}
	total += ws.regLoss()
	loss, err := ws.reduced(total)
	if err != nil || dx == nil && dw == nil {
		return loss, err
	}
	ws.backward(dx, dwIn)
	if dwIn != dw && dw != nil {
		h.scatter(dw, k, accum)
	}
	return loss, nil
}

// checkStats checks combined statistics against this shard's own part of
// them, saved by Forward (see Backward).
func (h *ShardedHead) checkStats(st *ShardStats) error {
	n := len(st.Max)
	for i, v := range st.Max {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 1) {
			return fmt.Errorf("%w: ShardStats.Max[%d] = %v", ErrNonFinite, i, v)
		}
	}
	if i := indexNonFinite(st.Sums); i >= 0 {
		return fmt.Errorf("%w: ShardStats.Sums[%d] = %v", ErrNonFinite, i, st.Sums[i])
	}
	const slack = 1 - 0x1p-20 // for a transport that rounds its sums otherwise
	for i, m := range st.Max {
		own, sum := h.ownMax[i], st.Sums[i]
		if m < own {
			return fmt.Errorf("%w: ShardStats.Max[%d] = %g is below this shard's largest logit %g (statistics of another batch, or not reduced with MAX)", ErrParam, i, m, own)
		}
		if sum < 0 || !math.IsInf(float64(m), -1) && sum < 1 {
			return fmt.Errorf("%w: ShardStats.Sums[%d] = %g, want ≥ 1 (the largest logit contributes e⁰) where Max is finite, ≥ 0 otherwise", ErrParam, i, sum)
		}
		if !math.IsInf(float64(own), -1) {
			share := float32(float64(h.ownSum[i]) * math.Exp(float64(own)-float64(m)))
			if float64(sum) < float64(share)*slack {
				return fmt.Errorf("%w: ShardStats.Sums[%d] = %g is below this shard's share %g (statistics of another batch, or not rescaled to the reduced Max)", ErrParam, i, sum, share)
			}
		}
		if h.ws.lab[i] >= 0 && st.Sums[n+i] != h.ownZt[i] {
			return fmt.Errorf("%w: ShardStats.Sums[%d] (row %d's target logit) = %g, but this shard holds the label and computed %g", ErrParam, n+i, i, st.Sums[n+i], h.ownZt[i])
		}
	}
	return nil
}

// scatter writes the gradient of S's rows (h.dwS) into dw: added with
// Accumulate, else over zeroed rows.
func (h *ShardedHead) scatter(dw *Matrix, k int, accum bool) {
	row := k * dw.Cols
	if !accum {
		clear(dw.Data[:dw.Rows*dw.Cols])
	}
	for q, c := range h.pfc.s {
		dst, src := dw.Data[int(c)*row:(int(c)+1)*row], h.dwS[q*row:(q+1)*row]
		if !accum {
			copy(dst, src)
			continue
		}
		asm.Add(dst, dst, src)
	}
}
