package loss_test

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// TestBadWAfterForward: the forward pass computes the norms of W's rows
// tile by tile, so a row that is not a label's is checked only after it.
// Such a row, non-finite, or finite but large enough that a gradient
// would overflow, must still fail the call with ErrNonFinite naming the
// first bad row, before any output (dx, dw, the adaptive state, a
// ShardedHead's statistics) is written, at both precisions, with
// sub-centers, for PartialFC and ShardedHead alike.
func TestBadWAfterForward(t *testing.T) {
	const n, c, d = 9, 3000, 24 // several tiles (N·ct = 32k) and shards
	r := rand.New(rand.NewSource(3))
	x := randMatrix(r, n, d)
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(r.Intn(c / 2)) // the bad rows lie in the upper half
	}
	heads := []struct {
		name string
		mk   func() *loss.MarginSoftmax
	}{
		{"ArcFace", func() *loss.MarginSoftmax { return loss.ArcFace(64, 0.5) }},
		{"ArcFace-K3", func() *loss.MarginSoftmax { h := loss.ArcFace(64, 0.5); h.SubCenters = 3; return h }},
		{"LargeMargin", func() *loss.MarginSoftmax { return loss.LargeMargin(2, 0) }},
		{"CurricularFace", func() *loss.MarginSoftmax { return loss.CurricularFace(64, 0.5, 0.01) }},
		{"AdaFace", func() *loss.MarginSoftmax { return loss.AdaFace(64, 0.4, 0.333, 0.01) }},
	}
	type fault struct {
		name  string
		rows  []int // rows set bad, in this order
		first int   // the row the error names
		value float32
		msg   string
	}
	faults := []fault{
		{"NaN", []int{2 * c / 3}, 2 * c / 3, float32(math.NaN()), "w row %d has norm NaN"},
		{"Inf", []int{c - 1}, c - 1, float32(math.Inf(-1)), "w row %d has norm +Inf"},
		{"NaN, then a label's row", []int{c - 7, 0}, c - 7, float32(math.NaN()), "w row %d has norm NaN"},
	}
	for _, hk := range heads {
		for _, prec := range []loss.Precision{loss.Float32, loss.BFloat16} {
			for _, f := range faults {
				name := fmt.Sprintf("%s/%v/%s", hk.name, prec, f.name)
				k := max(hk.mk().SubCenters, 1)
				w := randMatrix(r, c*k, d)
				for q, row := range f.rows {
					if q > 0 { // a label's class: its first sub-center row
						row = int(labels[0]) * k
						f.first = min(f.first, row)
					}
					w.Data[row*d+d/2] = f.value
				}
				want := fmt.Sprintf(f.msg, f.first)

				h := hk.mk()
				h.Precision = prec
				st0 := h.State()
				dx, dw := filled(n, d, 5), filled(c*k, d, 7)
				before := snapshot(&dx, &dw)
				_, err := h.Loss(x, w, labels, &dx, &dw)
				require.ErrorIs(t, err, loss.ErrNonFinite, name)
				require.ErrorContains(t, err, want, name)
				requireUntouched(t, before, &dx, &dw)
				require.Equal(t, st0, h.State(), "%s: adaptive state changed on error", name)

				pfc := &loss.PartialFC{Head: hk.mk(), SampleRate: 1}
				pfc.Head.Precision = prec
				_, err = pfc.Loss(x, w, labels, &dx, &dw)
				require.ErrorIs(t, err, loss.ErrNonFinite, "PartialFC %s", name)
				require.ErrorContains(t, err, want, "PartialFC %s", name)
				requireUntouched(t, before, &dx, &dw)

				sh := &loss.ShardedHead{Head: hk.mk(), Classes: c}
				sh.Head.Precision = prec
				var st loss.ShardStats
				if sh.Head.NeedsTargets() { // Prepare, before Forward, checks all of W
					err = sh.Prepare(x, w, labels, &st)
					require.ErrorIs(t, err, loss.ErrNonFinite, "ShardedHead.Prepare %s", name)
					require.ErrorContains(t, err, want, "ShardedHead.Prepare %s", name)
					continue
				}
				st.Max, st.Sums = []float32{1, 2}, []float32{3}
				err = sh.Forward(x, w, labels, &st)
				require.ErrorIs(t, err, loss.ErrNonFinite, "ShardedHead %s", name)
				require.ErrorContains(t, err, want, "ShardedHead %s", name)
				require.Equal(t, []float32{1, 2}, st.Max, "ShardedHead %s: stats written on error", name)
				require.Equal(t, []float32{3}, st.Sums, "ShardedHead %s: stats written on error", name)
			}
		}
	}

	// Finite, but past the bounds: L-Softmax's gradient scales with ‖W_j‖,
	// so one huge row that no label names overflows dw.
	w := randMatrix(r, c, d)
	row := w.Row(c - 2)
	for q := range row {
		row[q] = 3e37
	}
	h := loss.LargeMargin(2, 0)
	dx, dw := filled(n, d, 5), filled(c, d, 7)
	before := snapshot(&dx, &dw)
	_, err := h.Loss(x, w, labels, &dx, &dw)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.ErrorContains(t, err, "would overflow")
	requireUntouched(t, before, &dx, &dw)
	require.False(t, slices.ContainsFunc(dw.Data, func(v float32) bool { return v != 7 }))
}
