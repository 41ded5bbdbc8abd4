package loss

import (
	"fmt"
	"math"
	"sync"

	"github.com/marginloss/marginloss/asm"
)

// MarginSoftmax is a softmax cross-entropy over margin-adjusted logits:
// ArcFace, CosFace, the combined margin, SphereFace (A-Softmax) and
// L-Softmax. Build it with one of the constructors; the exported fields are
// options that may be changed between calls.
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
// cross-entropy of z, reduced by Reduction. The N×C logit matrix is never
// built: classes are walked in tiles with an online log-sum-exp, and the
// backward pass recomputes the tiles.
//
// A MarginSoftmax keeps scratch buffers between calls; calls on one value
// from several goroutines are serialised.
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

	kind   headKind
	s      float32 // scale (ArcFace, CosFace, Combined)
	m1, m2 float32 // Combined: m1, m2; ArcFace, CosFace: m2 = m
	m3     float32
	intM   int     // SphereFace, LargeMargin
	lambda float32 // SphereFace, LargeMargin

	mu sync.Mutex
	ws headWorkspace
}

type headKind int

const (
	kindNone headKind = iota
	kindArc
	kindCos
	kindCombined
	kindSphere
	kindLarge
)

var kindNames = [...]string{kindNone: "MarginSoftmax", kindArc: "ArcFace", kindCos: "CosFace",
	kindCombined: "CombinedMargin", kindSphere: "SphereFace", kindLarge: "LargeMargin"}

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
	l.mu.Lock()
	l.lambda = lambda
	l.mu.Unlock()
}

// Lambda returns the current λ of SphereFace or LargeMargin.
func (l *MarginSoftmax) Lambda() float32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lambda
}

// String describes the loss and its parameters.
func (l *MarginSoftmax) String() string {
	name := kindNames[l.kind]
	switch l.kind {
	case kindArc, kindCos:
		return fmt.Sprintf("%s(s=%g, m=%g)", name, l.s, l.m2)
	case kindCombined:
		return fmt.Sprintf("%s(s=%g, m1=%g, m2=%g, m3=%g)", name, l.s, l.m1, l.m2, l.m3)
	case kindSphere, kindLarge:
		return fmt.Sprintf("%s(m=%d, λ=%g)", name, l.intM, l.lambda)
	}
	return name
}

// margin validates the configuration and returns the margin function.
func (l *MarginSoftmax) margin() (asm.Margin, error) {
	name := kindNames[l.kind]
	fin := func(v float32) bool { return isFinite(v) }
	if err := l.Reduction.check(); err != nil {
		return asm.Margin{}, err
	}
	switch l.kind {
	case kindArc, kindCos, kindCombined:
		if !(l.s > 0) || !fin(l.s) {
			return asm.Margin{}, fmt.Errorf("%w: %s scale s = %g, want finite s > 0", ErrParam, name, l.s)
		}
	}
	switch l.kind {
	case kindArc:
		if !(l.m2 >= 0 && float64(l.m2) < math.Pi/2) {
			return asm.Margin{}, fmt.Errorf("%w: ArcFace margin m = %g, want 0 ≤ m < π/2", ErrParam, l.m2)
		}
		kind := asm.MarginArc
		if l.EasyMargin {
			kind = asm.MarginArcEasy
		}
		return asm.NewMargin(kind, 1, float64(l.m2), 0, 0, 0), nil
	case kindCos:
		if !(l.m2 >= 0) || !fin(l.m2) {
			return asm.Margin{}, fmt.Errorf("%w: CosFace margin m = %g, want finite m ≥ 0", ErrParam, l.m2)
		}
		return asm.NewMargin(asm.MarginCos, 1, float64(l.m2), 0, 0, 0), nil
	case kindCombined:
		if !(l.m1 > 0 && l.m1 <= 8) || !fin(l.m2) || !fin(l.m3) {
			return asm.Margin{}, fmt.Errorf("%w: CombinedMargin (m1, m2, m3) = (%g, %g, %g), want 0 < m1 ≤ 8 and finite m2, m3", ErrParam, l.m1, l.m2, l.m3)
		}
		return asm.NewMargin(asm.MarginCombined, float64(l.m1), float64(l.m2), float64(l.m3), 0, 0), nil
	case kindSphere, kindLarge:
		if l.intM < 1 || l.intM > 8 {
			return asm.Margin{}, fmt.Errorf("%w: %s margin m = %d, want an integer in 1..8", ErrParam, name, l.intM)
		}
		if !(l.lambda >= 0) || !fin(l.lambda) {
			return asm.Margin{}, fmt.Errorf("%w: %s λ = %g, want finite λ ≥ 0", ErrParam, name, l.lambda)
		}
		return asm.NewMargin(asm.MarginPsi, 0, 0, 0, l.intM, float64(l.lambda)), nil
	}
	return asm.Margin{}, fmt.Errorf("%w: MarginSoftmax not built by a constructor (use ArcFace, CosFace, …)", ErrParam)
}

// Loss returns the reduced loss for embeddings x (N×D), class weights w
// (C×D) and labels (N values in [0, C)). Where dx (N×D) or dw (C×D) is
// non-nil, it overwrites it with the gradient of the returned loss.
//
// On bad input it returns an error wrapping ErrShape, ErrLabel,
// ErrNonFinite or ErrParam and leaves dx and dw untouched. An empty batch
// (N = 0) returns 0 after validating shapes, with any gradient asked for
// zeroed.
func (l *MarginSoftmax) Loss(x, w Matrix, labels []int32, dx, dw *Matrix) (float32, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
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
	if err := checkLabels(labels, n, c); err != nil {
		return 0, err
	}
	if err := checkGrad("dx", dx, n, x.Cols); err != nil {
		return 0, err
	}
	if err := checkGrad("dw", dw, c, d); err != nil {
		return 0, err
	}
	if n == 0 {
		zero(dx)
		zero(dw)
		return 0, nil
	}
	h := &l.ws
	h.setup(l, g, x, w, labels)
	if err := h.norms(); err != nil {
		return 0, err
	}
	return h.run(dx, dw), nil
}
