package optim

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/par"
	"github.com/marginloss/marginloss/loss"
)

// PolyLR is arcface_torch's PolyScheduler: a linear warm-up from 0 to Base
// over Warmup steps, then a polynomial decay to 0 at step Total:
//
//	lr(k) = Base·(k/Warmup)                                   k < Warmup
//	lr(k) = Base·(1 − (k − Warmup)/(Total − Warmup))^Power   Warmup ≤ k ≤ Total
//	lr(k) = 0                                                 k > Total
//
// in float64, rounded to float32 once (as torch rounds the Python float lr
// in its kernels). k is the scheduler's last_epoch; arcface_torch calls the
// scheduler's step after each optimizer step, so its optimizer step k
// (from 0) runs at lr(max(k−1, 0)). Power's zero value means 2,
// arcface_torch's fixed power. Beyond Total arcface_torch's formula would
// grow again; PolyLR stays at 0 there.
type PolyLR struct {
	Base          float32
	Warmup, Total int
	Power         float64
}

// Validate reports whether the schedule is usable: Base finite and ≥ 0,
// 0 ≤ Warmup < Total, and Power finite and ≥ 0. It returns nil or an error
// wrapping loss.ErrParam.
func (s PolyLR) Validate() error {
	switch {
	case !finiteHyper(s.Base) || s.Base < 0:
		return fmt.Errorf("%w: PolyLR Base = %g, want finite and ≥ 0", loss.ErrParam, s.Base)
	case s.Warmup < 0 || s.Total <= s.Warmup:
		return fmt.Errorf("%w: PolyLR Warmup = %d, Total = %d, want 0 ≤ Warmup < Total", loss.ErrParam, s.Warmup, s.Total)
	case math.IsNaN(s.Power) || math.IsInf(s.Power, 0) || s.Power < 0:
		return fmt.Errorf("%w: PolyLR Power = %g, want finite and ≥ 0", loss.ErrParam, s.Power)
	}
	return nil
}

// At returns lr(k) for k ≥ 0 (k < 0 is taken as 0). It returns 0 when the
// schedule is invalid (see Validate).
func (s PolyLR) At(k int) float32 {
	if s.Validate() != nil {
		return 0
	}
	k = max(k, 0)
	base := float64(s.Base)
	if k < s.Warmup {
		return float32(base * (float64(k) / float64(s.Warmup)))
	}
	if k > s.Total {
		return 0
	}
	p := s.Power
	if p == 0 {
		p = 2
	}
	x := 1 - float64(k-s.Warmup)/float64(s.Total-s.Warmup)
	var a float64
	if p == math.Trunc(p) && p <= 64 {
		a = powInt(x, int64(p)) // x² is x·x rounded once, as Python's pow
	} else {
		a = math.Pow(x, p)
	}
	return float32(base * a)
}

// ClipGradNorm is torch.nn.utils.clip_grad_norm_ with the 2-norm over
// several tensors: it scales every gradient by
//
//	coef = min(maxNorm/(total + 1e-6), 1),   total = sqrt(Σ_t ‖g_t‖²)
//
// in place and returns total. total is float32, as torch's is; the
// coefficient and the scaling follow torch's float32 operations (its
// max_norm/(total + 1e-6) is the reciprocal of the float32 total + 1e-6
// times maxNorm, each rounded; then g·coef rounded once), and nothing is
// written when coef is 1. Each ‖g_t‖ is asm.L2Norm's (within
// (n+9)·2⁻²³ relative) and the norms are combined in float64, so total is
// within a few float32 roundings of the exact norm; torch's own float32
// reduction differs from it in the last bits.
//
// maxNorm must be finite and > 0 (loss.ErrParam); a gradient holding NaN or
// ±Inf is loss.ErrNonFinite (torch would scale by NaN). On error nothing is
// written.
func ClipGradNorm(maxNorm float32, grads ...[]float32) (float32, error) {
	if !finiteHyper(maxNorm) || maxNorm <= 0 {
		return 0, fmt.Errorf("%w: ClipGradNorm maxNorm = %g, want finite and > 0", loss.ErrParam, maxNorm)
	}
	for i, g := range grads {
		if k := indexNonFinite(g); k >= 0 {
			return 0, fmt.Errorf("%w: grads[%d][%d] = %v", loss.ErrNonFinite, i, k, g[k])
		}
	}
	var ss float64
	for _, g := range grads {
		n := float64(asm.L2Norm(g))
		ss += n * n
	}
	total := float32(math.Sqrt(ss))
	if math.IsInf(float64(total), 0) {
		return 0, fmt.Errorf("%w: the gradients' total norm overflows float32", loss.ErrNonFinite)
	}
	// torch's max_norm / (total + 1e-6) is Tensor.__rtruediv__: the
	// reciprocal of the float32 tensor, then a product with max_norm.
	coef := float32(1/(total+float32(1e-6))) * maxNorm
	if coef < 1 {
		for _, g := range grads {
			asm.Scale(g, g, coef)
		}
	}
	return total, nil
}

// Normal fills w with draws from N(mean, std²), as torch.nn.init.normal_
// does for arcface_torch's W (mean 0, std 0.01): deterministic for a seed,
// and the same for any GOMAXPROCS. w is cut into fixed chunks of 2¹⁴
// floats; chunk c draws from math/rand/v2's PCG seeded with (seed, c), by
// NormFloat64, and each value is float32(mean + std·z). std must be finite
// and ≥ 0 and mean finite (loss.ErrParam); then w is untouched.
func Normal(w []float32, mean, std float32, seed uint64) error {
	if !finiteHyper(mean, std) || std < 0 {
		return fmt.Errorf("%w: Normal mean = %g, std = %g, want finite and std ≥ 0", loss.ErrParam, mean, std)
	}
	j := &normalJob{w: w, mean: float64(mean), std: float64(std), seed: seed}
	par.Do(par.Chunks(len(w), chunk), j)
	return nil
}

type normalJob struct {
	w         []float32
	mean, std float64
	seed      uint64
}

func (j *normalJob) RunChunk(c int) {
	lo, hi := par.Range(c, chunk, len(j.w))
	r := rand.New(rand.NewPCG(j.seed, uint64(c)))
	for k := lo; k < hi; k++ {
		j.w[k] = float32(j.mean + j.std*r.NormFloat64())
	}
}
