package loss_test

import (
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// TestKeptTilesBitwise: the backward pass reading the kept forward tiles
// gives bitwise the results of recomputing them, for every kind, at a
// shape with many tiles and shards.
func TestKeptTilesBitwise(t *testing.T) { forEachLevel(t, testKeptTilesBitwise) }

func testKeptTilesBitwise(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	for _, shape := range [][3]int{{37, 3001, 19}, {5, 40, 3}, {300, 700, 8}} {
		n, c, d := shape[0], shape[1], shape[2]
		x, w := randMatrix(r, n, d), randMatrix(r, c, d)
		labels := randLabels(r, n, c)
		for name, mk := range allHeads() {
			var out [2][]float32
			for k, budget := range []int{0, -1} {
				h := mk()
				h.TileBudget = budget
				dx, dw := filled(n, d, 0), filled(c, d, 0)
				l, err := h.Loss(x, w, labels, &dx, &dw)
				require.NoError(t, err)
				out[k] = append(append([]float32{l}, dx.Data...), dw.Data...)
			}
			for i := range out[0] {
				require.Equal(t, math.Float32bits(out[1][i]), math.Float32bits(out[0][i]), "%s %v: output %d", name, shape, i)
			}
		}
	}
}

// scratchOfFirstCall is the heap a new head allocates in its first call.
func scratchOfFirstCall(t *testing.T, budget int, x, w loss.Matrix, labels []int32, dx, dw *loss.Matrix) uint64 {
	h := loss.ArcFace(30, 0.5)
	h.TileBudget = budget
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	_, err := h.Loss(x, w, labels, dx, dw)
	runtime.ReadMemStats(&b)
	require.NoError(t, err)
	return b.TotalAlloc - a.TotalAlloc
}

// TestTileBudgetHonoured measures the scratch: keeping the tiles costs at
// most the budget beyond the recomputing path, and only when N·C floats fit
// it; the recomputing path's scratch grows by a few floats per class, not
// by N per class.
func TestTileBudgetHonoured(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	n, d := 256, 8
	measure := func(c, budget int) uint64 {
		x, w := randMatrix(r, n, d), randMatrix(r, c, d)
		labels := randLabels(r, n, c)
		dx, dw := filled(n, d, 0), filled(c, d, 0)
		return scratchOfFirstCall(t, budget, x, w, labels, &dx, &dw)
	}
	c := 5000
	need := n * c * 4
	recompute := measure(c, -1)
	under := measure(c, need-1) // one byte short: recompute
	fits := measure(c, need)    // exactly fits: keep
	t.Logf("scratch: recompute %d B, budget %d−1 B: %d B, budget %d B: %d B", recompute, need, under, need, fits)
	// Keeping the tiles adds N·C floats and drops the shards' recompute
	// tiles (about a third of that at this shape).
	require.Less(t, under, recompute+uint64(need)/4, "a budget one byte short of N·C floats must not keep the tiles")
	require.Greater(t, fits, recompute+uint64(need)/3, "N·C floats within the budget: the tiles are kept")
	require.LessOrEqual(t, fits-recompute, uint64(need), "kept tiles beyond the budget")

	// From C = 20k on the shard count is at its cap (16), so what grows
	// with C is W's norms and column scales.
	c1, c2 := 20000, 80000
	perClass := float64(measure(c2, -1)-measure(c1, -1)) / float64(c2-c1)
	t.Logf("recompute path: %.1f bytes of scratch per extra class (N = %d)", perClass, n)
	require.Less(t, perClass, 16.0, "the recomputing head's scratch must not grow with N·C")
}
