package loss

import (
	"fmt"
	"math"
	"sync"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/par"
)

// Focal is the focal loss of Lin et al. (2017), in its softmax
// (multi-class) and sigmoid (per-element, torchvision) forms. Its zero
// value is plain cross-entropy with no class weighting.
//
// Gamma in [0, MaxFocalGamma] is the focusing parameter (0 gives plain
// cross-entropy). Alpha is the class-balance weight of the sigmoid form:
// with 0 < α ≤ 1 each element is weighted by α·t + (1−α)·(1−t), as
// torchvision's alpha; α = 0 (the zero value) or α < 0 (torchvision's −1)
// means no weighting. Softmax ignores Alpha.
//
// Focal holds no scratch (it lives in a pool), so one value may be used from
// several goroutines at once.
type Focal struct {
	Gamma, Alpha float32
	Reduction    Reduction
	// Accumulate adds the gradient to what dlogits holds instead of
	// overwriting it (for micro-batches, or a sum of losses sharing one
	// gradient buffer).
	Accumulate bool
}

// MaxFocalGamma bounds Focal.Gamma. Focusing parameters in use are 0–5; the
// bound keeps the γ·q^(γ−1) factors of the gradient far inside float32.
const MaxFocalGamma = 1000

// focalWork is the scratch of one focal call (Focal is a value type, so its
// scratch lives in a pool).
type focalWork struct {
	logits, targets Matrix
	labels          []int32
	grad            *Matrix
	gamma, alpha    float64
	scale           float64
	accumulate      bool
	rowLoss         []float64
}

var focalPool = sync.Pool{New: func() any { return new(focalWork) }}

const focalRows = 32 // rows per parallel chunk

// Validate reports whether the configuration is usable by both forms:
// Gamma finite in [0, MaxFocalGamma], Alpha not NaN and at most 1 (only
// Sigmoid reads it), and a known Reduction. It returns an error wrapping
// ErrParam, or nil. Softmax checks only Gamma and Reduction.
func (f Focal) Validate() error {
	if err := f.checkSoftmax(); err != nil {
		return err
	}
	if !(f.Alpha <= 1) {
		return fmt.Errorf("%w: focal α = %g, want α ≤ 1 (0 < α ≤ 1 weights positives by α; α ≤ 0 disables it)", ErrParam, f.Alpha)
	}
	return nil
}

// checkSoftmax validates what Softmax reads: Reduction and Gamma.
func (f Focal) checkSoftmax() error {
	if err := f.Reduction.check(); err != nil {
		return err
	}
	if !(f.Gamma >= 0 && f.Gamma <= MaxFocalGamma) {
		return fmt.Errorf("%w: focal γ = %g, want 0 ≤ γ ≤ %d", ErrParam, f.Gamma, MaxFocalGamma)
	}
	return nil
}

// maxOf returns the largest of m and the values of s (all finite), with
// four independent comparisons so that the loop does not wait on one.
func maxOf(s []float32, m float32) float32 {
	acc := [4]float32{m, m, m, m}
	k := 0
	for ; k+4 <= len(s); k += 4 {
		q := s[k : k+4 : k+4]
		acc[0], acc[1], acc[2], acc[3] = max(acc[0], q[0]), max(acc[1], q[1]), max(acc[2], q[2]), max(acc[3], q[3])
	}
	for _, v := range s[k:] {
		acc[0] = max(acc[0], v)
	}
	return max(acc[0], acc[1], acc[2], acc[3])
}

// softmaxLossBound checks that every logit is finite and returns a bound on
// the summed row losses, in one pass bounded by the number of elements. Row
// i's loss is at most −log p_y = softplus(log Σ_{j≠y} e^(z_j − z_y)) (the
// focal factor is at most 1), and that is at most
// softplus(log(C−1) + max_{j≠y} z_j − z_y): the bound is above the exact
// loss by at most log(C−1) per row, and exact for rows whose non-target
// logits are tied. A row with C = 1 has loss 0.
func softmaxLossBound(m Matrix, labels []int32) (float64, error) {
	if k := indexNonFinite(m.Data); k >= 0 {
		return 0, fmt.Errorf("%w: logits row %d column %d is %v", ErrNonFinite, k/m.Cols, k%m.Cols, m.Data[k])
	}
	if m.Cols < 2 {
		return 0, nil
	}
	logC := math.Log(float64(m.Cols - 1))
	var bound float64
	for i := 0; i < m.Rows; i++ {
		z := m.Row(i)
		y := int(labels[i])
		mx := maxOf(z[y+1:], maxOf(z[:y], float32(math.Inf(-1))))
		bound += softplus(logC + float64(mx) - float64(z[y]))
	}
	return bound, nil
}

// Softmax returns the softmax focal loss of logits (N×C) for labels (N
// values in [0, C)): per row −(1 − p_y)^γ·log p_y with p = softmax(z), reduced
// by Reduction (Mean is over the N rows). Where dlogits (N×C) is non-nil it
// receives the gradient (added to it with Accumulate). dlogits may be
// logits itself (the gradient replaces the logits); any other overlap of
// dlogits with an input is an error wrapping ErrOverlap.
//
// On error (ErrShape, ErrLabel, ErrNonFinite, ErrParam, ErrOverlap) no
// output is written. ErrNonFinite also reports finite logits whose loss
// could overflow float32: the check bounds each row's loss by
// softplus(log(C−1) + max_{j≠y} z_j − z_y), at most log(C−1) above it, so
// it refuses only losses within that of float32's 3.4e38. An empty batch
// (N = 0) returns 0 and zeroes dlogits (unless Accumulate).
func (f Focal) Softmax(logits Matrix, labels []int32, dlogits *Matrix) (float32, error) {
	if err := f.checkSoftmax(); err != nil {
		return 0, err
	}
	if err := checkMatrix("logits", logits); err != nil {
		return 0, err
	}
	if logits.Cols < 1 && logits.Rows > 0 {
		return 0, fmt.Errorf("%w: logits is %d×0, want at least one class", ErrShape, logits.Rows)
	}
	if err := checkLabels(labels, logits.Rows, logits.Cols); err != nil {
		return 0, err
	}
	if err := checkGrad("dlogits", dlogits, logits.Rows, logits.Cols); err != nil {
		return 0, err
	}
	outs := [...]span{gradSpan("dlogits", dlogits, "logits")}
	ins := [...]span{spanOf("logits", logits.Data), spanOf("labels", labels)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return 0, err
	}
	rows, err := softmaxLossBound(logits, labels)
	if err != nil {
		return 0, err
	}
	n := logits.Rows
	// The loss is summed in float64 and rounded once: its bound must fit.
	scale := f.Reduction.scale(n)
	if bound := scale * rows; !(bound <= math.MaxFloat32) {
		return 0, fmt.Errorf("%w: the loss over %d rows could reach %g, beyond float32 (targets far below their row's largest logit)", ErrNonFinite, n, bound)
	}
	if n == 0 {
		if !f.Accumulate {
			zero(dlogits)
		}
		return 0, nil
	}
	fw := focalPool.Get().(*focalWork)
	defer focalPool.Put(fw)
	*fw = focalWork{logits: logits, labels: labels, grad: dlogits, gamma: float64(f.Gamma),
		scale: scale, accumulate: f.Accumulate, rowLoss: fw.rowLoss}
	return fw.run(n, (*focalSoftmaxJob)(fw)), nil
}

// Sigmoid returns the sigmoid focal loss (torchvision's
// sigmoid_focal_loss) of logits against targets in [0, 1], both N×C: per
// element ce·(1 − p_t)^γ, with ce the binary cross-entropy of σ(z) and
// p_t = p·t + (1−p)·(1−t), times α·t + (1−α)·(1−t) when 0 < α ≤ 1. Mean is
// over all N·C elements. Where dlogits is non-nil it receives the gradient
// (added to it with Accumulate). dlogits may be logits itself; any other
// overlap with an input is an error wrapping ErrOverlap.
//
// A NaN or ±Inf logit or target is an error wrapping ErrNonFinite, a finite
// target outside [0, 1] one wrapping ErrLabel. ErrNonFinite also reports
// finite logits whose loss could overflow float32: the check bounds each
// element's loss by max(z, 0) − z·t + log 2 (at most log 2 above its
// cross-entropy, which bounds it), so it refuses only losses within
// log 2 per element of float32's 3.4e38. On error no output is written; a batch with no elements returns 0 and zeroes dlogits
// (unless Accumulate). The work is bounded by N·C, whatever N alone says.
func (f Focal) Sigmoid(logits, targets Matrix, dlogits *Matrix) (float32, error) {
	if err := f.Validate(); err != nil {
		return 0, err
	}
	if err := checkMatrix("logits", logits); err != nil {
		return 0, err
	}
	if err := checkMatrix("targets", targets); err != nil {
		return 0, err
	}
	if targets.Rows != logits.Rows || targets.Cols != logits.Cols {
		return 0, fmt.Errorf("%w: targets is %d×%d, logits is %d×%d", ErrShape, targets.Rows, targets.Cols, logits.Rows, logits.Cols)
	}
	if err := checkGrad("dlogits", dlogits, logits.Rows, logits.Cols); err != nil {
		return 0, err
	}
	outs := [...]span{gradSpan("dlogits", dlogits, "logits")}
	ins := [...]span{spanOf("logits", logits.Data), spanOf("targets", targets.Data)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return 0, err
	}
	if k := indexNonFinite(logits.Data); k >= 0 {
		return 0, fmt.Errorf("%w: logits row %d column %d is %v", ErrNonFinite, k/logits.Cols, k%logits.Cols, logits.Data[k])
	}
	if k := indexNonFinite(targets.Data); k >= 0 {
		return 0, fmt.Errorf("%w: targets row %d column %d is %v", ErrNonFinite, k/targets.Cols, k%targets.Cols, targets.Data[k])
	}
	// An element's loss is at most its cross-entropy (the focal and α
	// factors are at most 1), max(z, 0) − z·t + log(1 + e^−|z|) ≤
	// max(z, 0) − z·t + log 2.
	var ce float64
	for k, v := range targets.Data {
		if !(v >= 0 && v <= 1) {
			return 0, fmt.Errorf("%w: targets row %d column %d is %g, want a value in [0, 1]", ErrLabel, k/targets.Cols, k%targets.Cols, v)
		}
		z := float64(logits.Data[k])
		ce += math.Max(z, 0) - z*float64(v)
	}
	elems := len(logits.Data)
	scale := f.Reduction.scale(elems)
	if bound := scale * (ce + float64(elems)*math.Ln2); !(bound <= math.MaxFloat32) {
		return 0, fmt.Errorf("%w: the loss over %d elements could reach %g, beyond float32", ErrNonFinite, elems, bound)
	}
	if elems == 0 {
		if !f.Accumulate {
			zero(dlogits)
		}
		return 0, nil
	}
	fw := focalPool.Get().(*focalWork)
	defer focalPool.Put(fw)
	alpha := float64(f.Alpha)
	if alpha <= 0 {
		alpha = -1
	}
	*fw = focalWork{logits: logits, targets: targets, grad: dlogits, gamma: float64(f.Gamma),
		alpha: alpha, scale: scale, accumulate: f.Accumulate, rowLoss: fw.rowLoss}
	return fw.run(logits.Rows, (*focalSigmoidJob)(fw)), nil
}

// maxOut is the largest magnitude a loss or gradient may reach: float32's
// largest finite value with room for the last roundings.
const maxOut = 0x1p127

// run computes per-row losses in parallel and sums them in row order.
// n ≥ 1 rows of at least one element each.
func (fw *focalWork) run(n int, job par.Job) float32 {
	if cap(fw.rowLoss) < n {
		fw.rowLoss = make([]float64, n)
	}
	fw.rowLoss = fw.rowLoss[:n]
	par.Do(par.Chunks(n, focalRows), job)
	var total float64
	for _, v := range fw.rowLoss {
		total += v
	}
	rl := fw.rowLoss
	*fw = focalWork{rowLoss: rl} // drop references to caller memory
	return float32(total)
}

// focalSoftmaxJob and focalSigmoidJob are the parallel row passes.
type (
	focalSoftmaxJob focalWork
	focalSigmoidJob focalWork
)

func (j *focalSoftmaxJob) RunChunk(c int) {
	fw := (*focalWork)(j)
	lo, hi := par.Range(c, focalRows, fw.logits.Rows)
	for i := lo; i < hi; i++ {
		fw.rowLoss[i] = fw.softmaxRow(i) * fw.scale
	}
}

func (j *focalSigmoidJob) RunChunk(c int) {
	fw := (*focalWork)(j)
	lo, hi := par.Range(c, focalRows, fw.logits.Rows)
	for i := lo; i < hi; i++ {
		fw.rowLoss[i] = fw.sigmoidRow(i) * fw.scale
	}
}

// softplusOverSigmoid returns softplus(x)/σ(x) = log(1+e^x)·(1+e^−x)
// without forming either factor when it underflows: it tends to 1 as
// x → −∞ (to within 2⁻⁵³ below x = −37) and to x as x → +∞.
func softplusOverSigmoid(x float64) float64 {
	if x < -37 {
		return 1
	}
	return softplus(x) / sigmoid(x)
}

// softmaxRow returns row i's loss and writes its gradient:
//
//	q = 1 − p_y,  L = −q^γ·log p_y
//	∂L/∂z_j = F·(p_j − δ_jy),  F = q^γ − γ·q^(γ−1)·p_y·log p_y
//
// With r = Σ_{j≠y} e^(z_j − z_y) (the target left out of the log-sum-exp),
// log p_y = −softplus(log r), log q = −softplus(−log r) and
// p_y = σ(−log r), all taken from log r so that confident rows keep their
// precision and a target far below the maximum (r beyond float64) stays
// finite. The second term of F is computed as
// γ·q^γ·p_y·(softplus(log r)/q), whose last factor tends to 1 as q → 0: q
// itself may be subnormal or 0, where q^(γ−1) alone would overflow for
// γ < 1 although the product is finite (it is 0 at q = 0).
func (fw *focalWork) softmaxRow(i int) float64 {
	z := fw.logits.Row(i)
	y := int(fw.labels[i])
	m, s := asm.MaxSumExp(z[:y], float32(math.Inf(-1)), 0)
	m, s = asm.MaxSumExp(z[y+1:], m, s)
	zy := float64(z[y])
	r := newRowCE(float64(m), float64(s), zy)
	lr := r.lr // log r, finite or −Inf
	logp := r.logPy()
	py, q := r.py(), r.q()
	g := fw.gamma
	mod := 1.0
	if g != 0 {
		mod = math.Exp(-g * softplus(-lr)) // q^γ from log q
	}
	loss := -mod * logp
	if fw.grad != nil {
		F := mod
		if g != 0 && mod != 0 {
			F += g * mod * py * softplusOverSigmoid(lr)
		}
		F *= fw.scale
		dz := fw.grad.Row(i)
		shift, inv := r.shift, r.inv
		pf := float32(F * inv)
		if !fw.accumulate {
			asm.SoftmaxScaled(dz, z, shift, pf)
			dz[y] = float32(-F * q)
			return loss
		}
		// Accumulate: the row's softmax in stack blocks, added to dz; then
		// the target's entry is old + (p_y − 1)·F, as in the overwrite form.
		oldY := dz[y]
		var buf [256]float32
		for j0 := 0; j0 < len(z); j0 += len(buf) {
			zb := z[j0:min(j0+len(buf), len(z))]
			b := buf[:len(zb)]
			asm.SoftmaxScaled(b, zb, shift, pf)
			db := dz[j0 : j0+len(zb)]
			for k, v := range b {
				db[k] += v
			}
		}
		dz[y] = oldY + float32(-F*q)
	}
	return loss
}

// sigmoidRow returns row i's summed loss and writes its gradient. Per
// element, with p = σ(z), ce = max(z,0) − z·t + log(1+e^−|z|),
// q = 1 − p_t = t·σ(−z) + (1−t)·σ(z) and w = α·t + (1−α)(1−t) (or 1):
//
//	L = w·ce·q^γ
//	∂L/∂z = w·[(p − t)·q^γ + ce·γ·q^(γ−1)·p(1−p)(1−2t)]
//
// q^γ and q^(γ−1)·p(1−p) are taken from log q, log p and log(1−p): q may be
// subnormal (a confident element), where q^(γ−1) overflows for γ < 1, but
// q^(γ−1)·p(1−p) = q^γ·p(1−p)/q ≤ 1 since q ≥ min(p, 1−p).
func (fw *focalWork) sigmoidRow(i int) float64 {
	z, tg := fw.logits.Row(i), fw.targets.Row(i)
	var dz []float32
	if fw.grad != nil {
		dz = fw.grad.Row(i)
	}
	g, a := fw.gamma, fw.alpha
	var sum float64
	for j, zv := range z {
		x, t := float64(zv), float64(tg[j])
		e := math.Exp(-math.Abs(x))
		l1p := math.Log1p(e)
		var p, logp, logpm float64 // σ(x), log σ(x), log σ(−x)
		if x >= 0 {
			p, logp, logpm = 1/(1+e), -l1p, -x-l1p
		} else {
			p, logp, logpm = e/(1+e), x-l1p, -l1p
		}
		ce := math.Max(x, 0) - x*t + l1p
		w := 1.0
		if a >= 0 {
			w = a*t + (1-a)*(1-t)
		}
		mod, logq := 1.0, 0.0
		if g != 0 {
			switch t {
			case 0:
				logq = logp
			case 1:
				logq = logpm
			default: // log(t·σ(−x) + (1−t)·σ(x))
				u, v := math.Log(t)+logpm, math.Log1p(-t)+logp
				hi, lo := math.Max(u, v), math.Min(u, v)
				logq = hi + math.Log1p(math.Exp(lo-hi))
			}
			mod = math.Exp(g * logq)
		}
		sum += w * ce * mod
		if dz != nil {
			d := (p - t) * mod
			if g != 0 && t != 0.5 {
				d += ce * g * math.Exp((g-1)*logq+logp+logpm) * (1 - 2*t)
			}
			v := float32(w * d * fw.scale)
			if fw.accumulate {
				v += dz[j]
			}
			dz[j] = v
		}
	}
	return sum
}
