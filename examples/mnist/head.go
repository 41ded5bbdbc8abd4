package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/loss"
)

// lossNames are the values -loss accepts.
var lossNames = []string{"arcface", "cosface", "sphereface", "lsoftmax", "combined", "softmax", "focal"}

// headConfig holds the loss hyper-parameters from the flags. Negative
// values mean "the default for the chosen loss".
type headConfig struct {
	S          float64 // scale for arcface, cosface, combined
	M          float64 // additive margin for arcface (angle) and cosface (cosine)
	M1, M2, M3 float64 // combined margin cos(m1·θ + m2) − m3
	IntM       int     // multiplicative margin for sphereface and lsoftmax
	Easy       bool    // EasyMargin
	Gamma      float64 // focal γ
	Alpha      float64 // focal α
	Center     float64 // center loss weight λ (0 = off)
	CenterRate float64 // center update rate α of Center.Update
	// SphereFace/L-Softmax λ annealing: λ = max(λmin, base·(1+γ·iter)^−power).
	LambdaBase, LambdaGamma, LambdaPower, LambdaMin float64
}

// head is the classification layer on top of the embedding: class weights W
// (C×D) and the loss that turns (x, W, labels) into a value and gradients.
type head struct {
	Name   string
	Desc   string // the loss and its hyper-parameters, for the log
	W      *param
	C, D   int
	margin *loss.MarginSoftmax // nil for focal
	focal  *loss.Focal
	center *loss.Center
	cw     float32 // center loss weight

	anneal func(iter int) float32 // λ schedule (sphereface, lsoftmax), or nil
	lambda float32

	// scratch
	dx, dxc, logits, dlogits []float32
	parts                    [2]float32 // last head and center loss values
}

func newHead(name string, cfg headConfig, C, D int, rng *rand.Rand) (*head, error) {
	h := &head{Name: name, C: C, D: D, W: newParam(C*D, true)}
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
	s := def(cfg.S, 30)
	switch name {
	case "arcface":
		m := def(cfg.M, 0.5)
		h.margin = loss.ArcFace(s, m)
		h.Desc = fmt.Sprintf("ArcFace s=%g m=%g", s, m)
	case "cosface":
		m := def(cfg.M, 0.35)
		h.margin = loss.CosFace(s, m)
		h.Desc = fmt.Sprintf("CosFace s=%g m=%g", s, m)
	case "combined":
		m1, m2, m3 := def(cfg.M1, 1), def(cfg.M2, 0.3), def(cfg.M3, 0.2)
		h.margin = loss.CombinedMargin(s, m1, m2, m3)
		h.Desc = fmt.Sprintf("CombinedMargin s=%g cos(%g·θ+%g)−%g", s, m1, m2, m3)
	case "sphereface", "lsoftmax":
		m := cfg.IntM
		if m <= 0 {
			m = 4
		}
		base, g, p, lmin := def(cfg.LambdaBase, 1000), def(cfg.LambdaGamma, 0.12), def(cfg.LambdaPower, 1), def(cfg.LambdaMin, 5)
		h.anneal = func(iter int) float32 {
			return max(lmin, base*float32(math.Pow(1+float64(g)*float64(iter), -float64(p))))
		}
		h.lambda = h.anneal(0)
		if name == "sphereface" {
			h.margin = loss.SphereFace(m, h.lambda)
			h.Desc = fmt.Sprintf("SphereFace m=%d λ=max(%g, %g·(1+%g·iter)^−%g)", m, lmin, base, g, p)
		} else {
			h.margin = loss.LargeMargin(m, h.lambda)
			h.Desc = fmt.Sprintf("L-Softmax m=%d λ=max(%g, %g·(1+%g·iter)^−%g)", m, lmin, base, g, p)
		}
	case "softmax":
		// ψ(θ) = cos θ with no normalisation: logits are exactly W_j·x.
		h.margin = loss.LargeMargin(1, 0)
		h.Desc = "softmax (linear logits W·x)"
	case "focal":
		h.focal = &loss.Focal{Gamma: def(cfg.Gamma, 2), Alpha: def(cfg.Alpha, 1)}
		h.Desc = fmt.Sprintf("softmax focal γ=%g α=%g (linear logits W·x)", h.focal.Gamma, h.focal.Alpha)
	default:
		return nil, fmt.Errorf("unknown loss %q (want one of %s)", name, strings.Join(lossNames, ", "))
	}
	if h.margin != nil {
		h.margin.EasyMargin = cfg.Easy
	}
	if cfg.Center > 0 {
		h.cw = float32(cfg.Center)
		h.center = &loss.Center{Centers: loss.Matrix{Rows: C, Cols: D, Data: make([]float32, C*D)}, Alpha: def(cfg.CenterRate, 0.5)}
		h.Desc += fmt.Sprintf(" + %g·Center(α=%g)", h.cw, h.center.Alpha)
	}
	return h, nil
}

// Step computes the loss of the n×D embeddings x for the labels at
// iteration iter, writes dL/dx into the returned buffer (owned by h) and
// dL/dW into h.W.Grad, and updates the centers when center loss is on.
func (h *head) Step(x []float32, labels []int32, iter int) (float32, []float32, error) {
	n := len(labels)
	X := loss.Matrix{Rows: n, Cols: h.D, Data: x[:n*h.D]}
	W := loss.Matrix{Rows: h.C, Cols: h.D, Data: h.W.W}
	h.dx = grow(h.dx, n*h.D)
	dX := loss.Matrix{Rows: n, Cols: h.D, Data: h.dx}
	dW := loss.Matrix{Rows: h.C, Cols: h.D, Data: h.W.Grad}
	var v float32
	var err error
	if h.focal != nil {
		v, err = h.focalStep(X, W, labels, &dX, &dW)
	} else {
		if h.anneal != nil {
			h.lambda = h.anneal(iter)
			h.margin.SetLambda(h.lambda)
		}
		v, err = h.margin.Loss(X, W, labels, &dX, &dW)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%s loss: %w", h.Name, err)
	}
	h.parts[0] = v
	if h.center != nil {
		h.dxc = grow(h.dxc, n*h.D)
		dC := loss.Matrix{Rows: n, Cols: h.D, Data: h.dxc}
		c, err := h.center.Loss(X, labels, &dC)
		if err != nil {
			return 0, nil, fmt.Errorf("center loss: %w", err)
		}
		for i, g := range h.dxc {
			h.dx[i] += h.cw * g
		}
		if err := h.center.Update(X, labels); err != nil {
			return 0, nil, fmt.Errorf("center update: %w", err)
		}
		h.parts[1] = c
		v += h.cw * c
	}
	return v, h.dx, nil
}

// focalStep is the focal loss on linear logits z = x·Wᵀ: the loss package
// gives dL/dz, and dx = dz·W, dW = dzᵀ·x.
func (h *head) focalStep(X, W loss.Matrix, labels []int32, dX, dW *loss.Matrix) (float32, error) {
	n, C, D := X.Rows, h.C, h.D
	h.logits = grow(h.logits, n*C)
	h.dlogits = grow(h.dlogits, n*C)
	asm.GemmNT(n, C, D, 1, X.Data, D, W.Data, D, 0, h.logits, C)
	dz := loss.Matrix{Rows: n, Cols: C, Data: h.dlogits}
	v, err := h.focal.Softmax(loss.Matrix{Rows: n, Cols: C, Data: h.logits}, labels, &dz)
	if err != nil {
		return 0, err
	}
	parallelFor(n, 64, func(lo, hi int) {
		asm.GemmNN(hi-lo, D, C, 1, h.dlogits[lo*C:], C, W.Data, D, 0, dX.Data[lo*D:], D)
	})
	asm.GemmTN(C, D, n, 1, h.dlogits, C, X.Data, D, 0, dW.Data, D)
	return v, nil
}
