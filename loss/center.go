package loss

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/marginloss/marginloss/internal/par"
)

// Center is the center loss of Wen et al. (2016): it pulls each embedding
// towards the center of its class. Centers is C×D; Alpha in (0, 1] is the
// center learning rate of Update; Lambda weights the loss.
//
//	Loss = λ·Σ_i ‖x_i − c_{y_i}‖² / (2N),   ∂Loss/∂x_i = λ·(x_i − c_{y_i})/N
//
// Centers are not trained by gradient: call Update after each step, as the
// paper does. A Center keeps scratch buffers between calls (never references
// to the caller's matrices once a call returns); calls on one value from
// several goroutines are serialised.
type Center struct {
	Centers Matrix
	Alpha   float32
	// Lambda is the weight λ ≥ 0 of the center loss: it multiplies the
	// loss and its gradient (so that, with Accumulate, λ·∂Lc/∂x adds onto a
	// head's gradient in the same buffer). The zero value means 1; published
	// uses weight center loss by 0.003–0.01. Update does not depend on it.
	Lambda float32
	// Accumulate makes Loss add its gradient to what dx holds instead of
	// overwriting it (for example onto the gradient of a margin head).
	Accumulate bool

	mu      sync.Mutex
	x       Matrix
	labels  []int32
	dx      *Matrix
	scale   float64 // λ/N
	rowLoss []float64
	rowMax  []float64 // per row: max_k |x_ik − c_k|/N, plus max|dx_i| with Accumulate (+Inf when not finite)
	order   []int64
}

const centerRows = 64 // rows per parallel chunk

var errNilCenter = fmt.Errorf("%w: nil *Center", ErrShape)

// Validate reports whether the configuration is usable: Centers a
// consistent C×D matrix with C, D ≥ 1 and finite entries, 0 < Alpha ≤ 1
// (the rate Update needs) and a finite Lambda ≥ 0. It returns an error wrapping ErrShape,
// ErrNonFinite or ErrParam, or nil.
func (c *Center) Validate() error {
	if c == nil {
		return errNilCenter
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkAlpha(); err != nil {
		return err
	}
	if err := c.checkLambda(); err != nil {
		return err
	}
	if err := c.checkCenters(); err != nil {
		return err
	}
	return checkFinite("centers", c.Centers)
}

func (c *Center) checkLambda() error {
	if !(c.Lambda >= 0 && c.Lambda <= math.MaxFloat32) {
		return fmt.Errorf("%w: center λ = %g, want a finite λ ≥ 0 (0 means 1)", ErrParam, c.Lambda)
	}
	return nil
}

// weight is λ, with the zero value read as 1.
func (c *Center) weight() float64 {
	if c.Lambda == 0 {
		return 1
	}
	return float64(c.Lambda)
}

func (c *Center) checkAlpha() error {
	if !(c.Alpha > 0 && c.Alpha <= 1) {
		return fmt.Errorf("%w: center α = %g, want 0 < α ≤ 1", ErrParam, c.Alpha)
	}
	return nil
}

func (c *Center) checkCenters() error {
	if err := checkMatrix("centers", c.Centers); err != nil {
		return err
	}
	if c.Centers.Rows < 1 || c.Centers.Cols < 1 {
		return fmt.Errorf("%w: centers is %d×%d, want at least one class and one dimension", ErrShape, c.Centers.Rows, c.Centers.Cols)
	}
	return nil
}

func (c *Center) check(x Matrix, labels []int32) error {
	if err := c.checkCenters(); err != nil {
		return err
	}
	if err := checkMatrix("x", x); err != nil {
		return err
	}
	if x.Cols != c.Centers.Cols && !(x.Rows == 0 && x.Cols == 0) {
		return fmt.Errorf("%w: x has %d columns but centers has %d", ErrShape, x.Cols, c.Centers.Cols)
	}
	return checkLabels(labels, x.Rows, c.Centers.Rows)
}

// Loss returns λ·Σ_i ‖x_i − c_{y_i}‖²/(2N) for embeddings x (N×D) and
// labels (N values in [0, C)) and, where dx (N×D) is non-nil, writes
// λ·(x_i − c_{y_i})/N into it (adds it with Accumulate). dx may be x itself;
// any other overlap of dx with x, labels or Centers is an error wrapping
// ErrOverlap.
//
// On error no output is written, and a nil error comes with a finite loss
// and gradient: finite x and centers whose loss would overflow float32 (a
// distance near 1e19 and beyond) give ErrNonFinite. Every input is
// validated whatever N is; a valid empty batch returns 0 (zeroing dx unless
// Accumulate).
func (c *Center) Loss(x Matrix, labels []int32, dx *Matrix) (float32, error) {
	if c == nil {
		return 0, errNilCenter
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkLambda(); err != nil {
		return 0, err
	}
	if err := c.check(x, labels); err != nil {
		return 0, err
	}
	if err := checkGrad("dx", dx, x.Rows, x.Cols); err != nil {
		return 0, err
	}
	outs := [...]span{gradSpan("dx", dx, "x")}
	ins := [...]span{spanOf("x", x.Data), spanOf("labels", labels), spanOf("centers", c.Centers.Data)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return 0, err
	}
	if err := checkFinite("x", x); err != nil {
		return 0, err
	}
	if err := checkFinite("centers", c.Centers); err != nil {
		return 0, err
	}
	n := x.Rows
	if n == 0 {
		if !c.Accumulate {
			zero(dx)
		}
		return 0, nil
	}
	c.rowLoss = grow(c.rowLoss, n)
	c.rowMax = grow(c.rowMax, n)
	c.x, c.labels, c.dx, c.scale = x, labels, dx, c.weight()/float64(n)
	defer func() { c.x, c.labels, c.dx = Matrix{}, nil, nil }()
	// First pass: the row losses and the largest gradient entry; nothing
	// is written until both are known to be finite.
	par.Do(par.Chunks(n, centerRows), (*centerLossJob)(c))
	var total, big float64
	for i, v := range c.rowLoss {
		total += v
		big = math.Max(big, c.rowMax[i])
	}
	loss := c.weight() * total / (2 * float64(n))
	if !(loss <= maxOut) {
		return 0, fmt.Errorf("%w: finite x and centers give a center loss of %g, beyond float32", ErrNonFinite, loss)
	}
	if math.IsInf(big, 1) { // only maxAbs of an accumulated dx gives +Inf
		return 0, fmt.Errorf("%w: dx holds a NaN or ±Inf, and Accumulate adds to it", ErrNonFinite)
	}
	if !(big <= maxOut) {
		return 0, fmt.Errorf("%w: a gradient entry of dx would reach %g, beyond float32", ErrNonFinite, big)
	}
	if dx != nil {
		par.Do(par.Chunks(n, centerRows), (*centerGradJob)(c))
	}
	return float32(loss), nil
}

// centerLossJob computes row i's ‖x_i − c_y‖² and the largest magnitude its
// gradient entries will have; centerGradJob writes them.
type (
	centerLossJob Center
	centerGradJob Center
)

func (j *centerLossJob) RunChunk(ch int) {
	c := (*Center)(j)
	lo, hi := par.Range(ch, centerRows, c.x.Rows)
	for i := lo; i < hi; i++ {
		xi, ci := c.x.Row(i), c.Centers.Row(int(c.labels[i]))
		var s, big float64
		for k, v := range xi {
			diff := float64(v) - float64(ci[k])
			s += diff * diff
			big = math.Max(big, math.Abs(diff))
		}
		c.rowLoss[i] = s
		big *= c.scale
		if c.dx != nil && c.Accumulate {
			big += maxAbs(c.dx.Row(i))
		}
		c.rowMax[i] = big
	}
}

func (j *centerGradJob) RunChunk(ch int) {
	c := (*Center)(j)
	lo, hi := par.Range(ch, centerRows, c.x.Rows)
	for i := lo; i < hi; i++ {
		xi, ci, g := c.x.Row(i), c.Centers.Row(int(c.labels[i])), c.dx.Row(i)
		for k, v := range xi {
			d := float32((float64(v) - float64(ci[k])) * c.scale)
			if c.Accumulate {
				d += g[k]
			}
			g[k] = d
		}
	}
}

// Update moves the centers of the classes present in the batch with the
// paper's rule, applied simultaneously (every term uses the centers as they
// were before the call):
//
//	c_j ← c_j − α·Σ_{i: y_i=j} (c_j − x_i) / (1 + n_j)
//
// where n_j counts label j in the batch. The new c_j is a convex combination
// of c_j and the x_i, so it stays finite. x and labels must not share memory
// with Centers (ErrOverlap). On error Centers is untouched.
func (c *Center) Update(x Matrix, labels []int32) error {
	if c == nil {
		return errNilCenter
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkAlpha(); err != nil {
		return err
	}
	if err := c.check(x, labels); err != nil {
		return err
	}
	outs := [...]span{spanOf("centers", c.Centers.Data)}
	ins := [...]span{spanOf("x", x.Data), spanOf("labels", labels)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return err
	}
	if err := checkFinite("x", x); err != nil {
		return err
	}
	if err := checkFinite("centers", c.Centers); err != nil {
		return err
	}
	n := x.Rows
	// Group rows by label (stable: ties keep row order), so each class's
	// sum runs over its rows in order and reads only its old center.
	if cap(c.order) < n {
		c.order = make([]int64, n)
	}
	c.order = c.order[:n]
	for i, y := range labels {
		c.order[i] = int64(y)<<32 | int64(i)
	}
	slices.Sort(c.order)
	d := x.Cols
	alpha := float64(c.Alpha)
	for start := 0; start < n; {
		y := int(c.order[start] >> 32)
		end := start
		for end < n && int(c.order[end]>>32) == y {
			end++
		}
		cj := c.Centers.Row(y)
		f := alpha / float64(1+end-start)
		for k := 0; k < d; k++ {
			var s float64
			for _, key := range c.order[start:end] {
				s += float64(cj[k]) - float64(x.Data[int(int32(key))*d+k])
			}
			cj[k] = float32(float64(cj[k]) - f*s)
		}
		start = end
	}
	return nil
}
