package loss

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/par"
)

// LossFromCosines partitions the N rows of cos into at most cosMaxChunks
// chunks of whole rows (at least cosChunkElems elements each) and walks each
// row's classes in blocks of cosBlock. Both depend only on the shape, never
// on GOMAXPROCS; every row is computed by one chunk in a fixed order and the
// row losses are summed in row order, so results are bitwise identical for
// any worker count. The scratch is O(N) plus one block per chunk, whatever
// C is.
const (
	cosMaxChunks  = 64
	cosChunkElems = 4096
	cosBlock      = 1024
)

// Phases of LossFromCosines, run one after the other by par.Do.
const (
	cosPhaseForward = iota
	cosPhaseBackward
	cosPhaseTargets // adaptive kinds: validate and read the targets only
	cosPhaseRows    // adaptive kinds: the rows, after the margins
)

// cosineWorkspace holds one LossFromCosines call's inputs and its scratch;
// buffers only grow, so steady-state calls do not allocate.
type cosineWorkspace struct {
	phase int

	cos    Matrix
	labels []int32
	dcos   *Matrix

	g             asm.Margin
	n, c, k       int     // rows, classes, sub-centers per class
	rows, chunks  int     // rows per chunk, chunk count
	blk           int     // classes per block
	s             float32 // scale s
	sc, off       float32 // s·r and s·r·ε/C, r the reduction factor
	scale, eps    float64 // r, ε
	detach, accum bool

	bad     []int     // per row: the first column outside [−1, 1] (NaN included), or −1
	t       []float32 // per row: the target cosine (the target class's largest)
	phi     []float32 // φ(t)
	dphi    []float32 // φ′(t) (1 under DetachMargin)
	shift   []float32 // per row: p_j = e^(z_j − shift)·inv (softmaxNorm)
	inv     []float64
	gt      []float32 // ∂L/∂cos at the target's arg-max column
	rowLoss []float64
	z       []float32 // chunks×blk: a block of logits, then of gradients
	arg     []int     // chunks×blk: the arg-max column of each class (K > 1)

	ada    adaCall   // the adaptive margin (AdaFace, MagFace, ElasticFace, CurricularFace)
	dz     []float32 // chunks×blk: ∂z′/∂z of a block (AdaFace, CurricularFace)
	gz     []float32 // per row: ∂L/∂z_y (MagFace's dnorms)
	norms  []float32 // the caller's norms (LossFromCosinesNorms), or nil
	dnorms []float32
}

// LossFromCosines returns the reduced margin loss for cosines the caller
// computed: cos is N×C (N×C·K with SubCenters = K > 1), cos[i][j] = x̂_i·Ŵ_j,
// and labels are N class indices in [0, C). It is the loss Loss returns for
// the normalised x and W that produced those cosines: per class the
// cosine c_j (the largest of the class's K, ties to the lowest column), the
// logits z_j = s·c_j (j ≠ y) and z_y = s·φ(c_y), then the softmax
// cross-entropy of z (with LabelSmoothing, if set), reduced by Reduction.
// It supports ArcFace, CosFace and CombinedMargin with EasyMargin,
// DetachMargin, Reduction, SubCenters, LabelSmoothing and Accumulate;
// SphereFace and LargeMargin need the norms of x and W and give an error
// wrapping ErrParam. Use it when the cosines come from elsewhere (a sharded
// or quantised W, another device) or to chain the gradient yourself.
//
// Where dcos is non-nil it must be N×cos.Cols, and it is overwritten with
// ∂L/∂cos (added to it with Accumulate). With sub-centers each class's
// gradient goes to its arg-max column only; the other K−1 columns get 0.
// dcos may be cos itself (the gradient then replaces the cosines); any
// other sharing of memory between dcos, cos and labels is an error wrapping
// ErrOverlap.
//
// Every entry of cos must lie in [−1, 1]: a NaN or ±Inf gives an error
// wrapping ErrNonFinite, and a finite value outside [−1, 1] (clamp float32
// rounding such as 1.0000001 before the call) one wrapping ErrParam; both
// name the first offending row and column. At exactly ±1 the documented pole
// convention holds: φ is exact and φ′ = dφ/dt is evaluated at t clamped to
// [−1+1e-6, 1−1e-6] (asm.MarginForward), so the gradient stays finite. A
// column count that is not a positive multiple of K is
// ErrShape, a label outside [0, C) is ErrLabel.
//
// On error dcos is untouched; a nil error always comes with a finite loss
// and finite gradients. An empty batch (N = 0) returns 0 and zeroes dcos
// (leaves it as is with Accumulate). The call does not allocate in steady
// state, and its results are bitwise identical for any GOMAXPROCS.
func (l *MarginSoftmax) LossFromCosines(cos Matrix, labels []int32, dcos *Matrix) (float32, error) {
	if l == nil {
		return 0, errNilHead
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kind.needsNorms() {
		if _, err := l.margin(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: %s needs the norms: use LossFromCosinesNorms", ErrParam, l.kind.desc().name)
	}
	return l.lossFromCosines(cos, nil, labels, dcos, nil)
}

// LossFromCosinesNorms is LossFromCosines for heads whose margin reads the
// feature norm (AdaFace, MagFace; the others accept it and ignore norms,
// which they also take nil): norms[i] = ‖x_i‖ ≥ 0, finite. Where dnorms (N values) is non-nil it
// receives ∂L/∂‖x_i‖: 0 for AdaFace (its norms are detached), MagFace's
// margin and regulariser terms (0 outside [la, ua]), 0 for the others
// (added with Accumulate). A caller chaining MagFace's gradient adds
// dnorms_i·x̂_i to its dx.
func (l *MarginSoftmax) LossFromCosinesNorms(cos Matrix, norms []float32, labels []int32, dcos *Matrix, dnorms []float32) (float32, error) {
	if l == nil {
		return 0, errNilHead
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if norms == nil && !l.kind.needsNorms() {
		norms = []float32{} // the kind ignores them
	} else if len(norms) != cos.Rows {
		return 0, fmt.Errorf("%w: %d norms for %d rows of cos", ErrShape, len(norms), cos.Rows)
	}
	if dnorms != nil && len(dnorms) != cos.Rows {
		return 0, fmt.Errorf("%w: dnorms has %d values for %d rows of cos", ErrShape, len(dnorms), cos.Rows)
	}
	for i, v := range norms {
		if !isFinite(v) || v < 0 {
			if !isFinite(v) {
				return 0, fmt.Errorf("%w: norms[%d] = %v", ErrNonFinite, i, v)
			}
			return 0, fmt.Errorf("%w: norms[%d] = %g, want ‖x_i‖ ≥ 0", ErrParam, i, v)
		}
	}
	return l.lossFromCosines(cos, norms, labels, dcos, dnorms)
}

func (l *MarginSoftmax) lossFromCosines(cos Matrix, norms []float32, labels []int32, dcos *Matrix, dnorms []float32) (float32, error) {
	g, err := l.margin()
	if err != nil {
		return 0, err
	}
	if d := l.kind.desc(); !d.scaled {
		return 0, fmt.Errorf("%w: LossFromCosines supports ArcFace, CosFace and CombinedMargin, not %s (its logits need the norms of x and W; use Loss)", ErrParam, l.kind.desc().name)
	}
	if err := checkMatrix("cos", cos); err != nil {
		return 0, err
	}
	k := l.subCenters()
	if cos.Cols < 1 {
		return 0, fmt.Errorf("%w: cos is %d×%d, want at least one class", ErrShape, cos.Rows, cos.Cols)
	}
	if cos.Cols%k != 0 {
		return 0, fmt.Errorf("%w: cos has %d columns, not a multiple of SubCenters = %d (C classes × K sub-centers)", ErrShape, cos.Cols, k)
	}
	n, c := cos.Rows, cos.Cols/k
	if err := checkLabels(labels, n, c); err != nil {
		return 0, err
	}
	if err := checkGrad("dcos", dcos, n, cos.Cols); err != nil {
		return 0, err
	}
	outs := [...]span{gradSpan("dcos", dcos, "cos"), spanOf("dnorms", dnorms)}
	ins := [...]span{spanOf("cos", cos.Data), spanOf("labels", labels), spanOf("norms", norms)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return 0, err
	}
	if err := l.checkCall(n); err != nil {
		return 0, err
	}
	if dnorms != nil && l.Accumulate {
		if i := indexNonFinite(dnorms); i >= 0 {
			return 0, fmt.Errorf("%w: dnorms holds %v at %d (Accumulate adds to it)", ErrNonFinite, dnorms[i], i)
		}
	}
	scale := l.Reduction.scale(n)
	if dcos != nil {
		// |∂L/∂z_j| ≤ r and ∂cos = s·∂z (s·φ′·∂z at the target).
		var old float64
		if l.Accumulate {
			if old = maxAbs(dcos.Data); math.IsInf(old, 1) {
				return 0, fmt.Errorf("%w: dcos holds a NaN or ±Inf (Accumulate adds to it)", ErrNonFinite)
			}
		}
		_, dphiMax := l.phiBounds()
		if bound := scale*float64(l.s)*math.Max(1, dphiMax) + old; !(bound <= maxOut) {
			return 0, fmt.Errorf("%w: the gradients added to dcos (up to %g) would overflow float32", ErrNonFinite, old)
		}
	}
	if n == 0 {
		if !l.Accumulate {
			zero(dcos)
			clear(dnorms)
		}
		return 0, nil
	}
	h := &l.cws
	h.setup(l, g, cos, labels, k, scale)
	h.norms, h.dnorms = norms, dnorms
	defer h.release()
	h.phase = cosPhaseForward
	if l.kind.adaptive() {
		h.phase = cosPhaseTargets
	}
	par.Do(h.chunks, h)
	if err := h.firstBad(); err != nil {
		return 0, err
	}
	if l.kind.adaptive() {
		all := func(int) bool { return true }
		if err := h.ada.eval(l, l.state, h.t[:n], norms, all, h.phi[:n], h.dphi[:n]); err != nil {
			return 0, err
		}
		if phiMax, _ := l.phiBounds(); float64(l.s)*math.Max(phiMax, h.ada.phiMax) > MaxLogit {
			return 0, fmt.Errorf("%w: %s margins give s·max|φ| beyond MaxLogit", ErrNonFinite, l.kind.desc().name)
		}
		h.phase = cosPhaseRows
		par.Do(h.chunks, h)
	}
	var total float64
	for _, v := range h.rowLoss[:n] {
		total += v
	}
	if l.kind.desc().normGrad {
		total += h.ada.regLoss
	}
	total *= scale
	if !(math.Abs(total) <= maxOut) {
		return 0, fmt.Errorf("%w: finite inputs give a loss of %g, beyond float32", ErrNonFinite, total)
	}
	if dcos != nil {
		h.dcos = dcos
		h.phase = cosPhaseBackward
		par.Do(h.chunks, h)
	}
	if dnorms != nil {
		for i := range dnorms {
			var v float32
			if l.kind.desc().normGrad {
				v = h.ada.radial(i, h.gz[i], true, true, float32(scale))
			}
			if l.Accumulate {
				dnorms[i] += v
			} else {
				dnorms[i] = v
			}
		}
	}
	h.ada.commit(l, &l.state, n)
	return float32(total), nil
}

// firstBad reports the first entry of cos outside [−1, 1] (rows in order).
func (h *cosineWorkspace) firstBad() error {
	cos := h.cos
	for i, b := range h.bad[:h.n] {
		if b < 0 {
			continue
		}
		v := cos.Data[i*cos.Cols+b]
		if !isFinite(v) {
			return fmt.Errorf("%w: cos row %d column %d is %v", ErrNonFinite, i, b, v)
		}
		return fmt.Errorf("%w: cos row %d column %d is %g, outside [−1, 1] (a cosine; clamp rounding overshoot before the call)", ErrParam, i, b, v)
	}
	return nil
}

// setup records the call and sizes the scratch.
func (h *cosineWorkspace) setup(l *MarginSoftmax, g asm.Margin, cos Matrix, labels []int32, k int, scale float64) {
	n := cos.Rows
	h.cos, h.labels = cos, labels
	h.g, h.n, h.k, h.c = g, n, k, cos.Cols/k
	h.s, h.scale, h.eps = l.s, scale, float64(l.LabelSmoothing)
	h.sc = float32(scale * float64(l.s))
	h.off = float32(scale * float64(l.s) * h.eps / float64(h.c))
	h.detach, h.accum = l.DetachMargin, l.Accumulate
	h.detach = l.DetachMargin && l.kind.desc().detach
	h.ada.on, h.ada.kind, h.ada.mod = false, l.kind, nil
	h.gz = grow(h.gz, n)
	h.rows = max(par.Chunks(cosChunkElems, cos.Cols), par.Chunks(n, cosMaxChunks))
	h.chunks = par.Chunks(n, h.rows)
	h.blk = min(h.c, cosBlock)

	h.bad = grow(h.bad, n)
	h.t, h.phi, h.dphi = grow(h.t, n), grow(h.phi, n), grow(h.dphi, n)
	h.shift, h.inv, h.gt = grow(h.shift, n), grow(h.inv, n), grow(h.gt, n)
	h.rowLoss = grow(h.rowLoss, n)
	h.z = grow(h.z, h.chunks*h.blk)
	if k > 1 {
		h.arg = grow(h.arg, h.chunks*h.blk)
	}
	if l.kind.desc().mod != nil {
		h.dz = grow(h.dz, h.chunks*h.blk)
	}
}

// release drops every reference to the caller's memory, whatever the
// outcome of the call: the workspace outlives it.
func (h *cosineWorkspace) release() {
	h.cos, h.labels, h.dcos = Matrix{}, nil, nil
	h.norms, h.dnorms = nil, nil
}

// RunChunk implements par.Job for both phases.
func (h *cosineWorkspace) RunChunk(ck int) {
	lo, hi := par.Range(ck, h.rows, h.n)
	z := h.z[ck*h.blk : (ck+1)*h.blk]
	var arg []int
	if h.k > 1 {
		arg = h.arg[ck*h.blk : (ck+1)*h.blk]
	}
	switch h.phase {
	case cosPhaseForward:
		h.forward(lo, hi, z)
	case cosPhaseTargets:
		h.targets(lo, hi)
	case cosPhaseRows:
		var dz []float32
		if h.ada.mod != nil {
			dz = h.dz[ck*h.blk : (ck+1)*h.blk]
		}
		for i := lo; i < hi; i++ {
			h.forwardRow(i, z, dz)
		}
	case cosPhaseBackward:
		var dz []float32
		if h.ada.mod != nil {
			dz = h.dz[ck*h.blk : (ck+1)*h.blk]
		}
		for i := lo; i < hi; i++ {
			h.backwardRow(i, z, arg, dz)
		}
	}
}

// firstOutside returns the index of the first element of row outside
// [−1, 1] (NaN included), or −1.
func firstOutside(row []float32) int {
	for j, v := range row {
		if !(v >= -1 && v <= 1) {
			return j
		}
	}
	return -1
}

// classLogits fills z[:j1−j0] with the non-target logits s·c_j of classes
// j0..j1 of row (c_j the largest of class j's K cosines) and, when arg is
// non-nil, arg[:j1−j0] with the column each c_j came from. The forward and
// backward passes both call it, so the backward pass sees bitwise the
// forward logits.
func (h *cosineWorkspace) classLogits(z []float32, arg []int, row []float32, j0, j1 int) []float32 {
	z = z[:j1-j0]
	k := h.k
	if k == 1 {
		asm.Scale(z, row[j0:j1], h.s)
		return z
	}
	for j := j0; j < j1; j++ {
		sub := row[j*k : (j+1)*k]
		best, at := sub[0], 0
		for a := 1; a < k; a++ {
			if sub[a] > best {
				best, at = sub[a], a
			}
		}
		z[j-j0] = h.s * best
		if arg != nil {
			arg[j-j0] = j*k + at
		}
	}
	return z
}

// forward validates rows lo..hi, evaluates the margin at their targets, and
// computes each valid row's loss, log-sum-exp and target gradient. It writes
// only the workspace.
func (h *cosineWorkspace) forward(lo, hi int, z []float32) {
	h.targets(lo, hi)
	asm.MarginForward(h.phi[lo:hi], h.dphi[lo:hi], h.t[lo:hi], &h.g)
	for i := lo; i < hi; i++ {
		if h.bad[i] < 0 {
			h.forwardRow(i, z, nil)
		}
	}
}

// targets validates rows lo..hi and reads their target cosines (the target
// class's largest).
func (h *cosineWorkspace) targets(lo, hi int) {
	k := h.k
	for i := lo; i < hi; i++ {
		row := h.cos.Row(i)
		h.bad[i], h.t[i] = firstOutside(row), 0
		if h.bad[i] >= 0 {
			continue // reported by the caller; t = 0 keeps MarginForward finite
		}
		y := int(h.labels[i])
		best := row[y*k]
		for _, v := range row[y*k+1 : (y+1)*k] {
			best = max(best, v)
		}
		h.t[i] = best
	}
}

// forwardRow folds the row's non-target logits into an online log-sum-exp
// and, as Loss does, keeps the target out of it: with
// r = Σ_{j≠y} e^(z_j − z_y) the plain row loss is log(1 + r) = softplus(log r)
// and p_y − 1 = −σ(log r), both exact for confident rows (r ≪ 1) and finite
// when the target sits far below the largest logit. Label smoothing adds
//
//	(ε/C)·Σ_j (z_y − z_j)  to the loss,  ε − ε/C  to ∂L/∂z_y,  −ε/C  to the others,
//
// which is lse(z) − (1−ε)·z_y − (ε/C)·Σ_j z_j in total (rowCE, shared with
// Loss and Focal).
func (h *cosineWorkspace) forwardRow(i int, z, dz []float32) {
	row := h.cos.Row(i)
	y := int(h.labels[i])
	zt := h.s * h.phi[i]
	m, sum := float32(math.Inf(-1)), float32(0)
	var others float64 // Σ_{j≠y} z_j, for label smoothing
	for j0 := 0; j0 < h.c; j0 += h.blk {
		j1 := min(j0+h.blk, h.c)
		zb := h.classLogits(z, nil, row, j0, j1)
		if h.ada.mod != nil {
			h.ada.modRow(zb, dz[:len(zb)], i)
		}
		if yb := y - j0; yb >= 0 && yb < len(zb) {
			m, sum = asm.MaxSumExp(zb[:yb], m, sum)
			m, sum = asm.MaxSumExp(zb[yb+1:], m, sum)
			if h.eps != 0 {
				others -= float64(zb[yb])
			}
		} else {
			m, sum = asm.MaxSumExp(zb, m, sum)
		}
		if h.eps != 0 {
			for _, v := range zb {
				others += float64(v)
			}
		}
	}
	r := newRowCE(float64(m), float64(sum), float64(zt))
	loss := r.loss(h.eps, float64(zt), others+float64(zt), h.c)
	gy := r.target(h.eps) - h.eps/float64(h.c)
	dphi := h.dphi[i]
	if h.detach {
		dphi = 1
	}
	h.rowLoss[i] = loss
	h.gz[i] = float32(gy * h.scale)
	h.shift[i], h.inv[i] = r.shift, r.inv
	h.gt[i] = float32(gy * h.scale * float64(h.s) * float64(dphi))
}

// backwardRow writes row i of dcos, block by block: s·r·(p_j − ε/C) for the
// non-target classes, gt at the target, each at its class's arg-max column
// (the other sub-center columns get 0). Each block of cos is read into the
// scratch before its block of dcos is written, so dcos may be cos.
func (h *cosineWorkspace) backwardRow(i int, z []float32, arg []int, dz []float32) {
	row, out := h.cos.Row(i), h.dcos.Row(i)
	y := int(h.labels[i])
	k := h.k
	for j0 := 0; j0 < h.c; j0 += h.blk {
		j1 := min(j0+h.blk, h.c)
		zb := h.classLogits(z, arg, row, j0, j1)
		var dzb []float32
		if dz != nil {
			dzb = dz[:len(zb)]
			h.ada.modRow(zb, dzb, i)
		}
		yb := y - j0
		hasY := yb >= 0 && yb < len(zb)
		if hasY {
			zb[yb] = h.s * h.phi[i] // p_y ≤ 1 (its value is replaced by gt)
		}
		dst := zb
		if k == 1 && !h.accum {
			dst = out[j0:j1]
		}
		asm.SoftmaxScaled(dst, zb, h.shift[i], float32(h.scale*float64(h.s)*h.inv[i]))
		if h.off != 0 {
			for j := range dst {
				dst[j] -= h.off
			}
		}
		if dzb != nil {
			asm.Mul(dst, dst, dzb)
		}
		if hasY {
			dst[yb] = h.gt[i]
		}
		switch {
		case k == 1 && !h.accum: // written in place above
		case k == 1:
			asm.Add(out[j0:j1], out[j0:j1], dst)
		case !h.accum:
			clear(out[j0*k : j1*k])
			for j, v := range dst {
				out[arg[j]] = v
			}
		default:
			for j, v := range dst {
				out[arg[j]] += v
			}
		}
	}
}
