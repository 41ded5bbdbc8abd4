package optim

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/loss"
)

// AdamW is torch.optim.AdamW with amsgrad and maximize off: Adam with
// decoupled weight decay. Beta1 and Beta2 are torch's betas; the zero value
// of each field means 0, as the fields say (not torch's defaults lr=1e-3,
// betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2: set them).
//
// Step t (1, 2, …) of an element p with gradient g, first moment m and
// second moment v (both 0 before the first step), in float32 with the
// order and the fused multiply-adds of torch 1.13's CPU kernels:
//
//	p = p·(1 − lr·wd)
//	m = fma(g, 1−β1, β1·m)
//	v = fma((1−β2)·g, g, β2·v)
//	denom = sqrt(v)/sqrt(bc2) + eps             (a true division)
//	p = p + ((−lr/bc1)·m)/denom
//
// with bc1 = 1 − β1^t and bc2 = 1 − β2^t in float64 (in float32, 1 − β2^t
// would lose 3–4 digits at β2 = 0.9999). Every scalar (1 − lr·wd, 1 − β,
// −lr/bc1, sqrt(bc2)) is computed in float64 from the float32 fields and
// rounded to float32 once; β^t is the correctly rounded float64 power, as
// Python's ** gives it.
type AdamW struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
}

// Validate reports whether the hyper-parameters are in torch's ranges:
// finite LR, Eps and WeightDecay ≥ 0 and 0 ≤ Beta1, Beta2 < 1. It returns
// nil or an error wrapping loss.ErrParam.
func (o AdamW) Validate() error {
	switch {
	case !finiteHyper(o.LR, o.Beta1, o.Beta2, o.Eps, o.WeightDecay):
		return fmt.Errorf("%w: AdamW hyper-parameters must be finite: %+v", loss.ErrParam, o)
	case o.LR < 0:
		return fmt.Errorf("%w: AdamW LR = %g, want ≥ 0", loss.ErrParam, o.LR)
	case o.Eps < 0:
		return fmt.Errorf("%w: AdamW Eps = %g, want ≥ 0", loss.ErrParam, o.Eps)
	case !(o.Beta1 >= 0 && o.Beta1 < 1) || !(o.Beta2 >= 0 && o.Beta2 < 1):
		return fmt.Errorf("%w: AdamW betas (%g, %g), want each in [0, 1)", loss.ErrParam, o.Beta1, o.Beta2)
	case o.WeightDecay < 0:
		return fmt.Errorf("%w: AdamW WeightDecay = %g, want ≥ 0", loss.ErrParam, o.WeightDecay)
	}
	return nil
}

// coef is the kernel's scalars for step t ≥ 1.
func (o AdamW) coef(t int64) asm.AdamWCoef {
	lr := float64(o.LR)
	bc1 := 1 - powInt(float64(o.Beta1), t)
	bc2 := 1 - powInt(float64(o.Beta2), t)
	return asm.AdamWCoef{
		Decay:   float32(1 - lr*float64(o.WeightDecay)),
		Beta1:   o.Beta1,
		Beta1c:  float32(1 - float64(o.Beta1)),
		Beta2:   o.Beta2,
		Beta2c:  float32(1 - float64(o.Beta2)),
		BC2Sqrt: float32(math.Sqrt(bc2)),
		Eps:     o.Eps,
		NegStep: float32(-(lr / bc1)),
	}
}

// powInt is b^t for t ≥ 0, correctly rounded but in the rarest cases: the
// square-and-multiply runs in double-double arithmetic (error about
// log2(t)·2⁻¹⁰⁴ relative), and the result is rounded once to float64.
func powInt(b float64, t int64) float64 {
	rh, rl := 1.0, 0.0 // result
	bh, bl := b, 0.0   // b^(2^k)
	for ; t > 0; t >>= 1 {
		if t&1 != 0 {
			rh, rl = mulDD(rh, rl, bh, bl)
		}
		if t > 1 {
			bh, bl = mulDD(bh, bl, bh, bl)
		}
	}
	return rh + rl
}

// mulDD multiplies two double-doubles (hi + lo, |lo| ≤ ulp(hi)/2).
func mulDD(ah, al, bh, bl float64) (float64, float64) {
	p := ah * bh
	e := math.FMA(ah, bh, -p) // the exact error of p
	e += ah*bl + al*bh
	h := p + e
	return h, e - (h - p)
}

// Step applies step t+1 of torch.optim.AdamW to the parameters p with
// gradients g (the same length), where t is the number of steps st has
// taken, and updates st. The errors, the finite check and the parallel,
// GOMAXPROCS-independent execution are SGD.Step's.
func (o AdamW) Step(p, g []float32, st *State) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := st.claim(kindAdamW, false, len(p), 0); err != nil {
		return err
	}
	if err := checkFlat(p, g); err != nil {
		return err
	}
	st.size(kindAdamW, false, len(p), 0, 0)
	st.a, st.b = need(st.a, len(p)), need(st.b, len(p))
	st.t++
	st.job = job{st: st, adamw: o, p: p, g: g, ac: o.coef(st.t)}
	st.run()
	return nil
}

// StepRows steps the listed rows of p lazily, each as its own torch
// parameter with its own moments and its own step count t (a row listed on
// k calls has taken k steps). rows, g and the errors are as in
// SGD.StepRows.
func (o AdamW) StepRows(p, g loss.Matrix, rows []int32, st *State) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := st.claim(kindAdamW, true, len(p.Data), p.Cols); err != nil {
		return err
	}
	compact, err := checkRows(p, g, rows)
	if err != nil {
		return err
	}
	st.size(kindAdamW, true, len(p.Data), p.Cols, p.Rows)
	st.a, st.b = need(st.a, len(p.Data)), need(st.b, len(p.Data))
	st.job = job{st: st, adamw: o, p: p.Data, g: g.Data, cols: p.Cols, rows: rows, compact: compact}
	if rows == nil {
		st.job.rows = []int32{}
	}
	st.run()
	return nil
}
