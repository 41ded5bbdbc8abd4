package loss

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/par"
)

// The head walks the C classes in tiles of ct classes. Consecutive tiles are
// grouped into at most maxShards shards; each shard keeps its own online
// log-sum-exp state and its own partial dX̂, which are merged in shard order.
// Tile size and shard count depend only on (N, C), never on GOMAXPROCS, so
// every sum runs in the same order for any worker count.
const (
	maxShards  = 16
	tileFloats = 32 << 10 // N·ct target for one logit tile (128 KiB)
	minTile    = 16
	maxTile    = 512
	rowChunk   = 64  // rows of x per parallel chunk
	classChunk = 256 // rows of W per parallel chunk
)

// minNorm is the smallest row norm that is normalised. A row of x or W with
// a smaller norm (≈ 7.9e-31) is treated as a zero row: cos θ = 0 and no
// gradient through the normalisation, since 1/‖x‖ would push the gradients
// past float32.
const minNorm = 0x1p-100

// invNorm is 1/nr, or 0 for a zero (or too small) row.
func invNorm(nr float32) float32 {
	if nr >= minNorm && nr <= math.MaxFloat32 {
		return 1 / nr
	}
	return 0
}

// Phases of the head, run one after another by par.Do.
const (
	phaseNormW = iota
	phaseNormX
	phaseForward
	phaseBackward
	phaseDX
)

type shardState struct {
	m, s   []float32 // online log-sum-exp state per row
	zsum   []float64 // Σ_j z_ij over this shard's non-target classes (LabelSmoothing)
	cls    []float32 // one row's class logits (SubCenters: the max of each class's K)
	gcls   []float32 // one row's class gradients (SubCenters)
	arg    []int32   // the arg-max sub-center of each class in cls
	radial []float32 // Σ_j G_ij·z_ij over this shard's classes (SphereFace, LargeMargin)
	dxhat  []float32 // N×D partial ∂L/∂x̂
	z, g   []float32 // N×ct tiles: logits, then gradients
	colRad []float32 // ct: Σ_i G_ij·z_ij for LargeMargin's ∂L/∂‖W_j‖
	acc    []float32 // Accumulate: a block of dW rows before they are added
	mod    []float32 // one row's modulated logits (AdaFace, CurricularFace)
	dmod   []float32 // their ∂z′/∂z
}

// headWorkspace holds one call's inputs and every scratch buffer; buffers
// only grow, so steady-state calls do not allocate.
type headWorkspace struct {
	kind   headKind
	desc   *kindDesc
	g      asm.Margin
	prec   Precision // of the three GEMMs (precision.go)
	detach bool
	accum  bool    // add the gradients to dx and dw
	s      float32 // scale of ArcFace, CosFace, CombinedMargin
	intM   int     // m of SphereFace, LargeMargin
	scale  float32 // reduction factor: 1/N or 1

	x, w    Matrix
	labels  []int32
	n, c, d int
	dx, dw  *Matrix
	step    WeightStepper // the fused step of W, or nil (fused.go)

	// k is the number of sub-centers (w rows per class); classes the C of
	// the label-smoothing mean (every shard's classes for a ShardedHead);
	// eps the label smoothing ε. lab holds each row's class on this w
	// (label − offset for a ShardedHead), or −1 when it is on another shard.
	k, classes int
	eps        float64
	lab        []int32
	targ       []int32   // the target class's arg-max sub-center row (SubCenters)
	tk         []float32 // N·K target cosines (SubCenters)
	zsum       []float64 // per row: Σ_j z_ij over every class on this w (LabelSmoothing)

	ct, tiles, shardTiles, shards int
	phase                         int

	// keep: the forward pass writes its logit tiles into kept (tile t of
	// classes j0..j1 at kept[j0·N : j1·N], N×cw) and the backward pass
	// reads them instead of recomputing them (TileBudget).
	keep bool
	kept []float32
	// keptFresh: kept holds the last forward pass's tiles (a backward pass
	// overwrites them); useKept: this backward pass reads them. A second
	// backward pass after one forward recomputes its tiles instead, which
	// gives bitwise the same results.
	keptFresh, useKept bool
	// lazyW: the forward pass computes the W norms, tile by tile (norms).
	lazyW bool

	xnorm, xinv, xhat, rowA []float32
	// px is x̂ packed once per call as the left operand of every logit
	// tile's GEMM, pxT as the right operand of every dŴ tile's.
	px               asm.PackedA
	pxT              asm.PackedB
	t, phi, dphi, zt []float32
	// shift and rowInv: p_ij = e^(z_ij − shift_i)·rowInv_i for every
	// logit of row i (softmaxNorm).
	shift                 []float32
	rowInv                []float64
	gTarget               []float32 // ∂L/∂z at the target column
	wnorm, winv, colScale []float32
	sh                    []shardState

	// ada is the adaptive margin of the call (AdaFace, MagFace,
	// ElasticFace, CurricularFace); magReg: MagFace's regulariser term of dx
	// is added here (the whole head, or the shard with Offset 0).
	ada    adaCall
	magReg bool
}

// grow returns b resized to n, reallocating only when it is too small: the
// one helper behind every workspace buffer of the package.
func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	return b[:n]
}

// classSpan is the part of the classes a workspace holds: classes
// offset… of total (the whole head: offset 0, total = w's classes).
type classSpan struct{ offset, total int }

// setup records the call and sizes every buffer; grads says whether a
// backward pass follows.
func (h *headWorkspace) setup(l *MarginSoftmax, g asm.Margin, x, w Matrix, labels []int32, grads bool, span classSpan) {
	h.kind, h.g, h.s, h.intM, h.accum = l.kind, g, l.s, l.intM, l.Accumulate
	h.prec = l.Precision
	h.lazyW = false
	h.desc = l.kind.desc()
	h.detach = l.DetachMargin && h.desc.detach
	h.ada.on, h.ada.kind, h.magReg = false, l.kind, span.offset == 0
	h.x, h.w, h.labels = x, w, labels
	h.n, h.c, h.d = x.Rows, w.Rows, w.Cols
	h.scale = float32(l.Reduction.scale(h.n))
	h.k, h.eps, h.classes = l.subCenters(), float64(l.LabelSmoothing), span.total

	n, c, d := h.n, h.c, h.d
	h.lab = grow(h.lab, n)
	for i, y := range labels {
		if y := int(y) - span.offset; y >= 0 && y < c/h.k {
			h.lab[i] = int32(y)
		} else {
			h.lab[i] = -1
		}
	}
	if h.k > 1 {
		h.targ, h.tk = grow(h.targ, n), grow(h.tk, n*h.k)
	}
	h.zsum = grow(h.zsum, n)
	h.ct = min(max(tileFloats/n, minTile), maxTile, c)
	h.ct = max(h.ct/h.k*h.k, h.k) // whole classes per tile
	h.tiles = par.Chunks(c, h.ct)
	h.shardTiles = par.Chunks(h.tiles, maxShards)
	h.shards = par.Chunks(h.tiles, h.shardTiles)

	h.xnorm, h.xinv, h.rowA = grow(h.xnorm, n), grow(h.xinv, n), grow(h.rowA, n)
	h.xhat = grow(h.xhat, n*d)
	h.t, h.phi, h.dphi = grow(h.t, n), grow(h.phi, n), grow(h.dphi, n)
	h.zt, h.shift, h.gTarget = grow(h.zt, n), grow(h.shift, n), grow(h.gTarget, n)
	h.rowInv = grow(h.rowInv, n)
	h.wnorm, h.winv, h.colScale = grow(h.wnorm, c), grow(h.winv, c), grow(h.colScale, c)
	budget := l.TileBudget
	if budget == 0 {
		budget = DefaultTileBudget
	}
	h.keep = grads && budget > 0 && n <= budget/4/c
	if h.keep {
		h.kept = grow(h.kept, n*c)
	}
	if cap(h.sh) < h.shards {
		h.sh = append(h.sh[:cap(h.sh)], make([]shardState, h.shards-cap(h.sh))...)
	}
	h.sh = h.sh[:h.shards]
	for k := range h.sh {
		st := &h.sh[k]
		st.m, st.s, st.radial = grow(st.m, n), grow(st.s, n), grow(st.radial, n)
		st.zsum = grow(st.zsum, n)
		if h.k > 1 {
			st.cls, st.gcls, st.arg = grow(st.cls, h.ct/h.k), grow(st.gcls, h.ct/h.k), grow(st.arg, h.ct/h.k)
		}
		if !h.keep {
			st.z = grow(st.z, n*h.ct)
		}
		st.g = grow(st.g, n*h.ct)
		st.colRad = grow(st.colRad, h.ct)
		if h.desc.mod != nil {
			st.mod, st.dmod = grow(st.mod, h.ct), grow(st.dmod, h.ct)
		}
	}
}

// release drops every reference to the caller's memory, whatever the
// outcome of the call: the workspace outlives it.
func (h *headWorkspace) release() {
	h.x, h.w, h.labels, h.dx, h.dw, h.step = Matrix{}, Matrix{}, nil, nil, nil, nil
}

// bounds returns an ErrNonFinite error when finite inputs could still drive
// a logit, an intermediate sum or a gradient past maxOut (half of
// float32's range, which leaves room for rounding and the last sums). It
// runs after norms and before anything is written. With A_i the row scale
// (s or ‖x_i‖), B_j the column scale (‖W_j‖ for L-Softmax, else 1), and
// using Σ_j |∂L/∂z_ij| ≤ 2·scale and |∂L/∂z_ij| ≤ scale:
//
//	|z_ij|      ≤ A_i·B_j·max|φ|
//	|dX̂_i|      ≤ 2·scale·A_i·max B·max|φ′|
//	|dx_i|      ≤ 2·scale·A_i·‖x_i‖⁻¹·max B·(max|φ′| + max|φ|·[radial])
//	|Gc_ij·B_j/‖W_j‖| ≤ 2·scale·max A·max|φ′|·max_j B_j/‖W_j‖  (dX̂'s operand)
//	|dŴ_j|      ≤ N·scale·max A·B_j·max|φ′|
//	|dW_j|      ≤ N·scale·max A·B_j·‖W_j‖⁻¹·(max|φ′| + max|φ|·[L-Softmax])
//
// plus, with Accumulate, the largest magnitude already in dx or dw (which
// must be finite).
func (h *headWorkspace) bounds(phiMax, dphiMax float64, dx, dw *Matrix) error {
	large, radial := h.desc.colNorm, h.rowScaleIsNorm()
	scale := float64(h.scale)
	var maxA, rowFactor float64
	for i := 0; i < h.n; i++ {
		a := float64(h.rowA[i])
		maxA = math.Max(maxA, a)
		rowFactor = math.Max(rowFactor, a*float64(h.xinv[i]))
	}
	maxBz, maxBg, colFactor := 1.0, 1.0, 0.0
	if large {
		maxBz, maxBg, colFactor = 0, 0, 0
		for j := 0; j < h.c; j++ {
			if h.winv[j] == 0 { // zero row: B = 1 in the gradient
				maxBg, colFactor = math.Max(maxBg, 1), math.Max(colFactor, 1)
				continue
			}
			nr := float64(h.wnorm[j])
			maxBz, maxBg = math.Max(maxBz, nr), math.Max(maxBg, nr)
			colFactor = math.Max(colFactor, nr*float64(h.winv[j]))
		}
	} else {
		for j := 0; j < h.c; j++ {
			colFactor = math.Max(colFactor, float64(h.winv[j]))
		}
	}
	type check struct {
		what  string
		bound float64
	}
	dxRad, dwRad := 0.0, 0.0
	if radial {
		dxRad = phiMax
	}
	if large {
		dwRad = phiMax
	}
	ns := float64(h.n) * scale
	checks := [...]check{
		{"logits", 2 * maxA * maxBz * phiMax},
		{"logit gradients", scale * maxA * maxBg * dphiMax},
		{"dx", 0}, {"dx", 0}, {"dx", 0}, {"dw", 0}, {"dw", 0},
	}
	if dx != nil {
		checks[2] = check{"dx", 2 * scale * maxA * maxBg * dphiMax}
		checks[3] = check{"dx", 2*scale*rowFactor*maxBg*(dphiMax+dxRad) + h.accumMax(dx)}
		// The dX̂ product's left operand Gc_ij·B_j/‖W_j‖ (its sum, the
		// line above, is bounded, but a row of W just above the zero-row
		// threshold makes one term large before W_j scales it back).
		checks[4] = check{"dx", 2 * scale * maxA * dphiMax * colFactor}
	}
	if dw != nil {
		checks[5] = check{"dw", ns * maxA * maxBg * dphiMax}
		checks[6] = check{"dw", ns*maxA*colFactor*(dphiMax+dwRad) + h.accumMax(dw)}
	}
	for _, c := range checks {
		if !(c.bound <= maxOut) {
			return fmt.Errorf("%w: finite inputs would overflow float32 in the %s (bound %.3g from row norms up to %g, column norms up to %g)",
				ErrNonFinite, c.what, c.bound, maxA, maxBz)
		}
	}
	return nil
}

// accumMax is the largest magnitude in a gradient the call adds to (+Inf
// when it holds a non-finite value), or 0 when the call overwrites it.
func (h *headWorkspace) accumMax(g *Matrix) float64 {
	if !h.accum {
		return 0
	}
	return maxAbs(g.Data)
}

// norms computes the row norms of W and x, the normalised x, the target
// cosines and the margin, in parallel. It reports the first non-finite row
// (x before w), before any output is written.
//
// With lazyW (a call that runs the forward pass next) it computes only the
// norms of the labels' W rows here; the forward pass computes the others
// tile by tile, just before the tile's logits (so that a W streaming from
// memory is read once there, the logit GEMM finding it in cache), and
// checkW reports a non-finite row after it, still before any output.
func (h *headWorkspace) norms() error {
	if !h.lazyW {
		h.phase = phaseNormW
		par.Do(par.Chunks(h.c, classChunk), h)
	} else if err := h.normLabelRows(); err != nil {
		return err
	}
	h.phase = phaseNormX
	par.Do(par.Chunks(h.n, rowChunk), h)
	h.packX()
	for i, v := range h.xnorm[:h.n] {
		if !isFinite(v) {
			return fmt.Errorf("%w: x row %d has norm %v (a NaN or ±Inf element, or a norm beyond float32)", ErrNonFinite, i, v)
		}
	}
	if !h.lazyW {
		return h.checkW()
	}
	return nil
}

// normLabelRows computes the norms of the W rows of the labels' classes
// (all K sub-centers), which the target cosines need before the forward
// pass, and reports a non-finite W when one of them is not finite. The
// forward pass computes them again, to the same bits.
func (h *headWorkspace) normLabelRows() error {
	for _, y := range h.lab[:h.n] {
		if y < 0 {
			continue
		}
		j0 := int(y) * h.k
		h.normW(j0, j0+h.k)
		for j := j0; j < j0+h.k; j++ {
			if !isFinite(h.wnorm[j]) {
				h.normW(0, h.c) // report the first non-finite row of all
				return h.checkW()
			}
		}
	}
	return nil
}

// checkW reports the first W row whose norm is not finite.
func (h *headWorkspace) checkW() error {
	for j, v := range h.wnorm[:h.c] {
		if !isFinite(v) {
			return fmt.Errorf("%w: w row %d has norm %v (a NaN or ±Inf element, or a norm beyond float32)", ErrNonFinite, j, v)
		}
	}
	return nil
}

// forwardChecked runs the forward pass, then the checks that need every W
// norm: a non-finite W row (with lazyW) and the bounds (see bounds), all
// before any output is written.
func (h *headWorkspace) forwardChecked(phiMax, dphiMax float64, dx, dw *Matrix) error {
	h.forward()
	if h.lazyW {
		if err := h.checkW(); err != nil {
			return err
		}
	}
	return h.bounds(phiMax, dphiMax, dx, dw)
}

// run finishes the rows after forwardChecked, then does the backward
// pass where gradients are asked for, and returns the reduced loss.
func (h *headWorkspace) run(dx, dw *Matrix) (float32, error) {
	// The shards folded every logit but the target's.
	var total float64
	for i := 0; i < h.n; i++ {
		mx, sum, zs := h.rowStats(i)
		total += h.finishRow(i, mx, sum, float64(h.zt[i]), zs+float64(h.zt[i]))
	}
	total += h.regLoss()
	loss, err := h.reduced(total)
	if err != nil || dx == nil && dw == nil && h.step == nil {
		return loss, err
	}
	if h.step != nil {
		if err := h.step.BeginWeightStep(h.w, nil); err != nil {
			return 0, err
		}
		defer h.step.EndWeightStep()
	}
	h.backward(dx, dw)
	return loss, nil
}

// forward runs the forward pass over every class shard.
func (h *headWorkspace) forward() {
	h.phase = phaseForward
	par.Do(h.shards, h)
	h.keptFresh = h.keep
}

// rowStats merges row i's online log-sum-exp over the class shards, in
// shard order: the largest non-target logit mx (−Inf when there is none),
// Σ e^(z−mx) over the non-target logits, and their sum Σ z (LabelSmoothing).
func (h *headWorkspace) rowStats(i int) (mx, sum, zs float64) {
	mx = math.Inf(-1)
	for k := range h.sh {
		mx = math.Max(mx, float64(h.sh[k].m[i]))
		zs += h.sh[k].zsum[i]
	}
	if !math.IsInf(mx, -1) {
		for k := range h.sh {
			if st := &h.sh[k]; st.s[i] != 0 {
				sum += float64(st.s[i]) * math.Exp(float64(st.m[i])-mx)
			}
		}
	}
	return mx, sum, zs
}

// finishRow returns row i's loss from its merged statistics (over every
// class of every shard): the largest non-target logit mx, Σ e^(z−mx) over
// the non-target logits, the target logit zt and Σ_j z_j over all classes
// (target included), and records the row's softmax normalisation
// (softmaxNorm: its largest logit and 1/Σ e^(z−max)) and target gradient
// for the backward pass.
//
// With r = Σ_{j≠y} e^(z_j − z_y), lse − z_y = log(1 + r) = softplus(log r)
// and p_y − 1 = −r/(1 + r) = −σ(log r). Working in log r keeps confident
// rows (r ≪ 1) precise and never overflows when the target sits far below
// the largest logit (r beyond float64). Label smoothing adds
// ε·(z_y − mean_j z_j) to the loss and ε to the target's ∂L/∂z; the
// backward pass subtracts ε/C from every class.
func (h *headWorkspace) finishRow(i int, mx, sum, zt, zs float64) float64 {
	r := newRowCE(mx, sum, zt)
	h.shift[i], h.rowInv[i] = r.shift, r.inv
	h.gTarget[i] = float32(r.target(h.eps) * float64(h.scale))
	return r.loss(h.eps, zt, zs, h.classes)
}

// reduced applies the reduction to the summed row losses, and fails when
// the loss leaves float32.
func (h *headWorkspace) reduced(total float64) (float32, error) {
	v := total * float64(h.scale)
	if !(math.Abs(v) <= maxOut) {
		return 0, fmt.Errorf("%w: finite inputs give a loss of %g, beyond float32", ErrNonFinite, v)
	}
	return float32(v), nil
}

// backward runs the backward pass into dx and dw (either may be nil).
func (h *headWorkspace) backward(dx, dw *Matrix) {
	h.dx, h.dw = dx, dw
	h.useKept, h.keptFresh = h.keep && h.keptFresh, false
	if !h.useKept {
		for k := range h.sh {
			h.sh[k].z = grow(h.sh[k].z, h.n*h.ct)
		}
	}
	if dx != nil {
		for k := range h.sh {
			h.sh[k].dxhat = grow(h.sh[k].dxhat, h.n*h.dxStride())
		}
	}
	if dw != nil || h.step != nil {
		h.packXT()
	}
	h.phase = phaseBackward
	par.Do(h.shards, h)
	if dx != nil {
		h.phase = phaseDX
		par.Do(par.Chunks(h.n, rowChunk), h)
	}
}

// RunChunk implements par.Job for every phase.
func (h *headWorkspace) RunChunk(c int) {
	switch h.phase {
	case phaseNormW:
		h.normW(par.Range(c, classChunk, h.c))
	case phaseNormX:
		h.normX(par.Range(c, rowChunk, h.n))
	case phaseForward:
		h.forwardShard(c)
	case phaseBackward:
		h.backwardShard(c)
	case phaseDX:
		h.gradX(par.Range(c, rowChunk, h.n))
	}
}

// rowScale reports whether logits scale with ‖x‖ (A_i = ‖x_i‖).
func (h *headWorkspace) rowScaleIsNorm() bool { return h.desc.rowNorm }

func (h *headWorkspace) normW(lo, hi int) {
	for j := lo; j < hi; j++ {
		nr := asm.L2Norm(h.w.Row(j))
		inv := invNorm(nr)
		h.wnorm[j], h.winv[j] = nr, inv
		if h.desc.colNorm {
			h.colScale[j] = nr * inv // B_j·(1/‖W_j‖): 1, or 0 for a zero row
		} else {
			h.colScale[j] = inv
		}
	}
}

// linearZeroRow reports whether row i of x is a zero row whose logits the
// head keeps linear: for L-Softmax, z_ij = W_j·x_i is linear in x, so a row
// below the zero-row threshold is not normalised (x̂_i = x_i, A_i = 1) and
// keeps its exact logits and their exact gradient Σ_j G_ij·W_j; with m = 1
// its target logit W_y·x_i is linear too, while for m ≥ 2 the target's
// cosine is taken as 0 with no gradient (the zero-row convention).
func (h *headWorkspace) linearZeroRow(i int) bool { return h.desc.colNorm && h.xinv[i] == 0 }

func (h *headWorkspace) normX(lo, hi int) {
	d := h.d
	for i := lo; i < hi; i++ {
		xi := h.x.Row(i)
		nr := asm.L2Norm(xi)
		inv := invNorm(nr)
		h.xnorm[i], h.xinv[i] = nr, inv
		xh := h.xhat[i*d : (i+1)*d]
		switch {
		case h.linearZeroRow(i):
			copy(xh, xi)
			h.rowA[i] = 1
		case h.rowScaleIsNorm():
			asm.Scale(xh, xi, inv)
			h.rowA[i] = nr
		default:
			asm.Scale(xh, xi, inv)
			h.rowA[i] = h.s
		}
		y := int(h.lab[i])
		switch {
		case y < 0: // on another shard
			h.t[i] = 0
		case h.k == 1: // below, four rows at a time
		default: // the largest of the class's K cosines, ties to the lowest row
			k := h.k
			tk := h.tk[i*k : (i+1)*k]
			asm.GemmNT(1, k, d, 1, xh, d, h.w.Data[y*k*d:(y+1)*k*d], d, 0, tk, k)
			best := 0
			for q := range tk {
				tk[q] *= h.winv[y*k+q]
				if tk[q] > tk[best] {
					best = q
				}
			}
			h.t[i], h.targ[i] = tk[best], int32(best)
		}
	}
	if h.k == 1 {
		// The target cosines x̂_i·W_y/‖W_y‖, each dot in order of d (the
		// bits of a 1×1 GemmNT).
		asm.DotRows(h.t[lo:hi], d, h.xhat[lo*d:hi*d], d, h.w.Data, d, h.lab[lo:hi])
		for i := lo; i < hi; i++ {
			if y := h.lab[i]; y >= 0 {
				h.t[i] *= h.winv[y]
			}
		}
	}
	if h.desc.eval != nil {
		return // the margin needs every row (adaptiveMargins)
	}
	linearTarget := h.desc.colNorm && h.intM == 1
	for i := lo; i < hi; i++ {
		if h.linearZeroRow(i) && !linearTarget {
			h.t[i] = 0 // t holds ‖x‖·cos θ here; m ≥ 2 takes cos θ = 0
		}
	}
	asm.MarginForward(h.phi[lo:hi], h.dphi[lo:hi], h.t[lo:hi], &h.g)
	for i := lo; i < hi; i++ {
		b := float32(1)
		if y := h.lab[i]; h.desc.colNorm && y >= 0 {
			b = h.wnorm[y]
		}
		a := h.rowA[i]
		if h.linearZeroRow(i) {
			if linearTarget { // φ(t) = t: z_y = ‖W_y‖·(x·Ŵ_y) = W_y·x
				h.phi[i], h.dphi[i] = h.t[i], 1
			} else { // z_y = ‖W_y‖‖x‖·φ(0), no gradient
				a, h.dphi[i] = h.xnorm[i], 0
			}
		}
		h.zt[i] = a * b * h.phi[i]
		if h.detach {
			h.dphi[i] = 1
		}
	}
}

// tileRange is the class range of tile k.
func (h *headWorkspace) tileRange(k int) (j0, j1 int) { return par.Range(k, h.ct, h.c) }

// logits fills z (N×cw, row stride cw) with the logits of classes j0..j1:
// z_ij = A_i·(cs_j·x̂_i·W_j), the row and column scales applied by the
// GEMM's fused epilogue as each tile leaves the micro-kernel, then the
// target logits (without sub-centers). The forward and backward passes call
// it alike, so the recomputed tile is bitwise the forward one.
func (h *headWorkspace) logits(z []float32, j0, j1 int) {
	d, cw := h.d, j1-j0
	asm.GemmNTPackedScaled(cw, &h.px, h.w.Data[j0*d:j1*d], d, h.rowA, h.colScale[j0:j1], z, cw)
	if h.k != 1 {
		return
	}
	for i, y := range h.lab[:h.n] {
		if y := int(y); y >= j0 && y < j1 {
			z[i*cw+y-j0] = h.zt[i]
		}
	}
}

// tile is where the logits of classes j0..j1 live: their block of kept, or
// the shard's scratch tile when the backward pass recomputes.
func (h *headWorkspace) tile(st *shardState, j0, j1 int, kept bool) []float32 {
	if kept {
		return h.kept[j0*h.n : j1*h.n]
	}
	return st.z[:h.n*(j1-j0)]
}

// restoreTargets puts back the target logits that the forward pass left
// out of its sums (it set them to −Inf), so that a kept tile is bitwise the
// tile logits would recompute.
func (h *headWorkspace) restoreTargets(z []float32, j0, j1 int) {
	cw := j1 - j0
	for i := 0; i < h.n; i++ {
		if y := int(h.lab[i]); y >= j0 && y < j1 {
			z[i*cw+y-j0] = h.zt[i]
		}
	}
}

func (h *headWorkspace) shardTileRange(k int) (t0, t1 int) {
	return par.Range(k, h.shardTiles, h.tiles)
}

func (h *headWorkspace) forwardShard(k int) {
	st := &h.sh[k]
	n := h.n
	ninf := float32(math.Inf(-1))
	for i := 0; i < n; i++ {
		st.m[i], st.s[i], st.zsum[i] = ninf, 0, 0
	}
	t0, t1 := h.shardTileRange(k)
	for tile := t0; tile < t1; tile++ {
		j0, j1 := h.tileRange(tile)
		cw := j1 - j0
		z := h.tile(st, j0, j1, h.keep)
		if h.lazyW {
			h.normW(j0, j1)
		}
		h.logits(z, j0, j1)
		for i := 0; i < n; i++ {
			vals, y := h.classLogits(st, z[i*cw:(i+1)*cw], i, j0)
			if h.ada.mod != nil {
				mv := st.mod[:len(vals)]
				copy(mv, vals)
				h.ada.modRow(mv, st.dmod[:len(vals)], i)
				vals = mv
			}
			if y >= 0 {
				// The target is handled exactly in finishRow; leave it out.
				if len(vals) == 1 {
					continue
				}
				vals[y] = float32(math.Inf(-1))
			}
			if h.eps != 0 {
				var sum float64
				for j, v := range vals {
					if j != y {
						sum += float64(v)
					}
				}
				st.zsum[i] += sum
			}
			st.m[i], st.s[i] = asm.MaxSumExp(vals, st.m[i], st.s[i])
		}
	}
}

// classLogits returns row i's logits of the classes in the tile starting
// at w row j0, given its row of raw logits (one per w row), and the index
// of the target class among them (−1 when it is not in the tile). Without
// sub-centers these are the row itself. With K, each class's logit is the
// largest of its K (ties to the lowest row), written to st.cls with the
// arg-max in st.arg, and the target class's is z_y.
func (h *headWorkspace) classLogits(st *shardState, row []float32, i, j0 int) ([]float32, int) {
	k := h.k
	y := int(h.lab[i]) - j0/k // lab is −1 for a label on another shard
	if y < 0 || y >= len(row)/k {
		y = -1
	}
	if k == 1 {
		return row, y
	}
	cls, arg := st.cls[:len(row)/k], st.arg[:len(row)/k]
	for c := range cls {
		g := row[c*k : (c+1)*k]
		best := 0
		for q, v := range g[1:] {
			if v > g[best] {
				best = q + 1
			}
		}
		cls[c], arg[c] = g[best], int32(best)
	}
	if y >= 0 {
		cls[y], arg[y] = h.zt[i], h.targ[i]
	}
	return cls, y
}

// backwardShard turns each tile's logits into G = ∂L/∂z, then into the
// cosine-space gradient Gc (z_ij = A_i·B_j·c_ij, with φ′ at the target), and
// accumulates dX̂ += (Gc·diag(1/‖W‖))·W and writes dW for its classes. With
// sub-centers, each class's gradient goes to its arg-max row only.
//
// Gc·diag(1/‖W‖) overwrites the tile's logits, so a kept tile serves one
// backward pass; a further one recomputes (see keptFresh).
func (h *headWorkspace) backwardShard(k int) {
	st := &h.sh[k]
	n, d := h.n, h.d
	radial := h.rowScaleIsNorm()
	large := h.desc.colNorm
	epsC := float32(h.eps / float64(h.classes) * float64(h.scale))
	clear(st.radial)
	first := true
	t0, t1 := h.shardTileRange(k)
	for tile := t0; tile < t1; tile++ {
		j0, j1 := h.tileRange(tile)
		cw := j1 - j0
		z, g := h.tile(st, j0, j1, h.useKept), st.g[:n*cw]
		out := z // Gc/‖W‖, the dX̂ product's operand, over the logits
		switch {
		case !h.useKept:
			h.logits(z, j0, j1)
		case h.k == 1:
			h.restoreTargets(z, j0, j1)
		}
		colRad := st.colRad[:cw]
		clear(colRad)
		winv := h.winv[j0:j1]
		for i := 0; i < n; i++ {
			zr, gr, or := z[i*cw:(i+1)*cw], g[i*cw:(i+1)*cw], out[i*cw:(i+1)*cw]
			if h.k > 1 {
				h.subCenterGrads(st, zr, gr, or, i, j0, epsC)
				continue
			}
			y := int(h.lab[i]) - j0
			hasY := y >= 0 && y < cw
			if !radial && !large {
				// ArcFace, CosFace, CombinedMargin: Gc = A·G with A = s
				// folded into the softmax's scale, φ′ at the target, and
				// Gc/‖W_j‖ for the dX̂ product.
				a := h.rowA[i]
				var dm []float32
				if h.ada.mod != nil {
					// AdaFace, CurricularFace: the softmax of the
					// modulated logits, times their ∂z′/∂z.
					dm = st.dmod[:cw]
					copy(gr, zr)
					h.ada.modRow(gr, dm, i)
					asm.SoftmaxScaled(gr, gr, h.shift[i], h.softmaxScale(i, a))
				} else {
					asm.SoftmaxScaled(gr, zr, h.shift[i], h.softmaxScale(i, a))
				}
				if epsC != 0 {
					sub := epsC * a
					for j := range gr {
						gr[j] -= sub
					}
				}
				if dm != nil {
					asm.Mul(gr, gr, dm)
				}
				if hasY {
					gr[y] = (h.gTarget[i] - epsC) * a * h.dphi[i]
				}
				asm.Mul(or, gr, winv)
				continue
			}
			asm.SoftmaxScaled(gr, zr, h.shift[i], h.softmaxScale(i, 1))
			if hasY {
				gr[y] = h.gTarget[i]
			}
			if epsC != 0 {
				for j := range gr {
					gr[j] -= epsC
				}
			}
			if radial {
				var r float32
				for j, gv := range gr {
					r += gv * zr[j]
				}
				st.radial[i] += r
			}
			if large {
				for j, gv := range gr {
					colRad[j] += gv * zr[j]
				}
			}
			a := h.rowA[i]
			for j, gv := range gr {
				b := float32(1)
				if large && winv[j] != 0 {
					// B_j = ‖W_j‖. A zero row keeps B = 1: its logits
					// W_j·x are linear, and Σ_i G_ij·‖x_i‖·x̂_i is then
					// its exact gradient (see below).
					b = h.wnorm[j0+j]
				}
				gc := gv * (a * b)
				if j == y {
					gc *= h.dphi[i]
					if large && winv[j] == 0 {
						gc = 0 // target of a zero row: no gradient (documented)
					}
				}
				gr[j] = gc
				or[j] = gc * winv[j]
			}
		}
		if h.dx != nil {
			beta := float32(1)
			if first {
				beta = 0
			}
			ld := h.dxStride()
			h.gemmNN(n, d, cw, 1, out, cw, h.w.Data[j0*d:j1*d], d, beta, st.dxhat[:(n-1)*ld+d], ld)
			first = false
		}
		if h.dw != nil || h.step != nil {
			h.gradW(st, g, z, j0, j1)
		}
	}
}

// softmaxScale is the factor of row i's softmax kernel: the reduction
// factor, the row's 1/Σ e^(z−max) and a (the row scale folded in, or 1).
func (h *headWorkspace) softmaxScale(i int, a float32) float32 {
	return float32(float64(h.scale) * float64(a) * h.rowInv[i])
}

// subCenterGrads is backwardShard's row i with K sub-centers (ArcFace,
// CosFace, CombinedMargin: A_i = s, B = 1): the softmax over the class
// logits zr, then each class's cosine-space gradient on its arg-max row of
// gr and, divided by that row's norm, of or; every other row gets 0.
func (h *headWorkspace) subCenterGrads(st *shardState, zr, gr, or []float32, i, j0 int, epsC float32) {
	k := h.k
	cls, y := h.classLogits(st, zr, i, j0)
	gcls := st.gcls[:len(cls)]
	var dm []float32
	if h.ada.mod != nil {
		dm = st.dmod[:len(cls)]
		copy(gcls, cls)
		h.ada.modRow(gcls, dm, i)
		asm.SoftmaxScaled(gcls, gcls, h.shift[i], h.softmaxScale(i, 1))
	} else {
		asm.SoftmaxScaled(gcls, cls, h.shift[i], h.softmaxScale(i, 1))
	}
	if y >= 0 {
		gcls[y] = h.gTarget[i]
	}
	clear(gr)
	clear(or)
	a := h.rowA[i]
	for c, gv := range gcls {
		gc := (gv - epsC) * a
		if c == y {
			gc *= h.dphi[i]
		} else if dm != nil {
			gc *= dm[c]
		}
		r := c*k + int(st.arg[c])
		gr[r] = gc
		or[r] = gc * h.winv[j0+r]
	}
}

// gradWTile turns the tile's cosine-space gradient g (N×cw) into dW for
// classes j0..j1: dŴ = gᵀ·X̂ in blocks of rows into scratch (the tile's
// logits, no longer needed), then the normalisation backward of each row
// from there into dw, which is written once, row by row, in a stream (a
// GEMM writing straight into a large dw stalls on every line it misses).
// With Accumulate the rows are added to dw instead.
func (h *headWorkspace) gradWTile(st *shardState, g, scratch []float32, j0, j1 int) {
	d, cw := h.d, j1-j0
	dwt := h.dw.Data[j0*d : j1*d]
	rb := min(cw, len(scratch)/d)
	if rb < min(cw, 16) {
		rb = min(cw, max(1, tileFloats/d))
		st.acc = grow(st.acc, rb*d)
		scratch = st.acc
	}
	for b0 := 0; b0 < cw; b0 += rb {
		m := min(rb, cw-b0)
		blk := scratch[:m*d]
		asm.GemmTNPacked(m, 1, g[b0:], cw, &h.pxT, 0, blk, d)
		for j := 0; j < m; j++ {
			row, out := blk[j*d:(j+1)*d], dwt[(b0+j)*d:(b0+j+1)*d]
			if !h.accum {
				h.normBackwardW(out, row, st.colRad[b0+j], j0+b0+j)
				continue
			}
			h.normBackwardW(row, row, st.colRad[b0+j], j0+b0+j)
			asm.Add(out, out, row)
		}
	}
}

// normBackwardW writes ∂L/∂W_j into dst from dŴ_j in src (dst may be
// src); colRad is Σ_i G_ij·z_ij (L-Softmax's radial term).
func (h *headWorkspace) normBackwardW(dst, src []float32, colRad float32, j int) {
	winv := h.winv[j]
	if h.desc.colNorm {
		if winv == 0 {
			copy(dst, src) // zero row of L-Softmax: dŴ_j is already ∂L/∂W_j
			return
		}
		asm.NormalizeBackward(dst, src, h.w.Row(j), winv, colRad*winv)
		return
	}
	asm.NormalizeBackward(dst, src, h.w.Row(j), winv, 0)
}

// dxStride is the row stride of the shards' dX̂: D, padded by a cache
// line when D is a multiple of 256 floats (1 KiB), whose rows would all
// fall in a few L1 sets and thrash the GEMM's accumulation into them.
func (h *headWorkspace) dxStride() int {
	if h.d%256 == 0 {
		return h.d + 16
	}
	return h.d
}

// gradX sums the shards' dX̂ in shard order and applies the normalisation
// backward (plus the radial term for SphereFace and LargeMargin).
func (h *headWorkspace) gradX(lo, hi int) {
	d, ld := h.d, h.dxStride()
	radial := h.rowScaleIsNorm()
	for i := lo; i < hi; i++ {
		acc := h.sh[0].dxhat[i*ld : i*ld+d]
		r := h.sh[0].radial[i]
		for k := 1; k < len(h.sh); k++ {
			asm.Add(acc, acc, h.sh[k].dxhat[i*ld:i*ld+d])
			r += h.sh[k].radial[i]
		}
		var rad float32
		if radial {
			rad = r * h.xinv[i]
		}
		if h.desc.normGrad {
			epsC := float32(h.eps / float64(h.classes) * float64(h.scale))
			rad = h.ada.radial(i, h.gTarget[i]-epsC, h.lab[i] >= 0, h.magReg, h.scale)
		}
		if h.linearZeroRow(i) { // not normalised: dX̂_i is ∂L/∂x_i
			out := h.dx.Row(i)
			if !h.accum {
				copy(out, acc)
				continue
			}
			asm.Add(out, out, acc)
			continue
		}
		if !h.accum {
			asm.NormalizeBackward(h.dx.Row(i), acc, h.x.Row(i), h.xinv[i], rad)
			continue
		}
		asm.NormalizeBackward(acc, acc, h.x.Row(i), h.xinv[i], rad)
		asm.Add(h.dx.Row(i), h.dx.Row(i), acc)
	}
}
