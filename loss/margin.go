package loss

import (
	"fmt"
	"sync"

	"github.com/marginloss/marginloss/asm"
)

// MarginSoftmax is a softmax cross-entropy over margin-adjusted logits:
// ArcFace, CosFace, the combined margin, SphereFace (A-Softmax) and
// L-Softmax, and the adaptive margins AdaFace, MagFace, ElasticArcFace,
// ElasticCosFace and CurricularFace (see their constructors; their
// per-call state is AdaptiveState). Build it with one of the constructors;
// the exported fields are options that may be changed between calls.
//
// For x (N×D embeddings), W (C×D class weights) and labels y, with
// t = cos θ_y the target cosine, the logits are
//
//	ArcFace, CosFace, CombinedMargin: x and W rows L2-normalised,
//	    z_j = s·cos θ_j (j ≠ y),  z_y = s·φ(t)
//	SphereFace: W rows normalised, x not,
//	    z_j = ‖x‖·cos θ_j,  z_y = ‖x‖·(λ·t + ψ(θ))/(1+λ)
//	LargeMargin (L-Softmax): nothing normalised,
//	    z_j = W_j·x,  z_y = ‖W_y‖‖x‖·(λ·t + ψ(θ))/(1+λ)
//
// with ψ(θ) = (−1)^k·cos(mθ) − 2k, k = ⌊mθ/π⌋, and the loss is the softmax
// cross-entropy of z, reduced by Reduction. Classes are walked in tiles
// with an online log-sum-exp. When the N×C logits fit TileBudget (16 MiB by
// default) the forward tiles are kept for the backward pass; beyond it the
// backward pass recomputes them, so no N×C matrix is ever built for large C.
//
// LossFromCosines computes the same loss (ArcFace, CosFace, CombinedMargin)
// from cosines the caller computed, with the gradient with respect to them.
//
// A MarginSoftmax keeps scratch buffers between calls (they never hold
// references to the caller's matrices once a call returns); calls on one
// value from several goroutines are serialised.
//
// Bounds: s·max|φ| must not exceed MaxLogit (ErrParam). Finite data whose
// logits or gradients would still leave float32 (huge norms for SphereFace
// and L-Softmax, rows of x just above the zero-row threshold) are reported
// with ErrNonFinite before any output is written.
type MarginSoftmax struct {
	// Reduction combines the per-row losses: Mean (over N) or Sum.
	Reduction Reduction
	// EasyMargin (ArcFace only) uses cos(θ+m) when cos θ > 0 and cos θ
	// otherwise, instead of the threshold fallback.
	EasyMargin bool
	// DetachMargin (ArcFace, CosFace, CombinedMargin): the loss includes the
	// margin, but the gradient treats φ(t) − t as a constant (the
	// arcface_torch / opensphere convention). SphereFace and LargeMargin
	// ignore it.
	DetachMargin bool
	// Accumulate adds the gradients to what dx and dw hold instead of
	// overwriting them, so that ArcFace plus center loss, or micro-batches,
	// need no extra buffers. It costs one scan of dx and dw per call (their
	// old values must be finite and leave room for the sum).
	Accumulate bool
	// TileBudget bounds, in bytes, the scratch that may keep the forward
	// pass's logit tiles for the backward pass (N·C floats), which then
	// needs one GEMM fewer (three instead of four). 0 means
	// DefaultTileBudget; a negative value always recomputes the tiles. Above
	// the budget the backward pass recomputes them, so memory stays O(N·D)
	// plus a few floats per class whatever C is. Both paths give bitwise
	// the same results.
	TileBudget int
	// SubCenters is K, the number of sub-centers per class (sub-center
	// ArcFace, Deng et al. 2020): 0 or 1 means none. With K > 1, w has C·K
	// rows (and LossFromCosines's cos has C·K columns), class c owning rows
	// c·K … c·K+K−1 (the insightface / pytorch-metric-learning layout).
	// cos θ_c is the largest of the class's K cosines (ties go to the lowest
	// row), the margin applies to the target class's largest, and each
	// class's gradient flows only to that arg-max row. Labels stay class
	// indices in [0, C). K > 1 is allowed for ArcFace, CosFace and
	// CombinedMargin; SphereFace, LargeMargin or K < 0 give an error wrapping
	// ErrParam, and a row count that is not a multiple of K one wrapping
	// ErrShape.
	SubCenters int
	// LabelSmoothing is ε in [0, 1) (ErrParam otherwise, NaN included):
	// PyTorch's cross_entropy(z, y, label_smoothing=ε) on the margin
	// logits z, that is the target distribution (1−ε)·onehot(y) + ε/C over
	// the C classes (not the C·K sub-center rows). The row loss is
	// lse(z) − (1−ε)·z_y − (ε/C)·Σ_j z_j and ∂L/∂z_j = p_j − (1−ε)·[j = y] − ε/C
	// (times 1/N under Mean). 0 is plain cross-entropy.
	LabelSmoothing float32
	// ElasticPlus (ElasticArcFace, ElasticCosFace): ElasticFace+ as the
	// authors' code assigns the draws: with the draws sorted ascending,
	// m_(0) ≤ … ≤ m_(N−1), and π(i) the row holding the i-th largest target
	// cosine (ties to the lower row), row i gets m_(π(i)) —
	// margin_sorted[argsort_desc(cos)], indexed by row, not its inverse. It
	// reads every row's target cosine, hence ShardedHead.Prepare.
	ElasticPlus bool
	// Seed (ElasticArcFace, ElasticCosFace) selects the margin draws: the
	// k-th drawing call (k = State().Calls) uses PartialFC's SplitMix64
	// stream of (Seed, k); row i takes the uniforms 2i and 2i+1 of it,
	// u1 = (v>>11 + 1)·2⁻⁵³, u2 = (v>>11)·2⁻⁵³, and
	// m_i = float32(m + std·sqrt(−2 ln u1)·cos(2π u2)) (Box–Muller, float64).
	// Row i's draw thus depends on (Seed, k, i) only: every shard of a
	// ShardedHead and every GOMAXPROCS draws the same margins.
	Seed uint64
	// Margins (ElasticArcFace, ElasticCosFace), when non-nil, holds the N
	// per-row draws of the next calls in place of the seeded ones (before
	// ElasticPlus's assignment): for tests, and for replaying draws made
	// elsewhere. len(Margins) must equal N (ErrShape), entries finite
	// (ErrNonFinite). A call that uses it draws nothing and leaves
	// State().Calls as it is. The slice is read during the call only.
	Margins []float32
	// FusedStep, when non-nil, steps W inside Loss's backward pass: each
	// tile of W's rows is stepped as soon as its gradient is complete, so
	// dw may be nil and the C×D gradient of W is never stored. With dw
	// non-nil, dw receives the gradient as usual and the step reads it
	// there (with Accumulate: what dw holds after the call, a gradient
	// accumulated over micro-batches); with dw nil the step takes this
	// call's gradient. W is updated in place and comes out as Loss followed
	// by the optimizer's step on dw (optim: bit for bit); the loss and dx
	// are the same as without it. PartialFC steps only the rows of S.
	// An empty batch does not step; ShardedHead ignores FusedStep.
	FusedStep WeightStepper
	// Precision is the arithmetic of the head's GEMMs: Float32 (the zero
	// value, exact) or BFloat16 (operands rounded to bfloat16, float32
	// sums; see the package doc). Other values give an error wrapping
	// ErrParam. PartialFC and ShardedHead honour their Head's; Precision
	// does not apply to LossFromCosines, which has no GEMM.
	Precision Precision

	kind   headKind
	s      float32 // scale (ArcFace, CosFace, Combined)
	m1, m2 float32 // Combined: m1, m2; ArcFace, CosFace: m2 = m
	m3     float32
	intM   int     // SphereFace, LargeMargin
	lambda float32 // SphereFace, LargeMargin
	ad     adaptiveParams

	state       AdaptiveState // AdaFace, CurricularFace, ElasticFace
	lastMargins []float32     // AppendMargins

	mu  sync.Mutex
	ws  headWorkspace
	cws cosineWorkspace // LossFromCosines's scratch
}

type headKind int

const (
	kindNone headKind = iota
	kindArc
	kindCos
	kindCombined
	kindSphere
	kindLarge
	kindAda
	kindMag
	kindElasticArc
	kindElasticCos
	kindCurricular
	kindCount // the number of kinds (kinds' length)
)

// ArcFace returns the additive angular margin loss with scale s and margin
// m: target logit s·cos(θ+m), with insightface's fallback t − m·sin m when
// θ+m would pass π (t ≤ cos(π−m)). Needs s > 0 and 0 ≤ m < π/2.
func ArcFace(s, m float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindArc, s: s, m2: m}
}

// CosFace returns the additive cosine margin loss (AM-Softmax): target
// logit s·(cos θ − m). Needs s > 0 and m ≥ 0.
func CosFace(s, m float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindCos, s: s, m2: m}
}

// CombinedMargin returns the combined margin loss of insightface: target
// logit s·(cos(m1·θ + m2) − m3), with no fallback. ArcFace is (1, m, 0),
// CosFace is (1, 0, m). Needs s > 0, 0 < m1 ≤ 8 (as SphereFace's m) and
// finite m2, m3.
func CombinedMargin(s, m1, m2, m3 float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindCombined, s: s, m1: m1, m2: m2, m3: m3}
}

// SphereFace returns A-Softmax with integer margin m (1..8) and annealing
// weight λ ≥ 0: W rows are normalised, x is not, and the target logit is
// ‖x‖·(λ·cos θ + ψ(θ))/(1+λ). Lower λ over training with SetLambda and a
// LambdaSchedule.
func SphereFace(m int, lambda float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindSphere, intM: m, lambda: lambda}
}

// LargeMargin returns L-Softmax with integer margin m (1..8) and annealing
// weight λ ≥ 0: logits are W_j·x and the target logit is
// ‖W_y‖‖x‖·(λ·cos θ + ψ(θ))/(1+λ). LargeMargin(1, 0) is the plain softmax
// of a linear layer without bias.
func LargeMargin(m int, lambda float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindLarge, intM: m, lambda: lambda}
}

// SetLambda changes λ of SphereFace or LargeMargin (for annealing). It has
// no effect on the other losses.
func (l *MarginSoftmax) SetLambda(lambda float32) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.lambda = lambda
	l.mu.Unlock()
}

// Lambda returns the current λ of SphereFace or LargeMargin.
func (l *MarginSoftmax) Lambda() float32 {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lambda
}

var errNilHead = fmt.Errorf("%w: nil *MarginSoftmax (use ArcFace, CosFace, …)", ErrParam)

// DefaultTileBudget is the TileBudget of a zero MarginSoftmax field:
// 16 MiB, which keeps the tiles of N = 256 rows up to C = 16,384 classes.
const DefaultTileBudget = 16 << 20

// MaxLogit bounds s·max|φ| for ArcFace, CosFace and CombinedMargin, the
// largest logit magnitude the parameters alone can produce (max|φ| is
// 1 + m·sin m for ArcFace, 1 + m for CosFace and 1 + |m3| for
// CombinedMargin). Beyond it the softmax sums and the gradient factors
// (up to s·max|φ′|·‖x‖⁻¹) have no room left in float32.
const MaxLogit = 1e30

// String describes the loss and its parameters.
func (l *MarginSoftmax) String() string {
	if l == nil {
		return "<nil MarginSoftmax>"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.kind.desc(); d.describe != nil {
		return d.describe(l)
	}
	return kinds[kindNone].name
}

// Validate reports whether the configuration is usable (the parameters of
// the constructor, λ, the Reduction, SubCenters, LabelSmoothing), so that a
// program can reject bad flags before it loads data. It returns nil or an
// error wrapping ErrParam: the same one Loss and LossFromCosines would
// return.
func (l *MarginSoftmax) Validate() error {
	if l == nil {
		return errNilHead
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.margin()
	return err
}

// phiBounds returns bounds on |φ(t)| and |φ′(t)| over t ∈ [−1, 1] for the
// validated configuration (φ′ with the documented pole clamp, or 1 under
// DetachMargin).
func (l *MarginSoftmax) phiBounds() (phiMax, dphiMax float64) {
	d := l.kind.desc()
	if d.bounds == nil {
		return 1, 1
	}
	phiMax, dphiMax = d.bounds(l)
	if l.DetachMargin && d.detach {
		dphiMax = 1
	}
	return phiMax, dphiMax
}

// margin validates the configuration and returns the margin function.
func (l *MarginSoftmax) margin() (asm.Margin, error) {
	g, err := l.marginFunc()
	if err != nil {
		return g, err
	}
	if d := l.kind.desc(); d.scaled {
		if phiMax, _ := l.phiBounds(); float64(l.s)*phiMax > MaxLogit {
			return asm.Margin{}, fmt.Errorf("%w: %s s·max|φ| = %g·%g exceeds MaxLogit = %g", ErrParam, d.name, l.s, phiMax, MaxLogit)
		}
	}
	return g, nil
}

// checkOptions validates SubCenters, LabelSmoothing and Precision (a head not built by
// a constructor is left to marginFunc's own error).
func (l *MarginSoftmax) checkOptions() error {
	d := l.kind.desc()
	name := d.name
	if l.SubCenters < 0 {
		return fmt.Errorf("%w: %s SubCenters = %d, want K ≥ 0 (0 or 1: no sub-centers)", ErrParam, name, l.SubCenters)
	}
	if l.SubCenters > 1 && !d.subCenters {
		return fmt.Errorf("%w: %s does not support SubCenters = %d (only ArcFace, CosFace, CombinedMargin and the adaptive margins do)", ErrParam, name, l.SubCenters)
	}
	if !(l.LabelSmoothing >= 0 && l.LabelSmoothing < 1) {
		return fmt.Errorf("%w: %s LabelSmoothing ε = %g, want 0 ≤ ε < 1", ErrParam, name, l.LabelSmoothing)
	}
	return l.Precision.check(name)
}

// headConfig is everything of a MarginSoftmax that a call reads: the
// constructor's parameters and every option. ShardedHead.Backward compares
// it with the one its Forward call saw.
type headConfig struct {
	kind                   headKind
	s, m1, m2, m3, lambda  float32
	ad                     adaptiveParams
	plus                   bool
	intM                   int
	reduction              Reduction
	easy, detach, accum    bool
	tileBudget, subCenters int
	smoothing              float32
	precision              Precision
}

func (l *MarginSoftmax) config() headConfig {
	return headConfig{kind: l.kind, s: l.s, m1: l.m1, m2: l.m2, m3: l.m3, lambda: l.lambda, intM: l.intM, ad: l.ad, plus: l.ElasticPlus,
		reduction: l.Reduction, easy: l.EasyMargin, detach: l.DetachMargin, accum: l.Accumulate,
		tileBudget: l.TileBudget, subCenters: l.SubCenters, smoothing: l.LabelSmoothing, precision: l.Precision}
}

// changed names the first part of the configuration that differs between
// c and d, or returns "" when they are the same.
func (c headConfig) changed(d headConfig) string {
	switch {
	case c.kind != d.kind || c.s != d.s || c.m1 != d.m1 || c.m2 != d.m2 || c.m3 != d.m3 || c.intM != d.intM || c.ad != d.ad:
		return "the margin parameters"
	case c.lambda != d.lambda:
		return "λ"
	case c.reduction != d.reduction:
		return "Reduction"
	case c.easy != d.easy:
		return "EasyMargin"
	case c.detach != d.detach:
		return "DetachMargin"
	case c.accum != d.accum:
		return "Accumulate"
	case c.tileBudget != d.tileBudget:
		return "TileBudget"
	case c.subCenters != d.subCenters:
		return "SubCenters"
	case c.smoothing != d.smoothing:
		return "LabelSmoothing"
	case c.plus != d.plus:
		return "ElasticPlus"
	case c.precision != d.precision:
		return "Precision"
	}
	return ""
}

// subCenters is K ≥ 1 for a validated configuration.
func (l *MarginSoftmax) subCenters() int { return max(l.SubCenters, 1) }

func (l *MarginSoftmax) marginFunc() (asm.Margin, error) {
	d := l.kind.desc()
	if err := l.Reduction.check(); err != nil {
		return asm.Margin{}, err
	}
	if err := l.checkOptions(); err != nil {
		return asm.Margin{}, err
	}
	if d.params == nil {
		return asm.Margin{}, fmt.Errorf("%w: MarginSoftmax not built by a constructor (use ArcFace, CosFace, …)", ErrParam)
	}
	if d.scaled && (!(l.s > 0) || !isFinite(l.s)) {
		return asm.Margin{}, fmt.Errorf("%w: %s scale s = %g, want finite s > 0", ErrParam, d.name, l.s)
	}
	return d.params(l)
}

// Loss returns the reduced loss for embeddings x (N×D), class weights w
// (C×D) and labels (N values in [0, C)). Where dx (N×D) or dw (C×D) is
// non-nil, it overwrites it with the gradient of the returned loss (adds it
// with Accumulate).
//
// dx may be x itself (the gradient then replaces the embeddings); any other
// sharing of memory between dx, dw, x, w and labels is an error wrapping
// ErrOverlap.
//
// On bad input it returns an error wrapping ErrShape, ErrLabel,
// ErrNonFinite, ErrParam or ErrOverlap and leaves dx and dw untouched; a
// nil error always comes with a finite loss and finite gradients. Every
// input is validated whatever N is: an empty batch (N = 0) with a non-finite
// w is an error too, and so, with Accumulate, is a dw that already holds a
// NaN or ±Inf; a valid empty batch returns 0 with any gradient asked for
// zeroed (left as is with Accumulate).
func (l *MarginSoftmax) Loss(x, w Matrix, labels []int32, dx, dw *Matrix) (float32, error) {
	return l.lossStep(x, w, labels, dx, dw, nil)
}

// lossStep is Loss with the fused step step, or FusedStep when step is nil
// (PartialFC passes its row map of FusedStep).
func (l *MarginSoftmax) lossStep(x, w Matrix, labels []int32, dx, dw *Matrix, step WeightStepper) (float32, error) {
	if l == nil {
		return 0, errNilHead
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if step == nil {
		step = l.FusedStep
	}
	g, err := l.margin()
	if err != nil {
		return 0, err
	}
	if err := checkMatrix("x", x); err != nil {
		return 0, err
	}
	if err := checkMatrix("w", w); err != nil {
		return 0, err
	}
	if w.Rows < 1 || w.Cols < 1 {
		return 0, fmt.Errorf("%w: w is %d×%d, want at least one class and one dimension", ErrShape, w.Rows, w.Cols)
	}
	n, c, d := x.Rows, w.Rows, w.Cols
	if x.Cols != d && !(n == 0 && x.Cols == 0) {
		return 0, fmt.Errorf("%w: x has %d columns but w has %d (both are D)", ErrShape, x.Cols, d)
	}
	if k := l.subCenters(); c%k != 0 {
		return 0, fmt.Errorf("%w: w has %d rows, not a multiple of SubCenters = %d", ErrShape, c, k)
	}
	if err := l.checkCall(n); err != nil {
		return 0, err
	}
	if err := checkLabels(labels, n, c/l.subCenters()); err != nil {
		return 0, err
	}
	if err := checkGrad("dx", dx, n, x.Cols); err != nil {
		return 0, err
	}
	if err := checkGrad("dw", dw, c, d); err != nil {
		return 0, err
	}
	outs := [...]span{gradSpan("dx", dx, "x"), gradSpan("dw", dw, "")}
	ins := [...]span{spanOf("x", x.Data), spanOf("w", w.Data), spanOf("labels", labels)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return 0, err
	}
	if err := checkStepOverlap(step, x, w, labels); err != nil {
		return 0, err
	}
	if n == 0 {
		for j := 0; j < c; j++ {
			if nr := asm.L2Norm(w.Row(j)); !isFinite(nr) {
				return 0, fmt.Errorf("%w: w row %d has norm %v (a NaN or ±Inf element, or a norm beyond float32)", ErrNonFinite, j, nr)
			}
		}
		if !l.Accumulate {
			zero(dx)
			zero(dw)
		} else if err := accumFinite("dw", dw); err != nil {
			return 0, err // as a call with rows refuses it (bounds)
		}
		return 0, nil
	}
	h := &l.ws
	h.setup(l, g, x, w, labels, dx != nil || dw != nil, classSpan{0, w.Rows / l.subCenters()})
	defer h.release()
	h.lazyW = true
	if err := h.norms(); err != nil {
		return 0, err
	}
	if l.kind.adaptive() {
		if err := h.adaptiveMargins(l, l.state, nil); err != nil {
			return 0, err
		}
	}
	phiMax, dphiMax := l.phiBounds()
	dwb := dw
	if dwb == nil && step != nil {
		dwb = &Matrix{} // the fused step's gradient must be finite too
	}
	if err := h.forwardChecked(h.adaptivePhiMax(phiMax), dphiMax, dx, dwb); err != nil {
		return 0, err
	}
	h.step = step
	loss, err := h.run(dx, dw)
	if err == nil {
		h.ada.commit(l, &l.state, n)
	}
	return loss, err
}
