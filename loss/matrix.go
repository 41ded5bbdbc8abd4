package loss

import (
	"fmt"
	"math"
	"unsafe"
)

// Matrix is a dense row-major float32 matrix: element (i, j) is
// Data[i*Cols+j], and len(Data) must equal Rows*Cols.
type Matrix struct {
	Rows, Cols int
	Data       []float32
}

// Row returns row i as a slice of Data (no copy).
func (m Matrix) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// Reduction says how per-sample losses are combined.
type Reduction int

const (
	// Mean divides the summed loss by the number of samples (rows of the
	// batch; all N·C elements for Focal.Sigmoid). It is the zero value.
	Mean Reduction = iota
	// Sum adds the per-sample losses.
	Sum
)

// String returns "mean" or "sum".
func (r Reduction) String() string {
	switch r {
	case Mean:
		return "mean"
	case Sum:
		return "sum"
	}
	return fmt.Sprintf("Reduction(%d)", int(r))
}

func (r Reduction) check() error {
	if r != Mean && r != Sum {
		return fmt.Errorf("%w: unknown reduction %d", ErrParam, int(r))
	}
	return nil
}

// scale is the factor that turns a sum over count items into the reduction.
func (r Reduction) scale(count int) float64 {
	if r == Mean && count > 0 {
		return 1 / float64(count)
	}
	return 1
}

// checkMatrix validates a matrix's own consistency.
func checkMatrix(name string, m Matrix) error {
	if m.Rows < 0 || m.Cols < 0 {
		return fmt.Errorf("%w: %s has negative dimensions %d×%d", ErrShape, name, m.Rows, m.Cols)
	}
	if m.Cols > 0 && m.Rows > math.MaxInt/m.Cols {
		return fmt.Errorf("%w: %s dimensions %d×%d overflow", ErrShape, name, m.Rows, m.Cols)
	}
	if len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("%w: %s is %d×%d but len(Data) = %d, want %d", ErrShape, name, m.Rows, m.Cols, len(m.Data), m.Rows*m.Cols)
	}
	return nil
}

// checkGrad validates an optional gradient matrix against the shape it must
// have.
func checkGrad(name string, g *Matrix, rows, cols int) error {
	if g == nil {
		return nil
	}
	if err := checkMatrix(name, *g); err != nil {
		return err
	}
	if g.Rows != rows || g.Cols != cols {
		return fmt.Errorf("%w: %s is %d×%d, want %d×%d", ErrShape, name, g.Rows, g.Cols, rows, cols)
	}
	return nil
}

// checkLabels validates labels against n rows and c classes.
func checkLabels(labels []int32, n, c int) error {
	if len(labels) != n {
		return fmt.Errorf("%w: len(labels) = %d, want %d (one per row)", ErrLabel, len(labels), n)
	}
	for i, y := range labels {
		if y < 0 || int(y) >= c {
			return fmt.Errorf("%w: labels[%d] = %d, want 0 ≤ label < %d", ErrLabel, i, y, c)
		}
	}
	return nil
}

// checkFinite returns an ErrNonFinite error naming the first element of m
// that is NaN or ±Inf. It walks Data, so its work is bounded by the number
// of elements whatever Rows says.
func checkFinite(name string, m Matrix) error {
	if k := indexNonFinite(m.Data); k >= 0 {
		return fmt.Errorf("%w: %s row %d column %d is %v", ErrNonFinite, name, k/m.Cols, k%m.Cols, m.Data[k])
	}
	return nil
}

// indexNonFinite returns the index of the first NaN or ±Inf in s, or −1.
// It tests the exponent bits (all ones) four floats at a time, so that
// validating a large matrix (a C×D Centers) costs a fraction of a
// nanosecond per element.
func indexNonFinite(s []float32) int {
	const exp = 0x7f800000
	u := unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
	i := 0
	for ; i+4 <= len(u); i += 4 {
		q := u[i : i+4 : i+4]
		if q[0]&exp == exp || q[1]&exp == exp || q[2]&exp == exp || q[3]&exp == exp {
			break
		}
	}
	for ; i < len(u); i++ {
		if u[i]&exp == exp {
			return i
		}
	}
	return -1
}

func isFinite(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }

func isFinite64(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// zero clears an optional gradient matrix.
func zero(g *Matrix) {
	if g != nil {
		clear(g.Data)
	}
}

// maxAbs returns the largest |v| in s, or +Inf when s holds a NaN or ±Inf.
// accumFinite refuses, with ErrNonFinite, an Accumulate target m (nil: no
// target) that already holds a NaN or ±Inf: the output would not be finite.
// A call with rows refuses it through its bounds; one with none (N = 0),
// which adds nothing, calls this.
func accumFinite(name string, m *Matrix) error {
	if m != nil && math.IsInf(maxAbs(m.Data), 1) {
		return fmt.Errorf("%w: %s holds a NaN or ±Inf (Accumulate adds to it)", ErrNonFinite, name)
	}
	return nil
}

func maxAbs(s []float32) float64 {
	var m float32
	for _, v := range s {
		if !isFinite(v) {
			return math.Inf(1)
		}
		m = max(m, v, -v)
	}
	return float64(m)
}
