package loss

import (
	"fmt"
	"math"
	"sync"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/par"
)

// Focal is the focal loss of Lin et al. (2017), in its softmax
// (multi-class) and sigmoid (per-element, torchvision) forms.
//
// Gamma ≥ 0 is the focusing parameter (0 gives plain cross-entropy).
// Alpha is the class-balance weight of the sigmoid form: each element is
// weighted by α·t + (1−α)·(1−t) when 0 ≤ α ≤ 1; α < 0 disables the weight.
// Softmax ignores Alpha.
type Focal struct {
	Gamma, Alpha float32
	Reduction    Reduction
}

// focalWork is the scratch of one focal call (Focal is a value type, so its
// scratch lives in a pool).
type focalWork struct {
	logits, targets Matrix
	labels          []int32
	grad            *Matrix
	gamma, alpha    float64
	scale           float64
	rowLoss         []float64
	sigmoid         bool
}

var focalPool = sync.Pool{New: func() any { return new(focalWork) }}

const focalRows = 32 // rows per parallel chunk

func (f Focal) check() error {
	if err := f.Reduction.check(); err != nil {
		return err
	}
	if !(f.Gamma >= 0) || !isFinite(f.Gamma) {
		return fmt.Errorf("%w: focal γ = %g, want finite γ ≥ 0", ErrParam, f.Gamma)
	}
	return nil
}

// Softmax returns the softmax focal loss of logits (N×C) for labels (N
// values in [0, C)): per row −(1 − p_y)^γ·log p_y with p = softmax(z), reduced
// by Reduction (Mean is over the N rows). Where dlogits (N×C) is non-nil it
// receives the gradient. On error no output is written.
func (f Focal) Softmax(logits Matrix, labels []int32, dlogits *Matrix) (float32, error) {
	if err := f.check(); err != nil {
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
	if err := checkFinite("logits", logits); err != nil {
		return 0, err
	}
	if logits.Rows == 0 {
		zero(dlogits)
		return 0, nil
	}
	fw := focalPool.Get().(*focalWork)
	defer focalPool.Put(fw)
	*fw = focalWork{logits: logits, labels: labels, grad: dlogits, gamma: float64(f.Gamma),
		scale: f.Reduction.scale(logits.Rows), rowLoss: fw.rowLoss}
	return fw.run(logits.Rows), nil
}

// Sigmoid returns the sigmoid focal loss (torchvision's
// sigmoid_focal_loss) of logits against targets in [0, 1], both N×C: per
// element ce·(1 − p_t)^γ, with ce the binary cross-entropy of σ(z) and
// p_t = p·t + (1−p)·(1−t), times α·t + (1−α)·(1−t) when α ≥ 0. Mean is over
// all N·C elements. Where dlogits is non-nil it receives the gradient.
func (f Focal) Sigmoid(logits, targets Matrix, dlogits *Matrix) (float32, error) {
	if err := f.check(); err != nil {
		return 0, err
	}
	if f.Alpha > 1 || f.Alpha != f.Alpha {
		return 0, fmt.Errorf("%w: focal α = %g, want α ≤ 1 (α < 0 disables it)", ErrParam, f.Alpha)
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
	if err := checkFinite("logits", logits); err != nil {
		return 0, err
	}
	if err := checkFinite("targets", targets); err != nil {
		return 0, err
	}
	for k, v := range targets.Data {
		if v < 0 || v > 1 {
			return 0, fmt.Errorf("%w: targets row %d column %d is %g, want a value in [0, 1]", ErrParam, k/targets.Cols, k%targets.Cols, v)
		}
	}
	if logits.Rows*logits.Cols == 0 {
		zero(dlogits)
		return 0, nil
	}
	fw := focalPool.Get().(*focalWork)
	defer focalPool.Put(fw)
	*fw = focalWork{logits: logits, targets: targets, grad: dlogits, gamma: float64(f.Gamma),
		alpha: float64(f.Alpha), scale: f.Reduction.scale(logits.Rows * logits.Cols),
		rowLoss: fw.rowLoss, sigmoid: true}
	return fw.run(logits.Rows), nil
}

// run computes per-row losses in parallel and sums them in row order.
func (fw *focalWork) run(n int) float32 {
	if cap(fw.rowLoss) < n {
		fw.rowLoss = make([]float64, n)
	}
	fw.rowLoss = fw.rowLoss[:n]
	par.Do(par.Chunks(n, focalRows), fw)
	var total float64
	for _, v := range fw.rowLoss {
		total += v
	}
	rl := fw.rowLoss
	*fw = focalWork{rowLoss: rl} // drop references to caller memory
	return float32(total)
}

// RunChunk implements par.Job.
func (fw *focalWork) RunChunk(c int) {
	lo, hi := par.Range(c, focalRows, fw.logits.Rows)
	for i := lo; i < hi; i++ {
		if fw.sigmoid {
			fw.rowLoss[i] = fw.sigmoidRow(i) * fw.scale
		} else {
			fw.rowLoss[i] = fw.softmaxRow(i) * fw.scale
		}
	}
}

// softmaxRow returns row i's loss and writes its gradient:
//
//	q = 1 − p_y,  L = −q^γ·log p_y
//	∂L/∂z_j = F·(p_j − δ_jy),  F = q^γ − γ·q^(γ−1)·p_y·log p_y
//
// With r = Σ_{j≠y} e^(z_j − z_y) (the target left out of the log-sum-exp),
// log p_y = −softplus(log r), q = σ(log r) and p_y = σ(−log r), all taken
// from log r so that confident rows keep their precision and a target far
// below the maximum (r beyond float64) stays finite; q^(γ−1)·log p_y → 0 as
// q → 0 and is taken as 0 at q = 0.
func (fw *focalWork) softmaxRow(i int) float64 {
	z := fw.logits.Row(i)
	y := int(fw.labels[i])
	m, s := asm.MaxSumExp(z[:y], float32(math.Inf(-1)), 0)
	m, s = asm.MaxSumExp(z[y+1:], m, s)
	zy := float64(z[y])
	lr := logRatio(float64(s), float64(m), zy) // log r, finite or −Inf
	logp := -softplus(lr)
	py, q := sigmoid(-lr), sigmoid(lr)
	g := fw.gamma
	mod := 1.0
	if g != 0 {
		mod = math.Pow(q, g)
	}
	loss := -mod * logp
	if fw.grad != nil {
		F := mod
		if g != 0 && q > 0 {
			F -= g * math.Pow(q, g-1) * py * logp
		}
		F *= fw.scale
		dz := fw.grad.Row(i)
		asm.SoftmaxScaled(dz, z, float32(zy-logp), float32(F))
		dz[y] = float32(-F * q)
	}
	return loss
}

// sigmoidRow returns row i's summed loss and writes its gradient. Per
// element, with p = σ(z), ce = max(z,0) − z·t + log(1+e^−|z|),
// q = 1 − p_t = t·σ(−z) + (1−t)·σ(z) and w = α·t + (1−α)(1−t) (or 1):
//
//	L = w·ce·q^γ
//	∂L/∂z = w·[(p − t)·q^γ + ce·γ·q^(γ−1)·p(1−p)(1−2t)]
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
		var p, pm float64 // σ(x), σ(−x)
		if x >= 0 {
			p, pm = 1/(1+e), e/(1+e)
		} else {
			p, pm = e/(1+e), 1/(1+e)
		}
		ce := math.Max(x, 0) - x*t + math.Log1p(e)
		q := t*pm + (1-t)*p
		mod := 1.0
		if g != 0 {
			mod = math.Pow(q, g)
		}
		w := 1.0
		if a >= 0 {
			w = a*t + (1-a)*(1-t)
		}
		sum += w * ce * mod
		if dz != nil {
			d := (p - t) * mod
			if g != 0 && q > 0 {
				d += ce * g * math.Pow(q, g-1) * p * pm * (1 - 2*t)
			}
			dz[j] = float32(w * d * fw.scale)
		}
	}
	return sum
}
