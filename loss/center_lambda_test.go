package loss_test

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// TestCenterLambda checks the weight against a float64 reference computed
// here from the definition (λ·Σ‖x_i − c_y‖²/(2N), λ·(x_i − c_y)/N), with
// Accumulate onto a buffer that already holds a gradient, and that Update
// does not depend on λ. The golden cases with λ ≠ 0 come from torch.
func TestCenterLambda(t *testing.T) {
	r := rand.New(rand.NewSource(71))
	const n, c, d = 13, 5, 9
	x := randMatrix(r, n, d)
	centers := randMatrix(r, c, d)
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(r.Intn(c))
	}
	for _, lam := range []float32{0, 1, 0.01, 0.003, 7.5} {
		w := float64(lam)
		if lam == 0 {
			w = 1
		}
		var ref float64
		for i := 0; i < n; i++ {
			for k := 0; k < d; k++ {
				diff := float64(x.Row(i)[k]) - float64(centers.Row(int(labels[i]))[k])
				ref += diff * diff
			}
		}
		ref *= w / (2 * n)
		prior := randMatrix(r, n, d)
		for _, acc := range []bool{false, true} {
			ct := &loss.Center{Centers: loss.Matrix{Rows: c, Cols: d, Data: slices.Clone(centers.Data)}, Alpha: 0.5, Lambda: lam, Accumulate: acc}
			require.NoError(t, ct.Validate())
			dx := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(prior.Data)}
			got, err := ct.Loss(x, labels, &dx)
			require.NoError(t, err)
			require.InDelta(t, ref, float64(got), 2e-7*ref, "λ=%g loss", lam)
			for i := 0; i < n; i++ {
				for k := 0; k < d; k++ {
					g := w * (float64(x.Row(i)[k]) - float64(centers.Row(int(labels[i]))[k])) / n
					want := float64(float32(g)) // one rounding of the weighted gradient
					if acc {
						want = float64(float32(g) + prior.Row(i)[k])
					}
					// float32(g) itself is within ½ ulp of g; the product is formed
					// in another float64 order, so allow one float32 ulp.
					ulp := float64(math.Nextafter32(float32(math.Abs(want)), float32(math.Inf(1))) - float32(math.Abs(want)))
					require.InDelta(t, want, float64(dx.Row(i)[k]), ulp, "λ=%g acc=%v dx[%d,%d]", lam, acc, i, k)
				}
			}
			require.NoError(t, ct.Update(x, labels))
			one := &loss.Center{Centers: loss.Matrix{Rows: c, Cols: d, Data: slices.Clone(centers.Data)}, Alpha: 0.5}
			require.NoError(t, one.Update(x, labels))
			require.Equal(t, one.Centers.Data, ct.Centers.Data, "Update depends on λ")
		}
	}
	for _, bad := range []float32{-0.01, float32(math.NaN()), float32(math.Inf(1))} {
		ct := &loss.Center{Centers: loss.Matrix{Rows: c, Cols: d, Data: slices.Clone(centers.Data)}, Alpha: 0.5, Lambda: bad}
		require.ErrorIs(t, ct.Validate(), loss.ErrParam)
		dx := filled(n, d, 3)
		_, err := ct.Loss(x, labels, &dx)
		require.ErrorIs(t, err, loss.ErrParam, "λ=%g", bad)
		require.Equal(t, filled(n, d, 3).Data, dx.Data, "dx written on error")
	}
}
