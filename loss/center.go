package loss

import (
	"fmt"
	"slices"
	"sync"

	"github.com/marginloss/marginloss/internal/par"
)

// Center is the center loss of Wen et al. (2016): it pulls each embedding
// towards the center of its class. Centers is C×D; Alpha in (0, 1] is the
// center learning rate of Update.
//
//	Loss = Σ_i ‖x_i − c_{y_i}‖² / (2N),   ∂Loss/∂x_i = (x_i − c_{y_i})/N
//
// Centers are not trained by gradient: call Update after each step, as the
// paper does. A Center keeps scratch buffers between calls; calls on one
// value from several goroutines are serialised.
type Center struct {
	Centers Matrix
	Alpha   float32

	mu      sync.Mutex
	x       Matrix
	labels  []int32
	dx      *Matrix
	invN    float32
	rowLoss []float64
	order   []int64
}

const centerRows = 64 // rows per parallel chunk

func (c *Center) check(x Matrix, labels []int32) error {
	if err := checkMatrix("centers", c.Centers); err != nil {
		return err
	}
	if c.Centers.Rows < 1 || c.Centers.Cols < 1 {
		return fmt.Errorf("%w: centers is %d×%d, want at least one class and one dimension", ErrShape, c.Centers.Rows, c.Centers.Cols)
	}
	if err := checkMatrix("x", x); err != nil {
		return err
	}
	if x.Cols != c.Centers.Cols && !(x.Rows == 0 && x.Cols == 0) {
		return fmt.Errorf("%w: x has %d columns but centers has %d", ErrShape, x.Cols, c.Centers.Cols)
	}
	return checkLabels(labels, x.Rows, c.Centers.Rows)
}

// Loss returns Σ_i ‖x_i − c_{y_i}‖²/(2N) for embeddings x (N×D) and labels
// (N values in [0, C)) and, where dx (N×D) is non-nil, writes
// (x_i − c_{y_i})/N into it. On error no output is written; an empty batch
// returns 0 (zeroing dx).
func (c *Center) Loss(x Matrix, labels []int32, dx *Matrix) (float32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.check(x, labels); err != nil {
		return 0, err
	}
	if err := checkGrad("dx", dx, x.Rows, x.Cols); err != nil {
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
		zero(dx)
		return 0, nil
	}
	if cap(c.rowLoss) < n {
		c.rowLoss = make([]float64, n)
	}
	c.rowLoss = c.rowLoss[:n]
	c.x, c.labels, c.dx, c.invN = x, labels, dx, 1/float32(n)
	par.Do(par.Chunks(n, centerRows), c)
	c.x, c.labels, c.dx = Matrix{}, nil, nil
	var total float64
	for _, v := range c.rowLoss {
		total += v
	}
	return float32(total / (2 * float64(n))), nil
}

// RunChunk implements par.Job for Loss.
func (c *Center) RunChunk(ch int) {
	lo, hi := par.Range(ch, centerRows, c.x.Rows)
	for i := lo; i < hi; i++ {
		xi, ci := c.x.Row(i), c.Centers.Row(int(c.labels[i]))
		var s float64
		for k, v := range xi {
			diff := v - ci[k]
			s += float64(diff) * float64(diff)
		}
		c.rowLoss[i] = s
		if c.dx != nil {
			g := c.dx.Row(i)
			for k, v := range xi {
				g[k] = (v - ci[k]) * c.invN
			}
		}
	}
}

// Update moves the centers of the classes present in the batch with the
// paper's rule, applied simultaneously (every term uses the centers as they
// were before the call):
//
//	c_j ← c_j − α·Σ_{i: y_i=j} (c_j − x_i) / (1 + n_j)
//
// where n_j counts label j in the batch. On error Centers is untouched.
func (c *Center) Update(x Matrix, labels []int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !(c.Alpha > 0 && c.Alpha <= 1) {
		return fmt.Errorf("%w: center α = %g, want 0 < α ≤ 1", ErrParam, c.Alpha)
	}
	if err := c.check(x, labels); err != nil {
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
