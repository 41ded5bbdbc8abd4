package loss_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/internal/simd"
	"github.com/marginloss/marginloss/loss"
)

// Accuracy bounds of Precision = BFloat16 against a float64 reference
// (the package doc's section on precision), for the head's regime (D ≥ 64,
// where the rounding errors of a cosine's D products average out):
//
//	|L − L_ref| ≤ bf16LossTol·max(1, |L_ref|)
//	‖g − g_ref‖₂ ≤ bf16GradTol·‖g_ref‖₂   for dx and dw separately
//
// (‖g − g_ref‖₂ ≤ bf16GradTol·bf16GradFloor·√len when ‖g_ref‖ is below
// that floor: a gradient that is identically zero in exact arithmetic,
// as through the normalisation at D = 1, is a rounding residue).
//
// At any D, the loss obeys the worst-case bound bf16LossBound: rounding x̂
// and W_j to bf16 (relative 2⁻⁹ each) moves a cosine by at most
// (2⁻⁸+2⁻¹⁸)·Σ_k|x̂_k·Ŵ_jk| ≤ 2⁻⁸·(1+2⁻¹⁰), so a non-target logit by
// A_i·B_j times that (the target logit stays float32); the log-sum-exp and
// the class max over sub-centers are 1-Lipschitz in the max norm and label
// smoothing's mean term adds at most as much again.
const (
	bf16GoldenMinD = 8
	bf16LossTol    = 1e-3
	bf16GradTol    = 5e-2
	bf16GradFloor  = 1e-3
)

// bf16Stats keeps the worst errors seen, logged at the end of a test (the
// figures the package doc quotes).
type bf16Stats struct{ loss, dx, dw float64 }

func (s *bf16Stats) log(t *testing.T, what string) {
	t.Logf("%s: worst loss |Δ|/max(1,|L|) = %.2e, dx ‖Δ‖/‖g‖ = %.2e, dw ‖Δ‖/‖g‖ = %.2e", what, s.loss, s.dx, s.dw)
}

// normErr is ‖got − ref‖₂ / max(‖ref‖₂, floor·√len).
func normErr(got []float32, ref []float64, floor float64) float64 {
	var d, m float64
	for i, r := range ref {
		e := float64(got[i]) - r
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return math.Inf(1)
		}
		d += e * e
		m += r * r
	}
	return math.Sqrt(d) / math.Max(math.Sqrt(m), floor*math.Sqrt(float64(len(ref))))
}

// bf16LossBound is the worst-case |L − L_ref| of a BFloat16 call (see
// above) on x (n×d) and w (rows×d): r·Σ_i 2·A_i·max_j B_j·2⁻⁸·(1+2⁻¹⁰), plus
// the float32 golden tolerance lossRelTol·max(|L|, lossRelFloor).
func bf16LossBound(sp marginSpec, x, w []float32, n, rows, d int, refL float64) float64 {
	norm := func(v []float32) float64 {
		var s float64
		for _, e := range v {
			s += float64(e) * float64(e)
		}
		return math.Sqrt(s)
	}
	maxB := 1.0
	if sp.Kind == "largemargin" {
		maxB = 0
		for j := 0; j < rows; j++ {
			maxB = math.Max(maxB, norm(w[j*d:(j+1)*d]))
		}
	}
	var sum float64
	for i := 0; i < n; i++ {
		a := sp.S
		if !sp.normalised() {
			a = norm(x[i*d : (i+1)*d])
		}
		sum += 2 * a * maxB * 0x1p-8 * (1 + 0x1p-10)
	}
	return redScale(sp.Red, n)*sum + lossRelTol*math.Max(math.Abs(refL), lossRelFloor)
}

// checkBF16 asserts the bounds above for one call (the loss within
// lossBound when it is > 0, else the head-regime bound) and records the
// errors.
func checkBF16(t *testing.T, st *bf16Stats, at string, l float32, dx, dw []float32, refL float64, refDX, refDW []float64, lossBound float64) {
	t.Helper()
	le := math.Abs(float64(l)-refL) / math.Max(1, math.Abs(refL))
	st.loss = math.Max(st.loss, le)
	if lossBound > 0 {
		require.LessOrEqualf(t, math.Abs(float64(l)-refL), lossBound, "%s: loss %v, float64 reference %v", at, l, refL)
	} else {
		require.LessOrEqualf(t, le, bf16LossTol, "%s: loss %v, float64 reference %v", at, l, refL)
	}
	if dx != nil {
		e := normErr(dx, refDX, bf16GradFloor)
		st.dx = math.Max(st.dx, e)
		require.LessOrEqualf(t, e, bf16GradTol, "%s: dx ‖Δ‖/‖g‖ = %.3e", at, e)
	}
	if dw != nil {
		e := normErr(dw, refDW, bf16GradFloor)
		st.dw = math.Max(st.dw, e)
		require.LessOrEqualf(t, e, bf16GradTol, "%s: dw ‖Δ‖/‖g‖ = %.3e", at, e)
	}
}

// bf16 returns h with Precision = BFloat16.
func bf16(h *loss.MarginSoftmax) *loss.MarginSoftmax { h.Precision = loss.BFloat16; return h }

// TestBFloat16Golden: every PyTorch float64 golden case of the margin head
// (testdata/golden_margin.json) and of Loss with sub-centers and label
// smoothing (golden_cosines.json's loss cases), for the Head and for a
// ShardedHead split in two, at every level and on both tile paths: the
// loss within the worst-case bf16LossBound (the cases have D down to 1,
// where a cosine's rounding does not average out), the gradients within
// the head-regime bound where D ≥ bf16GoldenMinD and finite below (at D =
// 2 one bf16 rounding of one product is already 7% of a gradient).
func TestBFloat16Golden(t *testing.T) { forEachLevelAndPath(t, forEachBF16Driver(testBFloat16Golden)) }

// forEachBF16Driver runs f with the level's own bf16 driver and, at
// avx512 on a CPU with AVX512_BF16, with each of its drivers forced in
// turn (asm's BF16ForceDriver: AMX tiles where the CPU and OS have them,
// VDPBF16PS on pair packs, the float32 kernel on rounded packs), so that
// each is tested whichever the CPU's rule picks.
func forEachBF16Driver(f func(t *testing.T)) func(t *testing.T) {
	return func(t *testing.T) {
		f(t)
		force, err := simd.Lookup[func(string) (func(), bool)]("BF16ForceDriver")
		require.NoError(t, err)
		if loss.Backend() != "avx512" {
			return
		}
		for _, name := range []string{"avx512-amx", "avx512-pair", "avx512-round"} {
			restore, ok := force(name)
			if !ok {
				t.Logf("%s: not on this CPU", name)
				continue
			}
			t.Run(name, func(t *testing.T) {
				defer restore()
				f(t)
			})
		}
	}
}

func testBFloat16Golden(t *testing.T) {
	var doc struct{ Cases []goldenMarginCase }
	loadGolden(t, "golden_margin.json", &doc)
	var st bf16Stats
	for _, gc := range doc.Cases {
		sp := marginSpec{Kind: gc.Kind, S: float64(gc.S), M: float64(gc.M), M1: float64(gc.M1),
			M2: float64(gc.M2), M3: float64(gc.M3), Mi: gc.Mi, Lambda: float64(gc.Lambda),
			Easy: gc.Easy, Detach: gc.Detach, Red: parseReduction(t, gc.Reduction)}
		x, w := matOf(gc.N, gc.D, gc.X), matOf(gc.C, gc.D, gc.W)
		dx, dw := nanMatrix(gc.N, gc.D), nanMatrix(gc.C, gc.D)
		l, err := bf16(sp.api()).Loss(x, w, gc.Labels, &dx, &dw)
		require.NoError(t, err, gc.Name)
		lb := bf16LossBound(sp, gc.X, gc.W, gc.N, gc.C, gc.D, gc.Loss)
		goldenBF16(t, &st, gc.Name, gc.D, l, dx.Data, dw.Data, gc.Loss, gc.DX, gc.DW, lb)
		if gc.C >= 2 {
			sl, sdx, sdw := runShards(t, bf16(sp.api()), x, w, gc.Labels, []int{0, gc.C / 2, gc.C}, false)
			goldenBF16(t, &st, gc.Name+" sharded", gc.D, sl, sdx, sdw, gc.Loss, gc.DX, gc.DW, lb)
		}
	}
	cd := loadCosineGoldens(t)
	for _, gc := range cd.LossCases {
		rows := gc.C * gc.K
		x, w := matOf(gc.N, gc.D, gc.X), matOf(rows, gc.D, gc.W)
		dx, dw := nanMatrix(gc.N, gc.D), nanMatrix(rows, gc.D)
		l, err := bf16(gc.api(t)).Loss(x, w, gc.Labels, &dx, &dw)
		require.NoError(t, err, gc.Name)
		sp := marginSpec{Kind: gc.Kind, S: float64(gc.S), Red: parseReduction(t, gc.Reduction)}
		lb := bf16LossBound(sp, gc.X, gc.W, gc.N, rows, gc.D, gc.Loss)
		goldenBF16(t, &st, gc.Name, gc.D, l, dx.Data, dw.Data, gc.Loss, gc.DX, gc.DW, lb)
		if gc.C >= 2 {
			sl, sdx, sdw := runShards(t, bf16(gc.api(t)), x, w, gc.Labels, []int{0, gc.C / 2, gc.C}, true)
			goldenBF16(t, &st, gc.Name+" sharded", gc.D, sl, sdx, sdw, gc.Loss, gc.DX, gc.DW, lb)
		}
	}
	st.log(t, "golden")
}

// goldenBF16 is checkBF16 for a golden case of depth d: gradients checked
// where d ≥ bf16GoldenMinD, required finite below.
func goldenBF16(t *testing.T, st *bf16Stats, at string, d int, l float32, dx, dw []float32, refL float64, refDX, refDW []float64, lb float64) {
	t.Helper()
	if d < bf16GoldenMinD {
		requireFinite(t, at, "dx", dx)
		requireFinite(t, at, "dw", dw)
		dx, dw = nil, nil
	}
	checkBF16(t, st, at, l, dx, dw, refL, refDX, refDW, lb)
}

// drawTrained draws trained-like inputs: unit-scale random class rows and
// embeddings at angle θ ∈ [0.15, 0.6] to their class (confident rows, the
// loss small against its logits).
func drawTrained(rng *rand.Rand, n, c, d int) (x, w []float64, labels []int32) {
	w = make([]float64, c*d)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	x = make([]float64, n*d)
	labels = make([]int32, n)
	for i := range n {
		y := rng.IntN(c)
		labels[i] = int32(y)
		wy := w[y*d : (y+1)*d]
		nw := math.Sqrt(dot(wy, wy))
		u := make([]float64, d)
		for k := range u {
			u[k] = rng.NormFloat64()
		}
		pr := dot(u, wy) / (nw * nw)
		for k := range u {
			u[k] -= pr * wy[k]
		}
		nu := math.Sqrt(dot(u, u))
		theta := 0.15 + 0.45*rng.Float64()
		rad := 0.5 + 2*rng.Float64()
		for k := range u {
			x[i*d+k] = rad * (math.Cos(theta)*wy[k]/nw + math.Sin(theta)*u[k]/nu)
		}
	}
	return to64(to32(x)), to64(to32(w)), labels
}

// bf16Specs are the kinds at production-like parameters.
func bf16Specs() []marginSpec {
	return []marginSpec{
		{Kind: "arcface", S: 64, M: f32(0.5), Red: loss.Mean},
		{Kind: "arcface", S: 32, M: f32(0.3), Easy: true, Red: loss.Sum},
		{Kind: "arcface", S: 64, M: f32(0.5), Detach: true, Red: loss.Mean},
		{Kind: "cosface", S: 64, M: f32(0.35), Red: loss.Mean},
		{Kind: "combined", S: 64, M1: 1, M2: f32(0.3), M3: f32(0.2), Red: loss.Mean},
		{Kind: "sphereface", Mi: 4, Lambda: 5, Red: loss.Mean},
		{Kind: "largemargin", Mi: 3, Lambda: 1, Red: loss.Mean},
	}
}

// TestBFloat16Reference: random and trained-like inputs, over several
// class tiles and shards, against the float64 reference (refMargin), for
// the Head (and, on the smaller shape, a ShardedHead split three ways and a
// PartialFC sampling every class), at every level and on both tile paths;
// and BFloat16 really changes the result (it differs bitwise from
// Float32).
func TestBFloat16Reference(t *testing.T) {
	forEachLevelAndPath(t, forEachBF16Driver(testBFloat16Reference))
}

// bf16RefCase is one input of TestBFloat16Reference with its float64
// reference, computed once for every level, path and driver.
type bf16RefCase struct {
	at      string
	sp      marginSpec
	n, c, d int
	x, w    []float64
	labels  []int32
	ref     marginRef
}

var bf16Refs = sync.OnceValue(func() []bf16RefCase {
	rng := rand.New(rand.NewPCG(16, 1))
	var cs []bf16RefCase
	// 9×600 and 24×700 span two class tiles (the head's tile is 512 wide).
	for _, shp := range [][3]int{{9, 600, 64}, {24, 700, 128}} {
		n, c, d := shp[0], shp[1], shp[2]
		for _, trained := range []bool{false, true} {
			var x, w []float64
			var labels []int32
			if trained {
				x, w, labels = drawTrained(rng, n, c, d)
			} else {
				x, w, labels = to64(to32(randNorm(rng, n*d))), to64(to32(randNorm(rng, c*d))), drawLabels(rng, n, c)
			}
			for _, sp := range bf16Specs() {
				ref := refMargin(sp, x, w, labels, n, c, d, nil)
				if sp.Detach {
					ref = refMargin(sp, x, w, labels, n, c, d, detachOffsets(sp, ref))
				}
				cs = append(cs, bf16RefCase{fmt.Sprintf("%v %dx%dx%d trained=%v", sp, n, c, d, trained), sp, n, c, d, x, w, labels, ref})
			}
		}
	}
	return cs
})

func testBFloat16Reference(t *testing.T) {
	var st bf16Stats
	for _, rc := range bf16Refs() {
		sp, at, ref, labels := rc.sp, rc.at, rc.ref, rc.labels
		n, c, d := rc.n, rc.c, rc.d
		xm, wm := matOf(n, d, to32(rc.x)), matOf(c, d, to32(rc.w))
		dx, dw := nanMatrix(n, d), nanMatrix(c, d)
		l, err := bf16(sp.api()).Loss(xm, wm, labels, &dx, &dw)
		require.NoError(t, err, at)
		checkBF16(t, &st, at, l, dx.Data, dw.Data, ref.loss, ref.dx, ref.dw, 0)

		f32dx, f32dw := nanMatrix(n, d), nanMatrix(c, d)
		l32, err := sp.api().Loss(xm, wm, labels, &f32dx, &f32dw)
		require.NoError(t, err)
		if l32 == l && relDiff(f32dw.Data, dw.Data) == 0 {
			t.Fatalf("%s: BFloat16 gives Float32's bits", at)
		}

		if n != 9 {
			continue // the composed entries on the smaller shape only (emulated CI runs are slow)
		}
		sl, sdx, sdw := runShards(t, bf16(sp.api()), xm, wm, labels, []int{0, c / 3, c/3 + 1, c}, false)
		checkBF16(t, &st, at+" sharded", sl, sdx, sdw, ref.loss, ref.dx, ref.dw, 0)

		p := &loss.PartialFC{Head: bf16(sp.api()), SampleRate: 1}
		pdx, pdw := nanMatrix(n, d), nanMatrix(c, d)
		pl, err := p.Loss(xm, wm, labels, &pdx, &pdw)
		require.NoError(t, err, at)
		checkBF16(t, &st, at+" partialfc", pl, pdx.Data, pdw.Data, ref.loss, ref.dx, ref.dw, 0)
	}
	st.log(t, "float64 reference")
}

func randNorm(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// TestBFloat16PartialFC: with BFloat16, PartialFC at a sampling rate below
// 1 gives bitwise its Head's result on the sampled classes. (A
// ShardedHead's shards are not bitwise the head, in either precision: their
// tiles differ. In BFloat16 a last-bit difference of a gradient element can
// move its bf16 rounding by 2⁻⁸, so the shards are checked against the
// float64 references above instead of against the head.)
func TestBFloat16PartialFC(t *testing.T) {
	forEachLevelAndPath(t, forEachBF16Driver(testBFloat16PartialFC))
}

func testBFloat16PartialFC(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 2))
	n, c, d := 24, 500, 40
	x, w := matOf(n, d, to32(randNorm(r, n*d))), matOf(c, d, to32(randNorm(r, c*d)))
	labels := drawLabels(r, n, c)
	for name, mk := range allHeads() {
		p := &loss.PartialFC{Head: bf16(mk()), SampleRate: 0.3, Seed: 3}
		dx, dw := filled(n, d, 0), filled(c, d, 0)
		l, err := p.Loss(x, w, labels, &dx, &dw)
		require.NoError(t, err)
		s := p.Sampled()
		wS, labS := pfcGather(w, s, 1), pfcRemap(t, labels, s)
		rdx, rdw := filled(n, d, 0), filled(len(s), d, 0)
		rl, err := bf16(mk()).Loss(x, wS, labS, &rdx, &rdw)
		require.NoError(t, err)
		require.Equal(t, math.Float32bits(rl), math.Float32bits(l), "%s: PartialFC loss", name)
		pfcRequireBits(t, rdx.Data, dx.Data, "%s: PartialFC dx", name)
		pfcRequireBits(t, rdw.Data, pfcGather(dw, s, 1).Data, "%s: PartialFC dw", name)
	}
}

// TestBFloat16NoAllocsDeterministic: BFloat16 heads allocate nothing in
// steady state and give the same bits for any GOMAXPROCS.
func TestBFloat16NoAllocsDeterministic(t *testing.T) {
	forEachLevelAndPath(t, forEachBF16Driver(testBFloat16NoAllocsDeterministic))
}

func testBFloat16NoAllocsDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 3))
	n, c, d := 70, 1100, 33 // 70 rows: two row chunks; 1100 classes: three tiles, three shards
	x, w := matOf(n, d, to32(randNorm(r, n*d))), matOf(c, d, to32(randNorm(r, c*d)))
	labels := drawLabels(r, n, c)
	heads := allHeads()
	for _, name := range []string{"arcface", "combined", "sphere", "large"} { // every row/column-scale path
		mk := heads[name]
		h := bf16(mk())
		dx, dw := filled(n, d, 0), filled(c, d, 0)
		_, err := h.Loss(x, w, labels, &dx, &dw)
		require.NoError(t, err)
		require.Zero(t, testing.AllocsPerRun(3, func() { _, _ = h.Loss(x, w, labels, &dx, &dw) }), "%s: allocations", name)
		var ref []float32
		for _, procs := range []int{1, 3} {
			old := runtime.GOMAXPROCS(procs)
			l, err := h.Loss(x, w, labels, &dx, &dw)
			runtime.GOMAXPROCS(old)
			require.NoError(t, err)
			got := append(append([]float32{l}, dx.Data...), dw.Data...)
			if ref == nil {
				ref = got
				continue
			}
			for k := range got {
				if math.Float32bits(got[k]) != math.Float32bits(ref[k]) {
					t.Fatalf("%s: GOMAXPROCS=%d differs from 1 at output %d", name, procs, k)
				}
			}
		}
	}
}

// TestPrecisionValidate: an unknown Precision is an ErrParam error from
// Validate and Loss, with the outputs untouched.
func TestPrecisionValidate(t *testing.T) {
	h := loss.ArcFace(64, 0.5)
	h.Precision = 7
	require.True(t, errors.Is(h.Validate(), loss.ErrParam))
	x, w := filled(2, 3, 1), filled(4, 3, 1)
	dx := filled(2, 3, 5)
	_, err := h.Loss(x, w, []int32{0, 1}, &dx, nil)
	require.ErrorIs(t, err, loss.ErrParam)
	require.Equal(t, filled(2, 3, 5).Data, dx.Data)
	require.Equal(t, "bfloat16", loss.BFloat16.String())
	require.Equal(t, "float32", loss.Float32.String())
	t.Logf("BFloat16Native at %s: %v", loss.Backend(), loss.BFloat16Native())
}
