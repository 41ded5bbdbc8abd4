package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// lossNames are the values -loss accepts.
var lossNames = []string{"arcface", "cosface", "sphereface", "lsoftmax", "combined", "softmax", "focal",
	"adaface", "magface", "elasticarc", "elasticcos", "curricular"}

// headConfig holds the loss hyper-parameters from the flags. Negative
// values mean "the default for the chosen loss".
type headConfig struct {
	S          float64 // scale for arcface, cosface, combined
	M          float64 // additive margin for arcface (angle) and cosface (cosine)
	M1, M2, M3 float64 // combined margin cos(m1·θ + m2) − m3
	IntM       int     // multiplicative margin for sphereface and lsoftmax
	Easy       bool    // EasyMargin
	Gamma      float64 // focal γ
	Pretrain   float64 // epochs of plain softmax before the margin (arcface, cosface, combined)
	Center     float64 // center loss weight λ (0 = off)
	CenterRate float64 // center update rate α of Center.Update
	// SphereFace/L-Softmax λ annealing: λ = max(λmin, base·(1+γ·iter)^−power).
	LambdaBase, LambdaGamma, LambdaPower, LambdaMin float64
	// Precision of the margin heads' GEMMs (loss.MarginSoftmax.Precision).
	Precision loss.Precision
}

// head is the classification layer on top of the embedding: class weights W
// (C×D) and the loss that turns (x, W, labels) into a value and gradients.
type head struct {
	Name   string
	Desc   string          // the loss and its hyper-parameters, for the log
	W      *mnistmlp.Param // W.W only: the optimizer keeps its state in wState
	wState optim.State
	C, D   int
	margin *loss.MarginSoftmax // nil for focal
	focal  *loss.Focal
	center *loss.Center // weighted by its Lambda, accumulated into dx

	// Plain softmax on the same W for the first preIters iterations.
	pre      *loss.MarginSoftmax
	preIters int

	anneal func(iter int) float32 // λ schedule (sphereface, lsoftmax), or nil
	lambda float32

	// scratch
	dx, logits, dlogits []float32
	parts               [2]float32 // last head and center loss values
}

// newHead builds the named head for C classes and D-dimensional embeddings;
// itersPerEpoch converts the -pretrain epochs to iterations.
func newHead(name string, cfg headConfig, C, D, itersPerEpoch int, rng *rand.Rand) (*head, error) {
	h := &head{Name: name, C: C, D: D, W: mnistmlp.NewParam(C*D, true)}
	// W ~ N(0, 1/D): for the normalised heads the scale does not matter, for
	// the linear ones it gives logits of order 1.
	std := math.Sqrt(1 / float64(D))
	for i := range h.W.W {
		h.W.W[i] = float32(rng.NormFloat64() * std)
	}
	def := func(v, d float64) float32 {
		if v < 0 {
			return float32(d)
		}
		return float32(v)
	}
	// Defaults: s=30 and the papers' margins, except for embeddings of
	// dimension 2 or 3 (the plots). On the unit circle the class clusters
	// cannot pass each other (a normalised loss only moves x along the
	// circle), so from a random start two classes often stay stuck in one
	// sector, and ten classes have only 36° each; on the sphere ArcFace
	// with s=30 also collapses at times. There a softmax start (x can move
	// through the centre), s=10 and smaller margins train reliably.
	lowDim := D <= 3
	pick := func(v, high, low float64) float32 {
		if v >= 0 {
			return float32(v)
		}
		if lowDim {
			return float32(low)
		}
		return float32(high)
	}
	s := pick(cfg.S, 30, 10)
	pretrain := float64(pick(cfg.Pretrain, 0, 1))
	switch name {
	case "arcface":
		m := pick(cfg.M, 0.5, 0.3)
		h.margin = loss.ArcFace(s, m)
		h.Desc = fmt.Sprintf("ArcFace s=%g m=%g", s, m)
	case "cosface":
		m := pick(cfg.M, 0.35, 0.2)
		h.margin = loss.CosFace(s, m)
		h.Desc = fmt.Sprintf("CosFace s=%g m=%g", s, m)
	case "combined":
		m1, m2, m3 := pick(cfg.M1, 1, 1), pick(cfg.M2, 0.3, 0.2), pick(cfg.M3, 0.2, 0.1)
		h.margin = loss.CombinedMargin(s, m1, m2, m3)
		h.Desc = fmt.Sprintf("CombinedMargin s=%g cos(%g·θ+%g)−%g", s, m1, m2, m3)
	case "sphereface", "lsoftmax":
		m := cfg.IntM
		if m <= 0 {
			m = 4
		}
		sched := loss.DefaultLambdaSchedule()
		sched.Base = def(cfg.LambdaBase, float64(sched.Base))
		sched.Gamma = def(cfg.LambdaGamma, float64(sched.Gamma))
		sched.Power = def(cfg.LambdaPower, float64(sched.Power))
		sched.Min = def(cfg.LambdaMin, float64(sched.Min))
		h.anneal = sched.At
		h.lambda = sched.At(0)
		desc := fmt.Sprintf("m=%d λ=max(%g, %g·(1+%g·iter)^−%g)", m, sched.Min, sched.Base, sched.Gamma, sched.Power)
		if name == "sphereface" {
			h.margin = loss.SphereFace(m, h.lambda)
			h.Desc = "SphereFace " + desc
		} else {
			h.margin = loss.LargeMargin(m, h.lambda)
			h.Desc = "L-Softmax " + desc
		}
	case "adaface", "magface", "elasticarc", "elasticcos", "curricular":
		// The papers' settings (../shared/ADAPTIVE.md): s = 64 and their
		// margins; -s and -m override s and m.
		sp := pick(cfg.S, 64, 10)
		switch name {
		case "adaface":
			m := pick(cfg.M, 0.4, 0.2)
			h.margin = loss.AdaFace(sp, m, 0.333, 0.01)
			h.Desc = fmt.Sprintf("AdaFace s=%g m=%g h=0.333 t_alpha=0.01", sp, m)
		case "magface":
			h.margin = loss.MagFace(sp, 10, 110, 0.45, 0.8, 35)
			h.Desc = fmt.Sprintf("MagFace s=%g l_a=10 u_a=110 l_m=0.45 u_m=0.8 λ_g=35", sp)
		case "elasticarc":
			m := pick(cfg.M, 0.5, 0.3)
			h.margin = loss.ElasticArcFace(sp, m, 0.05)
			h.Desc = fmt.Sprintf("ElasticArcFace s=%g m=%g std=0.05", sp, m)
		case "elasticcos":
			m := pick(cfg.M, 0.35, 0.2)
			h.margin = loss.ElasticCosFace(sp, m, 0.05)
			h.Desc = fmt.Sprintf("ElasticCosFace s=%g m=%g std=0.05", sp, m)
		case "curricular":
			m := pick(cfg.M, 0.5, 0.3)
			h.margin = loss.CurricularFace(sp, m, 0.01)
			h.Desc = fmt.Sprintf("CurricularFace s=%g m=%g α=0.01", sp, m)
		}
		h.margin.Seed = rng.Uint64()
	case "softmax":
		// ψ(θ) = cos θ with no normalisation: logits are exactly W_j·x.
		h.margin = loss.LargeMargin(1, 0)
		h.Desc = "softmax (linear logits W·x)"
	case "focal":
		h.focal = &loss.Focal{Gamma: def(cfg.Gamma, 2)}
		h.Desc = fmt.Sprintf("softmax focal γ=%g (linear logits W·x)", h.focal.Gamma)
	default:
		return nil, fmt.Errorf("unknown loss %q (want one of %s)", name, strings.Join(lossNames, ", "))
	}
	if h.margin != nil && name != "magface" { // MagFace's constructor sets EasyMargin, as its authors train
		h.margin.EasyMargin = cfg.Easy
	}
	switch name {
	case "arcface", "cosface", "combined":
		if h.preIters = int(pretrain * float64(itersPerEpoch)); h.preIters > 0 {
			h.pre = loss.LargeMargin(1, 0)
			h.Desc += fmt.Sprintf(", after %g epoch(s) of plain softmax", pretrain)
		}
	}
	if h.margin != nil && cfg.Precision != loss.Float32 {
		h.margin.Precision = cfg.Precision
		if h.pre != nil {
			h.pre.Precision = cfg.Precision
		}
		h.Desc += ", " + cfg.Precision.String() + " GEMMs"
	}
	if cfg.Center > 0 {
		h.center = &loss.Center{Centers: loss.Matrix{Rows: C, Cols: D, Data: make([]float32, C*D)},
			Alpha: def(cfg.CenterRate, 0.5), Lambda: float32(cfg.Center), Accumulate: true}
		h.Desc += fmt.Sprintf(" + %g·Center(α=%g)", h.center.Lambda, h.center.Alpha)
	}
	// Reject bad hyper-parameters now, before any data is loaded.
	var err error
	switch {
	case h.margin != nil:
		err = h.margin.Validate()
	case h.focal != nil:
		err = h.focal.Validate()
	}
	if err == nil && h.center != nil {
		err = h.center.Validate()
	}
	if err != nil {
		return nil, fmt.Errorf("-loss %s: %w", name, err)
	}
	return h, nil
}

// Step computes the loss of the n×D embeddings x for the labels at
// iteration iter, writes dL/dx into the returned buffer (owned by h),
// steps W with opt and updates the centers when center loss is on. The
// margin heads step W inside their backward pass (FusedStep: no C×D
// gradient is stored); focal's dW goes through h.W.Grad and opt.Step.
func (h *head) Step(x []float32, labels []int32, iter int, opt optim.SGD) (float32, []float32, error) {
	n := len(labels)
	X := loss.Matrix{Rows: n, Cols: h.D, Data: x[:n*h.D]}
	W := loss.Matrix{Rows: h.C, Cols: h.D, Data: h.W.W}
	h.dx = mnistmlp.Grow(h.dx, n*h.D)
	dX := loss.Matrix{Rows: n, Cols: h.D, Data: h.dx}
	var v float32
	var err error
	if h.focal != nil {
		dW := loss.Matrix{Rows: h.C, Cols: h.D, Data: h.W.Grad}
		v, err = h.focalStep(X, W, labels, &dX, &dW)
		if err == nil {
			err = opt.Step(h.W.W, h.W.Grad, &h.wState)
		}
	} else {
		if h.anneal != nil {
			h.lambda = h.anneal(iter)
			h.margin.SetLambda(h.lambda)
		}
		l := h.margin
		if iter < h.preIters {
			l = h.pre
		}
		l.FusedStep = opt.Fused(&h.wState) // this iteration's lr
		v, err = l.Loss(X, W, labels, &dX, nil)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	h.parts[0] = v
	if h.center != nil {
		c, err := h.center.Loss(X, labels, &dX) // dx += λ·∂Lc/∂x; c = λ·Lc
		if err != nil {
			return 0, nil, fmt.Errorf("center: %w", err)
		}
		if err := h.center.Update(X, labels); err != nil {
			return 0, nil, fmt.Errorf("center update: %w", err)
		}
		h.parts[1] = c
		v += c
	}
	return v, h.dx, nil
}

// focalStep is the focal loss on linear logits z = x·Wᵀ: the loss package
// gives dL/dz, and dx = dz·W, dW = dzᵀ·x.
func (h *head) focalStep(X, W loss.Matrix, labels []int32, dX, dW *loss.Matrix) (float32, error) {
	n, C, D := X.Rows, h.C, h.D
	h.logits = mnistmlp.Grow(h.logits, n*C)
	h.dlogits = mnistmlp.Grow(h.dlogits, n*C)
	asm.GemmNT(n, C, D, 1, X.Data, D, W.Data, D, 0, h.logits, C)
	dz := loss.Matrix{Rows: n, Cols: C, Data: h.dlogits}
	v, err := h.focal.Softmax(loss.Matrix{Rows: n, Cols: C, Data: h.logits}, labels, &dz)
	if err != nil {
		return 0, err
	}
	mnistmlp.ParallelFor(n, 64, func(lo, hi int) {
		asm.GemmNN(hi-lo, D, C, 1, h.dlogits[lo*C:], C, W.Data, D, 0, dX.Data[lo*D:], D)
	})
	asm.GemmTN(C, D, n, 1, h.dlogits, C, X.Data, D, 0, dW.Data, D)
	return v, nil
}
