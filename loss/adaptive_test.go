package loss_test

// The contracts of the adaptive heads beyond the goldens: state rules,
// errors with untouched outputs and state, N = 0 and N = 1, Margins and
// the seeded draws, ShardedHead's Targets, determinism for any GOMAXPROCS
// and zero steady-state allocations.

import (
	"errors"
	"math"
	"math/rand"
	"runtime"
	"slices"
	"testing"

	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
	"github.com/stretchr/testify/require"
)

// adaptiveHeads are the five new kinds at their paper settings (and Plus).
func adaptiveHeads() map[string]func() *loss.MarginSoftmax {
	return map[string]func() *loss.MarginSoftmax{
		"AdaFace":    func() *loss.MarginSoftmax { return loss.AdaFace(64, 0.4, 0.333, 0.01) },
		"MagFace":    func() *loss.MarginSoftmax { return loss.MagFace(64, 10, 110, 0.45, 0.8, 35) },
		"ElasticArc": func() *loss.MarginSoftmax { return loss.ElasticArcFace(64, 0.5, 0.05) },
		"ElasticCos": func() *loss.MarginSoftmax { return loss.ElasticCosFace(64, 0.35, 0.05) },
		"ElasticArcPlus": func() *loss.MarginSoftmax {
			l := loss.ElasticArcFace(64, 0.5, 0.0175)
			l.ElasticPlus = true
			return l
		},
		"Curricular": func() *loss.MarginSoftmax { return loss.CurricularFace(64, 0.5, 0.01) },
	}
}

// normedMatrix is randMatrix with row norms spread over [1, 60] (AdaFace's
// and MagFace's margins then differ per row).
func normedMatrix(r *rand.Rand, n, d int) loss.Matrix {
	m := randMatrix(r, n, d)
	for i := 0; i < n; i++ {
		row := m.Data[i*d : (i+1)*d]
		var s float64
		for _, v := range row {
			s += float64(v) * float64(v)
		}
		f := float32((1 + 59*r.Float64()) / math.Sqrt(s))
		for k := range row {
			row[k] *= f
		}
	}
	return m
}

func TestAdaptiveStateRules(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	n, c, d := 12, 40, 16
	x, w := normedMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	for name, mk := range adaptiveHeads() {
		l := mk()
		require.NoError(t, l.Validate(), name)
		st0 := l.State()
		// A call without gradients is a training step too.
		_, err := l.Loss(x, w, labels, nil, nil)
		require.NoError(t, err, name)
		st1 := l.State()
		switch name {
		case "AdaFace":
			require.NotEqual(t, st0.BatchMean, st1.BatchMean, name)
			require.Equal(t, loss.AdaptiveState{BatchMean: 20, BatchStd: 100}, st0)
		case "Curricular":
			require.NotEqual(t, st0.T, st1.T, name)
		case "MagFace":
			require.Equal(t, st0, st1, name)
		default:
			require.Equal(t, st0.Calls+1, st1.Calls, name)
		}
		// Errors leave the outputs and the state untouched.
		bad := loss.Matrix{Rows: n, Cols: d, Data: slices.Clone(x.Data)}
		bad.Data[5] = float32(math.NaN())
		dx, dw := filled(n, d, 7), filled(c, d, 7)
		_, err = l.Loss(bad, w, labels, &dx, &dw)
		require.ErrorIs(t, err, loss.ErrNonFinite, name)
		require.Equal(t, st1, l.State(), name)
		require.Equal(t, filled(n, d, 7).Data, dx.Data, name)
		require.Equal(t, filled(c, d, 7).Data, dw.Data, name)
		badLab := slices.Clone(labels)
		badLab[3] = int32(c)
		_, err = l.Loss(x, w, badLab, &dx, &dw)
		require.ErrorIs(t, err, loss.ErrLabel, name)
		require.Equal(t, st1, l.State(), name)
		// N = 0: 0, state as it is.
		l0, err := l.Loss(loss.Matrix{Cols: d}, w, nil, nil, nil)
		require.NoError(t, err, name)
		require.Zero(t, l0)
		require.Equal(t, st1, l.State(), name)
		// SetState round trip and its checks.
		require.NoError(t, l.SetState(st0))
		require.Equal(t, st0, l.State())
		for _, b := range []loss.AdaptiveState{{BatchMean: float32(math.NaN())}, {BatchStd: -1}, {T: 1.5}, {T: float32(math.Inf(1))}} {
			require.ErrorIs(t, l.SetState(b), loss.ErrParam, name)
		}
		require.Equal(t, st0, l.State())
	}
}

func TestAdaFaceOneRow(t *testing.T) {
	r := rand.New(rand.NewSource(18))
	x, w := normedMatrix(r, 1, 8), randMatrix(r, 5, 8)
	l := loss.AdaFace(64, 0.4, 0.333, 0.01)
	dx := filled(1, 8, 3)
	_, err := l.Loss(x, w, []int32{2}, &dx, nil)
	require.ErrorIs(t, err, loss.ErrShape)
	require.Equal(t, loss.AdaptiveState{BatchMean: 20, BatchStd: 100}, l.State())
	require.Equal(t, filled(1, 8, 3).Data, dx.Data)
	cos := loss.Matrix{Rows: 1, Cols: 5, Data: []float32{0.1, 0.2, 0.3, -0.4, 0.5}}
	_, err = l.LossFromCosinesNorms(cos, []float32{3}, []int32{1}, nil, nil)
	require.ErrorIs(t, err, loss.ErrShape)
	sh := &loss.ShardedHead{Head: l, Classes: 5}
	require.ErrorIs(t, sh.Forward(x, w, []int32{2}, &loss.ShardStats{}), loss.ErrShape)
}

func TestAdaptiveParamErrors(t *testing.T) {
	nan := float32(math.NaN())
	for name, l := range map[string]*loss.MarginSoftmax{
		"AdaFace s":       loss.AdaFace(0, 0.4, 0.333, 0.01),
		"AdaFace m":       loss.AdaFace(64, 2, 0.333, 0.01),
		"AdaFace h":       loss.AdaFace(64, 0.4, -1, 0.01),
		"AdaFace alpha":   loss.AdaFace(64, 0.4, 0.333, 1.5),
		"MagFace la":      loss.MagFace(64, 0, 110, 0.45, 0.8, 35),
		"MagFace ua":      loss.MagFace(64, 10, 10, 0.45, 0.8, 35),
		"MagFace um":      loss.MagFace(64, 10, 110, 0.45, 1.6, 35),
		"MagFace lm>um":   loss.MagFace(64, 10, 110, 0.8, 0.45, 35),
		"MagFace lambda":  loss.MagFace(64, 10, 110, 0.45, 0.8, -1),
		"Elastic std":     loss.ElasticArcFace(64, 0.5, -0.1),
		"Elastic m":       loss.ElasticCosFace(64, nan, 0.1),
		"Curricular m":    loss.CurricularFace(64, -0.1, 0.01),
		"Curricular alph": loss.CurricularFace(64, 0.5, nan),
	} {
		require.ErrorIs(t, l.Validate(), loss.ErrParam, name)
	}
	// LossFromCosines without the norms.
	cos := loss.Matrix{Rows: 2, Cols: 3, Data: []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}}
	for _, l := range []*loss.MarginSoftmax{loss.AdaFace(64, 0.4, 0.333, 0.01), loss.MagFace(64, 10, 110, 0.45, 0.8, 35)} {
		_, err := l.LossFromCosines(cos, []int32{0, 1}, nil)
		require.ErrorIs(t, err, loss.ErrParam)
		_, err = l.LossFromCosinesNorms(cos, []float32{1}, []int32{0, 1}, nil, nil)
		require.ErrorIs(t, err, loss.ErrShape)
		_, err = l.LossFromCosinesNorms(cos, []float32{1, -1}, []int32{0, 1}, nil, nil)
		require.ErrorIs(t, err, loss.ErrParam)
		_, err = l.LossFromCosinesNorms(cos, []float32{1, float32(math.Inf(1))}, []int32{0, 1}, nil, nil)
		require.ErrorIs(t, err, loss.ErrNonFinite)
		_, err = l.LossFromCosinesNorms(cos, []float32{1, 2}, []int32{0, 1}, nil, make([]float32, 3))
		require.ErrorIs(t, err, loss.ErrShape)
	}
}

func TestElasticDraws(t *testing.T) {
	r := rand.New(rand.NewSource(19))
	n, c, d := 9, 30, 8
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	l := loss.ElasticArcFace(64, 0.5, 0.05)
	l.Seed = 42
	_, err := l.Loss(x, w, labels, nil, nil)
	require.NoError(t, err)
	first := l.AppendMargins(nil)
	require.Len(t, first, n)
	require.Equal(t, uint64(1), l.State().Calls)
	_, err = l.Loss(x, w, labels, nil, nil)
	require.NoError(t, err)
	second := l.AppendMargins(nil)
	require.NotEqual(t, first, second, "a fresh draw every call")
	// Replaying Calls replays the draws; another seed draws others.
	require.NoError(t, l.SetState(loss.AdaptiveState{Calls: 0}))
	_, err = l.Loss(x, w, labels, nil, nil)
	require.NoError(t, err)
	require.Equal(t, first, l.AppendMargins(nil))
	// Row i's draw depends on (Seed, k, i) only: a prefix of the batch
	// draws a prefix of the margins.
	require.NoError(t, l.SetState(loss.AdaptiveState{Calls: 0}))
	_, err = l.Loss(loss.Matrix{Rows: 4, Cols: d, Data: x.Data[:4*d]}, w, labels[:4], nil, nil)
	require.NoError(t, err)
	require.Equal(t, first[:4], l.AppendMargins(nil))
	// Margins: used as given, Calls unchanged; wrong length or NaN fail.
	st := l.State()
	l.Margins = []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
	_, err = l.Loss(x, w, labels, nil, nil)
	require.NoError(t, err)
	require.Equal(t, l.Margins, l.AppendMargins(nil))
	require.Equal(t, st, l.State())
	l.Margins = l.Margins[:8]
	_, err = l.Loss(x, w, labels, nil, nil)
	require.ErrorIs(t, err, loss.ErrShape)
	l.Margins = append(slices.Clone(l.Margins), float32(math.NaN()))
	_, err = l.Loss(x, w, labels, nil, nil)
	require.ErrorIs(t, err, loss.ErrNonFinite)
	require.Equal(t, st, l.State())
	// Plus: the draws sorted ascending, row i gets sorted[π(i)], π the rows
	// by descending target cosine.
	l.Margins = []float32{0.5, 0.3, 0.7}
	l.ElasticPlus = true
	cos := loss.Matrix{Rows: 3, Cols: 2, Data: []float32{0.9, 0.1, 0.2, 0.5, 0.6, 0.3}}
	_, err = l.LossFromCosines(cos, []int32{0, 0, 0}, nil)
	require.NoError(t, err)
	// targets 0.9, 0.2, 0.6: π = (0, 2, 1); sorted (0.3, 0.5, 0.7)
	require.Equal(t, []float32{0.3, 0.7, 0.5}, l.AppendMargins(nil))
}

func TestShardedNeedsTargets(t *testing.T) {
	r := rand.New(rand.NewSource(20))
	n, c, d := 6, 10, 8
	x, w := randMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	l := loss.CurricularFace(64, 0.5, 0.01)
	require.True(t, l.NeedsTargets())
	require.False(t, loss.AdaFace(64, 0.4, 0.333, 0.01).NeedsTargets())
	sh := &loss.ShardedHead{Head: l, Offset: 0, Classes: 2 * c}
	st := &loss.ShardStats{}
	require.ErrorIs(t, sh.Forward(x, w, labels, st), loss.ErrParam)
	require.NoError(t, sh.Prepare(x, w, labels, st))
	require.Len(t, st.Targets, n)
	st.Targets[0] += 0.01 // not the owner's value
	for i, y := range labels {
		if y < int32(c) {
			st.Targets[i] += 0.01
			break
		}
	}
	require.ErrorIs(t, sh.Forward(x, w, labels, st), loss.ErrParam)
	require.Equal(t, loss.AdaptiveState{}, sh.State())
	a := &loss.ShardedHead{Head: loss.AdaFace(64, 0.4, 0.333, 0.01), Classes: c}
	st2 := &loss.ShardStats{Targets: []float32{1}}
	require.NoError(t, a.Prepare(x, w, labels, st2))
	require.Nil(t, st2.Targets)
}

func TestAdaptiveDeterministicAcrossGOMAXPROCS(t *testing.T) {
	forEachLevelAndPath(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(21))
		n, c, d := 70, 2100, 33
		x, w := normedMatrix(r, n, d), randMatrix(r, c, d)
		labels := randLabels(r, n, c)
		for name, mk := range adaptiveHeads() {
			var ref []float32
			for _, procs := range []int{1, 2, 3, 8} {
				old := runtime.GOMAXPROCS(procs)
				l := mk()
				l.TileBudget = tileBudget
				l.SubCenters = 1
				dx, dw := filled(n, d, 0), filled(c, d, 0)
				v, err := l.Loss(x, w, labels, &dx, &dw)
				runtime.GOMAXPROCS(old)
				require.NoError(t, err, name)
				got := append(append([]float32{v}, dx.Data...), dw.Data...)
				got = append(got, l.AppendMargins(nil)...)
				if ref == nil {
					ref = got
					continue
				}
				for k := range got {
					if math.Float32bits(got[k]) != math.Float32bits(ref[k]) {
						t.Fatalf("%s: GOMAXPROCS=%d differs from 1 at output %d: %v vs %v", name, procs, k, got[k], ref[k])
					}
				}
			}
		}
	})
}

func TestAdaptiveNoAllocs(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(22))
		n, c, d := 64, 1000, 32
		x, w := normedMatrix(r, n, d), randMatrix(r, c, d)
		labels := randLabels(r, n, c)
		cos := randMatrix(r, n, c)
		for i := range cos.Data {
			cos.Data[i] = float32(math.Tanh(float64(cos.Data[i])))
		}
		norms := make([]float32, n)
		for i := range norms {
			norms[i] = float32(1 + 50*r.Float64())
		}
		for name, mk := range adaptiveHeads() {
			l := mk()
			dx, dw, dcos := filled(n, d, 0), filled(c, d, 0), filled(n, c, 0)
			dn := make([]float32, n)
			require.Zero(t, testing.AllocsPerRun(10, func() { _, _ = l.Loss(x, w, labels, &dx, &dw) }), name)
			require.Zero(t, testing.AllocsPerRun(10, func() { _, _ = l.LossFromCosinesNorms(cos, norms, labels, &dcos, dn) }), name)
			sh := &loss.ShardedHead{Head: l, Classes: c}
			st := &loss.ShardStats{}
			step := func() {
				if err := sh.Prepare(x, w, labels, st); err != nil {
					panic(err)
				}
				if err := sh.Forward(x, w, labels, st); err != nil {
					panic(err)
				}
				if _, err := sh.Backward(x, w, labels, st, &dx, &dw); err != nil {
					panic(err)
				}
			}
			step()
			require.Zero(t, testing.AllocsPerRun(10, step), name+" sharded")
		}
	})
}

var _ = errors.Is

// With sampling (PartialFC, a ShardedHead's SampleRate) the adaptive heads
// see the positives always: Prepare's targets (from the whole shard) equal
// Forward's (from the sampled rows) bit for bit, and a sampled
// CurricularFace or ElasticFace+ step runs on 2 shards.
func TestAdaptiveSampled(t *testing.T) {
	r := rand.New(rand.NewSource(23))
	n, c, d := 16, 60, 12
	x, w := normedMatrix(r, n, d), randMatrix(r, c, d)
	labels := randLabels(r, n, c)
	for _, name := range []string{"Curricular", "ElasticArcPlus", "AdaFace", "MagFace"} {
		for _, k := range []int{1, 2} {
			mk := adaptiveHeads()[name]
			head := mk()
			head.SubCenters = k
			wk := randMatrix(r, c*k, d)
			pfc := &loss.PartialFC{Head: head, SampleRate: 0.3, Seed: 5}
			dx, dw := filled(n, d, 0), filled(c*k, d, 0)
			_, err := pfc.Loss(x, wk, labels, &dx, &dw)
			require.NoError(t, err, name)
			head2 := mk()
			head2.SubCenters = k
			shards := []*loss.ShardedHead{{Head: head2, SampleRate: 0.5, Seed: 9}, {Head: head2, SampleRate: 0.5, Seed: 10}}
			for step := 0; step < 2; step++ {
				_, gdx, _, err := shardedStep(t, shards, x, wk, labels, k)
				require.NoError(t, err, name)
				require.Len(t, gdx, n*d)
				require.Equal(t, shards[0].State(), shards[1].State(), name)
			}
		}
	}
	_ = w
}

// LossFromCosinesNorms takes nil norms for the kinds that ignore them.
func TestAdaptiveNilNorms(t *testing.T) {
	cos := loss.Matrix{Rows: 2, Cols: 3, Data: []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6}}
	for _, l := range []*loss.MarginSoftmax{loss.CurricularFace(16, 0.5, 0.1), loss.ArcFace(16, 0.5)} {
		st := l.State()
		a, err := l.LossFromCosinesNorms(cos, nil, []int32{0, 1}, nil, nil)
		require.NoError(t, err)
		require.NoError(t, l.SetState(st)) // CurricularFace's T moved
		b, err := l.LossFromCosines(cos, []int32{0, 1}, nil)
		require.NoError(t, err)
		require.Equal(t, a, b)
	}
	_, err := loss.AdaFace(16, 0.4, 0.333, 0.01).LossFromCosinesNorms(cos, nil, []int32{0, 1}, nil, nil)
	require.ErrorIs(t, err, loss.ErrShape)
}

// TestAdaptiveFused: with a fused W step (optim) the adaptive heads give
// bit for bit the loss, dx, W and state of Loss followed by the step, over
// three steps (the state moving), at every level and tile path.
func TestAdaptiveFused(t *testing.T) {
	forEachLevelAndPath(t, func(t *testing.T) {
		r := rand.New(rand.NewSource(24))
		const n, c, d = 19, 700, 16
		x := normedMatrix(r, n, d)
		labels := randLabels(r, n, c)
		for name, mk := range adaptiveHeads() {
			w0 := randMatrix(r, c, d)
			for _, o := range fusedOpts() {
				sep, fus := mk(), mk()
				sep.TileBudget, fus.TileBudget = tileBudget, tileBudget
				var stS, stF optim.State
				fus.FusedStep = o.fused(&stF)
				wS, wF := slices.Clone(w0.Data), slices.Clone(w0.Data)
				dw := make([]float32, len(w0.Data))
				for step := 0; step < 3; step++ {
					dxS, dxF := make([]float32, n*d), make([]float32, n*d)
					ls, err := sep.Loss(x, loss.Matrix{Rows: c, Cols: d, Data: wS}, labels,
						&loss.Matrix{Rows: n, Cols: d, Data: dxS}, &loss.Matrix{Rows: c, Cols: d, Data: dw})
					require.NoError(t, err)
					require.NoError(t, o.step(wS, dw, &stS))
					lf, err := fus.Loss(x, loss.Matrix{Rows: c, Cols: d, Data: wF}, labels,
						&loss.Matrix{Rows: n, Cols: d, Data: dxF}, nil)
					require.NoError(t, err)
					require.Equal(t, math.Float32bits(ls), math.Float32bits(lf), "%s %s step %d", name, o.name, step)
					fusedBits(t, name+" "+o.name+" dx", dxF, dxS)
					fusedBits(t, name+" "+o.name+" W", wF, wS)
					require.Equal(t, sep.State(), fus.State(), name)
				}
			}
		}
	})
}
