package optim

import (
	"fmt"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/loss"
)

// SGD is torch.optim.SGD (maximize off): stochastic gradient descent with
// optional momentum, dampening, weight decay and Nesterov momentum. The
// fields are torch's hyper-parameters of the same names; the zero value of
// each means 0, as in torch (no momentum, no decay), so LR must be set.
//
// One step of an element p with gradient g, in float32 with the order and
// the fused multiply-adds of torch 1.13's CPU kernels:
//
//	d = fma(p, wd, g)                           when WeightDecay ≠ 0, else d = g
//	buf = d                                     on the first step with Momentum ≠ 0
//	buf = fma(d, 1−dampening, μ·buf)            on later ones
//	d = fma(buf, μ, d) with Nesterov, else d = buf   (when Momentum ≠ 0)
//	p = fma(d, −lr, p)
//
// 1 − dampening is computed in float64 from the float32 field and rounded
// to float32 once, as torch rounds its Python float scalar.
type SGD struct {
	LR, Momentum, Dampening, WeightDecay float32
	Nesterov                             bool
}

// Validate reports whether the hyper-parameters are in torch's ranges:
// finite, LR, Momentum and WeightDecay ≥ 0, and Nesterov only with
// Momentum > 0 and Dampening = 0. It returns nil or an error wrapping
// loss.ErrParam.
func (o SGD) Validate() error {
	switch {
	case !finiteHyper(o.LR, o.Momentum, o.Dampening, o.WeightDecay):
		return fmt.Errorf("%w: SGD hyper-parameters must be finite: %+v", loss.ErrParam, o)
	case o.LR < 0:
		return fmt.Errorf("%w: SGD LR = %g, want ≥ 0", loss.ErrParam, o.LR)
	case o.Momentum < 0:
		return fmt.Errorf("%w: SGD Momentum = %g, want ≥ 0", loss.ErrParam, o.Momentum)
	case o.WeightDecay < 0:
		return fmt.Errorf("%w: SGD WeightDecay = %g, want ≥ 0", loss.ErrParam, o.WeightDecay)
	case o.Nesterov && (o.Momentum <= 0 || o.Dampening != 0):
		return fmt.Errorf("%w: Nesterov momentum requires Momentum > 0 and Dampening = 0 (got %g, %g)", loss.ErrParam, o.Momentum, o.Dampening)
	}
	return nil
}

// coef is the kernel's scalars for a tensor (or row) whose momentum buffer
// has been stepped t times before this step.
func (o SGD) coef(t int64) asm.SGDCoef {
	c := asm.SGDCoef{NegLR: -o.LR, WeightDecay: o.WeightDecay, Momentum: o.Momentum,
		Dampening1: float32(1 - float64(o.Dampening))}
	var f asm.SGDFlags
	if o.WeightDecay != 0 {
		f |= asm.SGDWeightDecay
	}
	if o.Momentum != 0 {
		f |= asm.SGDMomentum
		if t == 0 {
			f |= asm.SGDFirst
		}
		if o.Nesterov {
			f |= asm.SGDNesterov
		}
	}
	c.Flags = uint32(f)
	return c
}

// Step applies one step of torch.optim.SGD to the parameters p with
// gradients g (the same length), using and updating st. It returns an
// error wrapping loss.ErrShape (lengths differ, or st is sized for another
// tensor), loss.ErrParam (a hyper-parameter out of range, st belongs to
// AdamW), loss.ErrOverlap (g shares memory with p) or loss.ErrNonFinite (p
// or g holds NaN or ±Inf); then neither p nor st is changed.
//
// Finite inputs whose step overflows float32 give ±Inf, as in torch. The
// work is split in fixed chunks over GOMAXPROCS goroutines; the result is
// the same bits for any GOMAXPROCS, and a call allocates only when st is
// sized.
func (o SGD) Step(p, g []float32, st *State) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := st.claim(kindSGD, false, len(p), 0); err != nil {
		return err
	}
	if err := checkFlat(p, g); err != nil {
		return err
	}
	st.size(kindSGD, false, len(p), 0, 0)
	j := &st.job
	*j = job{st: st, sgd: o, p: p, g: g, sc: o.coef(st.t)}
	if o.Momentum != 0 {
		st.a = need(st.a, len(p))
		st.t++
	}
	st.run()
	return nil
}

// StepRows steps the listed rows of p (the rows of loss.PartialFC's
// Sampled classes, for example: with SubCenters = K, class c owns rows
// c·K … c·K+K−1) lazily: each listed row is stepped as if it were its own torch parameter
// that this call steps, with its own momentum buffer and first-step rule;
// rows not listed, and their state, are untouched. rows must be ascending
// and unique, within [0, p.Rows). g is either p's shape (row r of g is the
// gradient of row r) or has one row per listed row (row i of g is the
// gradient of row rows[i]).
//
// The errors are Step's, plus loss.ErrParam for rows out of range,
// unsorted or repeated; the finite check covers the listed rows only. On
// error neither p nor st is changed.
func (o SGD) StepRows(p, g loss.Matrix, rows []int32, st *State) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := st.claim(kindSGD, true, len(p.Data), p.Cols); err != nil {
		return err
	}
	compact, err := checkRows(p, g, rows)
	if err != nil {
		return err
	}
	st.size(kindSGD, true, len(p.Data), p.Cols, p.Rows)
	if o.Momentum != 0 {
		st.a = need(st.a, len(p.Data))
	}
	st.job = job{st: st, sgd: o, p: p.Data, g: g.Data, cols: p.Cols, rows: rows, compact: compact}
	if rows == nil {
		st.job.rows = []int32{}
	}
	st.run()
	return nil
}
