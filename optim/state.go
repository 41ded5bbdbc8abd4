package optim

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/par"
	"github.com/marginloss/marginloss/loss"
)

// State is the optimizer state of one parameter tensor: the momentum
// buffer of SGD, or AdamW's moments and step count, as torch.optim keeps
// them in optimizer.state[p]. Its zero value is a tensor never stepped; the
// first Step or StepRows sizes it (allocating what the optimizer needs),
// and from then on it belongs to that optimizer, that calling form and
// that size: another size, or Step after StepRows or the reverse, is
// ErrShape; SGD after AdamW or the reverse is ErrParam.
//
// Step keeps one step count for the whole tensor; StepRows keeps one per
// row, so that each row is stepped as its own torch parameter. A State is
// not safe for concurrent use.
type State struct {
	kind    kind
	rowwise bool
	n, cols int
	a, b    []float32 // SGD: the momentum buffer (a); AdamW: exp_avg (a), exp_avg_sq (b)
	t       int64     // Step: steps taken (SGD: steps with momentum)
	rowT    []int64   // StepRows: per row, as t
	job     job
}

type kind uint8

const (
	kindNone kind = iota
	kindSGD
	kindAdamW
)

func (k kind) String() string {
	switch k {
	case kindSGD:
		return "SGD"
	case kindAdamW:
		return "AdamW"
	}
	return "nothing"
}

// chunk is the number of elements of one parallel chunk: the partition
// depends on the shape only, so results are the same for any GOMAXPROCS
// (each element is computed by one chunk, with the same arithmetic).
const chunk = 1 << 14

// claim checks that st may be used by optimizer k in the given form and
// size, sizing a zero State. It changes nothing when it fails.
func (st *State) claim(k kind, rowwise bool, n, cols int) error {
	if st == nil {
		return fmt.Errorf("%w: nil *State", loss.ErrParam)
	}
	if st.kind == kindNone {
		return nil
	}
	if st.kind != k {
		return fmt.Errorf("%w: the State was stepped by %v, not %v", loss.ErrParam, st.kind, k)
	}
	if st.rowwise != rowwise {
		if st.rowwise {
			return fmt.Errorf("%w: the State keeps per-row step counts (StepRows); Step cannot use it", loss.ErrShape)
		}
		return fmt.Errorf("%w: the State keeps one step count (Step); StepRows cannot use it", loss.ErrShape)
	}
	if st.n != n || (rowwise && st.cols != cols) {
		if rowwise {
			return fmt.Errorf("%w: the State is sized for %d×%d, the parameter is %d×%d", loss.ErrShape, st.n/max(st.cols, 1), st.cols, n/max(cols, 1), cols)
		}
		return fmt.Errorf("%w: the State is sized for %d elements, the parameter has %d", loss.ErrShape, st.n, n)
	}
	return nil
}

// size records the owner and shape of a State that claim accepted.
func (st *State) size(k kind, rowwise bool, n, cols, rows int) {
	if st.kind != kindNone {
		return
	}
	st.kind, st.rowwise, st.n, st.cols = k, rowwise, n, cols
	if rowwise {
		st.rowT = make([]int64, rows)
	}
}

// need returns s with length n, allocated (zeroed) on first use.
func need(s []float32, n int) []float32 {
	if s == nil {
		return make([]float32, n)
	}
	return s
}

// finiteHyper reports whether every value is finite.
func finiteHyper(vs ...float32) bool {
	for _, v := range vs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// indexNonFinite returns the index of the first NaN or ±Inf in s, or −1:
// a float is non-finite when its exponent bits are all ones.
func indexNonFinite(s []float32) int {
	const exp = 0x7f800000
	k := 0
	for ; k+4 <= len(s); k += 4 {
		a, b := math.Float32bits(s[k])&exp, math.Float32bits(s[k+1])&exp
		c, d := math.Float32bits(s[k+2])&exp, math.Float32bits(s[k+3])&exp
		if a == exp || b == exp || c == exp || d == exp {
			break
		}
	}
	for ; k < len(s); k++ {
		if math.Float32bits(s[k])&exp == exp {
			return k
		}
	}
	return -1
}

func checkFinite(name string, s []float32) error {
	if k := indexNonFinite(s); k >= 0 {
		return fmt.Errorf("%w: %s[%d] = %v", loss.ErrNonFinite, name, k, s[k])
	}
	return nil
}

// overlaps reports whether two float32 slices share memory.
func overlaps(a, b []float32) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	a0, b0 := uintptr(unsafe.Pointer(&a[0])), uintptr(unsafe.Pointer(&b[0]))
	return a0 < b0+uintptr(len(b))*4 && b0 < a0+uintptr(len(a))*4
}

// checkFlat validates the slices of Step.
func checkFlat(p, g []float32) error {
	if len(p) != len(g) {
		return fmt.Errorf("%w: len(p) = %d, len(g) = %d", loss.ErrShape, len(p), len(g))
	}
	if overlaps(p, g) {
		return fmt.Errorf("%w: g shares memory with p", loss.ErrOverlap)
	}
	if err := checkFinite("p", p); err != nil {
		return err
	}
	return checkFinite("g", g)
}

// checkMatrix validates a matrix's own consistency.
func checkMatrix(name string, m loss.Matrix) error {
	if m.Rows < 0 || m.Cols < 0 || (m.Cols > 0 && m.Rows > math.MaxInt/m.Cols) {
		return fmt.Errorf("%w: %s is %d×%d", loss.ErrShape, name, m.Rows, m.Cols)
	}
	if len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("%w: %s is %d×%d but len(Data) = %d", loss.ErrShape, name, m.Rows, m.Cols, len(m.Data))
	}
	return nil
}

// checkRows validates StepRows' arguments (hyper-parameters apart): it
// returns whether g holds one row per listed row (compact) instead of
// p's shape.
func checkRows(p, g loss.Matrix, rows []int32) (compact bool, err error) {
	if err := checkMatrix("p", p); err != nil {
		return false, err
	}
	if err := checkMatrix("g", g); err != nil {
		return false, err
	}
	switch {
	case g.Cols != p.Cols:
		return false, fmt.Errorf("%w: g has %d columns, p has %d", loss.ErrShape, g.Cols, p.Cols)
	case g.Rows == p.Rows:
	case g.Rows == len(rows):
		compact = true
	default:
		return false, fmt.Errorf("%w: g has %d rows, want p's %d or one per listed row (%d)", loss.ErrShape, g.Rows, p.Rows, len(rows))
	}
	if overlaps(p.Data, g.Data) {
		return false, fmt.Errorf("%w: g shares memory with p", loss.ErrOverlap)
	}
	prev := int32(-1)
	for i, r := range rows {
		if r < 0 || int(r) >= p.Rows {
			return false, fmt.Errorf("%w: rows[%d] = %d, outside [0, %d)", loss.ErrParam, i, r, p.Rows)
		}
		if r <= prev {
			return false, fmt.Errorf("%w: rows[%d] = %d after %d: rows must be ascending and unique", loss.ErrParam, i, r, prev)
		}
		prev = r
	}
	for i, r := range rows {
		if k := indexNonFinite(p.Row(int(r))); k >= 0 {
			return false, fmt.Errorf("%w: p[%d, %d] = %v", loss.ErrNonFinite, r, k, p.Row(int(r))[k])
		}
		gr := int(r)
		if compact {
			gr = i
		}
		if k := indexNonFinite(g.Row(gr)); k >= 0 {
			return false, fmt.Errorf("%w: g[%d, %d] = %v", loss.ErrNonFinite, gr, k, g.Row(gr)[k])
		}
	}
	return compact, nil
}

// job is the parallel step of one call, kept in the State so that a call
// allocates nothing.
type job struct {
	st      *State
	sgd     SGD
	adamw   AdamW
	p, g    []float32 // Step: the tensor; StepRows: p's and g's Data
	cols    int
	rows    []int32
	compact bool
	rowsPer int // StepRows: listed rows per chunk
	sc      asm.SGDCoef
	ac      asm.AdamWCoef
}

func (j *job) RunChunk(c int) {
	st := j.st
	if j.rows == nil {
		lo, hi := par.Range(c, chunk, len(j.p))
		switch st.kind {
		case kindSGD:
			var buf []float32
			if st.a != nil {
				buf = st.a[lo:hi]
			}
			asm.SGDStep(j.p[lo:hi], j.g[lo:hi], buf, j.sc)
		case kindAdamW:
			asm.AdamWStep(j.p[lo:hi], j.g[lo:hi], st.a[lo:hi], st.b[lo:hi], j.ac)
		}
		return
	}
	lo, hi := par.Range(c, j.rowsPer, len(j.rows))
	for i := lo; i < hi; i++ {
		r := int(j.rows[i])
		gr := r
		if j.compact {
			gr = i
		}
		j.stepRow(r, j.p[r*j.cols:(r+1)*j.cols], j.g[gr*j.cols:(gr+1)*j.cols])
	}
}

// stepRow steps row r (its parameters p and gradient g) with its own step
// count, and counts the step.
func (j *job) stepRow(r int, p, g []float32) {
	st := j.st
	lo, hi := r*j.cols, (r+1)*j.cols
	switch st.kind {
	case kindSGD:
		c := j.sgd.coef(st.rowT[r])
		var buf []float32
		if j.sgd.Momentum != 0 {
			buf = st.a[lo:hi]
			st.rowT[r]++
		}
		asm.SGDStep(p, g, buf, c)
	case kindAdamW:
		st.rowT[r]++
		asm.AdamWStep(p, g, st.a[lo:hi], st.b[lo:hi], j.adamw.coef(st.rowT[r]))
	}
}

// run steps with j's configuration on GOMAXPROCS goroutines.
func (st *State) run() {
	j := &st.job
	if j.rows == nil {
		par.Do(par.Chunks(len(j.p), chunk), j)
	} else {
		j.rowsPer = max(1, chunk/max(j.cols, 1))
		par.Do(par.Chunks(len(j.rows), j.rowsPer), j)
	}
	*j = job{}
}
