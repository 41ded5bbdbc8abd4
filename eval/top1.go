package eval

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/loss"
)

// Top1 returns the fraction of the rows of emb (n×d) whose nearest centre
// by cosine is their label: for row i, the class c of centers (C×d) with
// the largest cos(emb_i, centers_c) = Σ e·w / (‖e‖·‖w‖), ties to the lower
// class. Everything is float64, summed in index order; a zero row has
// cosine 0 with everything (so a zero embedding picks class 0).
//
// Errors: loss.ErrShape when a Data length is not Rows·Cols, the widths
// differ, len(labels) ≠ n or there are no centres; loss.ErrLabel for a
// label outside [0, C); loss.ErrNonFinite for NaN or ±Inf; loss.ErrParam
// when there are no rows.
func Top1(emb, centers loss.Matrix, labels []int32) (float64, error) {
	n, d, c := emb.Rows, emb.Cols, centers.Rows
	switch {
	case n < 0 || d < 0 || len(emb.Data) != n*d:
		return 0, fmt.Errorf("%w: emb is %d×%d with %d values", loss.ErrShape, emb.Rows, emb.Cols, len(emb.Data))
	case c < 0 || centers.Cols != d || len(centers.Data) != c*d:
		return 0, fmt.Errorf("%w: centers is %d×%d with %d values, emb has %d columns", loss.ErrShape, centers.Rows, centers.Cols, len(centers.Data), d)
	case c == 0:
		return 0, fmt.Errorf("%w: no centres", loss.ErrShape)
	case len(labels) != n:
		return 0, fmt.Errorf("%w: len(labels) = %d for %d rows", loss.ErrShape, len(labels), n)
	case n == 0:
		return 0, fmt.Errorf("%w: no rows to score", loss.ErrParam)
	}
	for i, l := range labels {
		if l < 0 || int(l) >= c {
			return 0, fmt.Errorf("%w: labels[%d] = %d, want [0, %d)", loss.ErrLabel, i, l, c)
		}
	}
	if i := firstNonFinite(emb.Data); i >= 0 {
		return 0, fmt.Errorf("%w: emb[%d][%d] = %v", loss.ErrNonFinite, i/d, i%d, emb.Data[i])
	}
	if i := firstNonFinite(centers.Data); i >= 0 {
		return 0, fmt.Errorf("%w: centers[%d][%d] = %v", loss.ErrNonFinite, i/d, i%d, centers.Data[i])
	}
	cn := make([]float64, c)
	for j := range cn {
		cn[j] = norm64(centers.Data[j*d : (j+1)*d])
	}
	hits := 0
	for i := 0; i < n; i++ {
		e := emb.Data[i*d : (i+1)*d]
		en := norm64(e)
		arg, bestCos := 0, math.Inf(-1)
		for j := 0; j < c; j++ {
			cos := 0.0
			if en != 0 && cn[j] != 0 {
				cos = dot64(e, centers.Data[j*d:(j+1)*d]) / (en * cn[j])
			}
			if cos > bestCos {
				arg, bestCos = j, cos
			}
		}
		if arg == int(labels[i]) {
			hits++
		}
	}
	return float64(hits) / float64(n), nil
}

func dot64(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(float64(v) * float64(b[i]))
	}
	return s
}

func norm64(a []float32) float64 { return math.Sqrt(dot64(a, a)) }
