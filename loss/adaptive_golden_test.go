package loss_test

// The adaptive heads (AdaFace, MagFace, ElasticArcFace/CosFace,
// CurricularFace) against testdata/golden_adaptive.json, computed by
// verbatim copies of the authors' heads in float64 autograd
// (testdata/adaptive_golden.py), through every entry: Loss,
// LossFromCosinesNorms (and LossFromCosines where the kind allows it),
// PartialFC{SampleRate: 1} and 2- and 3-shard ShardedHeads, at every level
// and on both tile paths. Tolerances (issue 17): loss
// |Δ|/max(1,|l|) ≤ 1e-4; gradients max|Δ| ≤ 1e-3·max|g|; state and margins
// ≤ 1e-5 relative.

import (
	"errors"
	"fmt"
	"math"
	"testing"

	. "github.com/marginloss/marginloss/loss"
)

type adaptiveState struct {
	BatchMean float64 `json:"batch_mean"`
	BatchStd  float64 `json:"batch_std"`
	T         float64 `json:"t"`
	Calls     uint64  `json:"calls"`
}

type adaptiveStep struct {
	X      [][]float64 `json:"x"`
	W      [][]float64 `json:"w"`
	Cos    [][]float64 `json:"cos"`
	Norms  []float64   `json:"norms"`
	Labels []int32     `json:"labels"`
}

type adaptiveOut struct {
	Loss    float64       `json:"loss"`
	DX      [][]float64   `json:"dx"`
	DW      [][]float64   `json:"dw"`
	DCos    [][]float64   `json:"dcos"`
	DNorms  []float64     `json:"dnorms"`
	State   adaptiveState `json:"state"`
	Margins []float64     `json:"margins"`
}

type adaptiveCase struct {
	Name      string             `json:"name"`
	Kind      string             `json:"kind"`
	Entry     string             `json:"entry"`
	Params    map[string]float64 `json:"params"`
	Steps     []adaptiveStep     `json:"steps"`
	Outs      []adaptiveOut      `json:"outs"`
	K         int                `json:"K"`
	Smoothing float64            `json:"smoothing"`
	Sum       bool               `json:"sum"`
	Easy      *bool              `json:"easy"`
	Plus      bool               `json:"plus"`
	Seed      uint64             `json:"seed"`
	Margins   [][]float64        `json:"margins"`
	State0    adaptiveState      `json:"state0"`
}

func loadAdaptiveGoldens(t *testing.T) []adaptiveCase {
	t.Helper()
	var doc struct {
		Cases []adaptiveCase `json:"cases"`
	}
	loadGolden(t, "golden_adaptive.json", &doc)
	if len(doc.Cases) < 50 {
		t.Fatalf("golden_adaptive.json has %d cases", len(doc.Cases))
	}
	return doc.Cases
}

// head builds the case's head (a fresh one, with the case's initial state).
func (c *adaptiveCase) head(t *testing.T) *MarginSoftmax {
	t.Helper()
	p := func(k string) float32 {
		v, ok := c.Params[k]
		if !ok {
			t.Fatalf("%s: no parameter %q", c.Name, k)
		}
		return float32(v)
	}
	var l *MarginSoftmax
	switch c.Kind {
	case "adaface":
		l = AdaFace(p("s"), p("m"), p("h"), p("t_alpha"))
	case "magface":
		l = MagFace(p("s"), p("la"), p("ua"), p("lm"), p("um"), p("lambda_g"))
	case "elasticarc":
		l = ElasticArcFace(p("s"), p("m"), p("std"))
	case "elasticcos":
		l = ElasticCosFace(p("s"), p("m"), p("std"))
	case "curricular":
		l = CurricularFace(p("s"), p("m"), p("alpha"))
	default:
		t.Fatalf("unknown kind %q", c.Kind)
	}
	l.SubCenters = c.K
	l.LabelSmoothing = float32(c.Smoothing)
	if c.Sum {
		l.Reduction = Sum
	}
	if c.Easy != nil {
		l.EasyMargin = *c.Easy
	}
	l.ElasticPlus, l.Seed = c.Plus, c.Seed
	l.TileBudget = tileBudget
	st := AdaptiveState{BatchMean: float32(c.State0.BatchMean), BatchStd: float32(c.State0.BatchStd),
		T: float32(c.State0.T), Calls: c.State0.Calls}
	if err := l.SetState(st); err != nil {
		t.Fatal(err)
	}
	return l
}

// stepMargins sets Margins for step s (explicit draws), or leaves them nil.
func (c *adaptiveCase) stepMargins(l *MarginSoftmax, s int) {
	l.Margins = nil
	if c.Margins != nil {
		l.Margins = adaF32(c.Margins[s])
	}
}

func adaF32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func adaMat(rows [][]float64) Matrix {
	m := Matrix{Rows: len(rows)}
	if len(rows) > 0 {
		m.Cols = len(rows[0])
	}
	m.Data = make([]float32, 0, m.Rows*m.Cols)
	for _, r := range rows {
		m.Data = append(m.Data, adaF32(r)...)
	}
	return m
}

// checkLoss, checkGrad and checkRel apply the tolerances.
func checkAdaLoss(t *testing.T, what string, got float32, want float64) {
	t.Helper()
	if d := math.Abs(float64(got)-want) / math.Max(1, math.Abs(want)); !(d <= 1e-4) {
		t.Errorf("%s: loss %v, want %v (rel %.3g)", what, got, want, d)
	}
}

func checkAdaGrad(t *testing.T, what string, got []float32, want [][]float64) {
	t.Helper()
	var flat []float64
	for _, r := range want {
		flat = append(flat, r...)
	}
	checkAdaVec(t, what, got, flat)
}

func checkAdaVec(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var gmax, dmax float64
	at := -1
	for i, w := range want {
		gmax = math.Max(gmax, math.Abs(w))
		if d := math.Abs(float64(got[i]) - w); !(d <= dmax) {
			dmax, at = d, i
		}
	}
	if !(dmax <= 1e-3*gmax) {
		t.Errorf("%s: max|Δ| = %.3g at %d (got %v, want %v), bound 1e-3·%.3g", what, dmax, at, got[at], want[at], gmax)
	}
}

func checkAdaRel(t *testing.T, what string, got float64, want float64) {
	t.Helper()
	if d := math.Abs(got-want) / math.Max(math.Abs(want), 1e-30); !(d <= 1e-5) && !(got == want) {
		t.Errorf("%s: %v, want %v (rel %.3g)", what, got, want, d)
	}
}

func checkAdaState(t *testing.T, what string, l *MarginSoftmax, st AdaptiveState, o adaptiveOut) {
	t.Helper()
	checkAdaRel(t, what+" BatchMean", float64(st.BatchMean), o.State.BatchMean)
	checkAdaRel(t, what+" BatchStd", float64(st.BatchStd), o.State.BatchStd)
	checkAdaRel(t, what+" T", float64(st.T), o.State.T)
	if st.Calls != o.State.Calls {
		t.Errorf("%s: Calls %d, want %d", what, st.Calls, o.State.Calls)
	}
	if l == nil {
		return
	}
	got := l.AppendMargins(nil)
	if len(got) != len(o.Margins) {
		t.Fatalf("%s: %d margins, want %d", what, len(got), len(o.Margins))
	}
	for i, m := range o.Margins {
		if d := math.Abs(float64(got[i]) - m); !(d <= 1e-5*math.Max(math.Abs(m), 1e-2)) {
			t.Errorf("%s: margin %d = %v, want %v", what, i, got[i], m)
		}
	}
}

func TestAdaptiveGoldenLoss(t *testing.T) {
	cases := loadAdaptiveGoldens(t)
	forEachLevelAndPath(t, func(t *testing.T) {
		for _, c := range cases {
			if c.Entry != "loss" {
				continue
			}
			l := c.head(t)
			for s, step := range c.Steps {
				what := fmt.Sprintf("%s step %d", c.Name, s)
				c.stepMargins(l, s)
				x, w := adaMat(step.X), adaMat(step.W)
				dx := Matrix{Rows: x.Rows, Cols: x.Cols, Data: make([]float32, len(x.Data))}
				dw := Matrix{Rows: w.Rows, Cols: w.Cols, Data: make([]float32, len(w.Data))}
				loss, err := l.Loss(x, w, step.Labels, &dx, &dw)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				o := c.Outs[s]
				checkAdaLoss(t, what, loss, o.Loss)
				checkAdaGrad(t, what+" dx", dx.Data, o.DX)
				checkAdaGrad(t, what+" dw", dw.Data, o.DW)
				checkAdaState(t, what, l, l.State(), o)
			}
		}
	})
}

var _ = errors.Is

func TestAdaptiveGoldenCosines(t *testing.T) {
	cases := loadAdaptiveGoldens(t)
	forEachLevel(t, func(t *testing.T) {
		for _, c := range cases {
			if c.Entry != "cosines" {
				continue
			}
			for _, plain := range []bool{false, true} {
				if plain && (c.Kind == "adaface" || c.Kind == "magface") {
					l := c.head(t)
					step := c.Steps[0]
					cos := adaMat(step.Cos)
					if _, err := l.LossFromCosines(cos, step.Labels, nil); !errors.Is(err, ErrParam) {
						t.Errorf("%s: LossFromCosines gave %v, want ErrParam (needs the norms)", c.Name, err)
					}
					continue
				}
				l := c.head(t)
				for s, step := range c.Steps {
					what := fmt.Sprintf("%s step %d plain=%v", c.Name, s, plain)
					c.stepMargins(l, s)
					cos := adaMat(step.Cos)
					dcos := Matrix{Rows: cos.Rows, Cols: cos.Cols, Data: make([]float32, len(cos.Data))}
					dn := make([]float32, cos.Rows)
					var loss float32
					var err error
					if plain {
						loss, err = l.LossFromCosines(cos, step.Labels, &dcos)
					} else {
						loss, err = l.LossFromCosinesNorms(cos, adaF32(step.Norms), step.Labels, &dcos, dn)
					}
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					o := c.Outs[s]
					checkAdaLoss(t, what, loss, o.Loss)
					checkAdaGrad(t, what+" dcos", dcos.Data, o.DCos)
					if !plain {
						checkAdaVec(t, what+" dnorms", dn, o.DNorms)
					}
					checkAdaState(t, what, l, l.State(), o)
				}
			}
		}
	})
}

func TestAdaptiveGoldenPartialFC(t *testing.T) {
	cases := loadAdaptiveGoldens(t)
	forEachLevel(t, func(t *testing.T) {
		for _, c := range cases {
			if c.Entry != "loss" {
				continue
			}
			l := c.head(t)
			p := &PartialFC{Head: l, SampleRate: 1, Seed: 3}
			for s, step := range c.Steps {
				what := fmt.Sprintf("%s step %d", c.Name, s)
				c.stepMargins(l, s)
				x, w := adaMat(step.X), adaMat(step.W)
				dx := Matrix{Rows: x.Rows, Cols: x.Cols, Data: make([]float32, len(x.Data))}
				dw := Matrix{Rows: w.Rows, Cols: w.Cols, Data: make([]float32, len(w.Data))}
				loss, err := p.Loss(x, w, step.Labels, &dx, &dw)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				o := c.Outs[s]
				checkAdaLoss(t, what, loss, o.Loss)
				checkAdaGrad(t, what+" dx", dx.Data, o.DX)
				checkAdaGrad(t, what+" dw", dw.Data, o.DW)
				checkAdaState(t, what, l, l.State(), o)
			}
		}
	})
}

// shardedStep runs one step of P in-process shards sharing Head l:
// Prepare, the SUM of Targets, Forward, MergeShardStats, Backward, the SUM
// of the partial dx. It returns the loss, dx and dw (the shards' rows in
// order).
func shardedStep(t *testing.T, shards []*ShardedHead, x, w Matrix, labels []int32, k int) (float32, []float32, []float32, error) {
	t.Helper()
	p := len(shards)
	classes := w.Rows / k
	d := w.Cols
	n := x.Rows
	ws := make([]Matrix, p)
	st := make([]*ShardStats, p)
	for q := range shards {
		lo, hi := q*classes/p, (q+1)*classes/p
		ws[q] = Matrix{Rows: (hi - lo) * k, Cols: d, Data: w.Data[lo*k*d : hi*k*d]}
		shards[q].Offset, shards[q].Classes = lo, classes
		st[q] = &ShardStats{}
		if err := shards[q].Prepare(x, ws[q], labels, st[q]); err != nil {
			return 0, nil, nil, err
		}
	}
	if st[0].Targets != nil {
		sum := make([]float32, n)
		for q := range shards {
			for i, v := range st[q].Targets {
				sum[i] += v
			}
		}
		for q := range shards {
			copy(st[q].Targets, sum)
		}
	}
	for q := range shards {
		if err := shards[q].Forward(x, ws[q], labels, st[q]); err != nil {
			return 0, nil, nil, err
		}
	}
	merged := &ShardStats{}
	if err := MergeShardStats(merged, st...); err != nil {
		return 0, nil, nil, err
	}
	dx := make([]float32, n*d)
	var dw []float32
	var loss float32
	for q := range shards {
		pdx := Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
		pdw := Matrix{Rows: ws[q].Rows, Cols: d, Data: make([]float32, ws[q].Rows*d)}
		l, err := shards[q].Backward(x, ws[q], labels, merged, &pdx, &pdw)
		if err != nil {
			return 0, nil, nil, err
		}
		if q > 0 && l != loss {
			t.Errorf("shard %d loss %v, shard 0 %v", q, l, loss)
		}
		loss = l
		for i, v := range pdx.Data {
			dx[i] += v
		}
		dw = append(dw, pdw.Data...)
	}
	return loss, dx, dw, nil
}

func TestAdaptiveGoldenSharded(t *testing.T) {
	cases := loadAdaptiveGoldens(t)
	forEachLevelAndPath(t, func(t *testing.T) {
		for _, c := range cases {
			if c.Entry != "loss" {
				continue
			}
			for _, p := range []int{2, 3} {
				l := c.head(t)
				shards := make([]*ShardedHead, p)
				for q := range shards {
					shards[q] = &ShardedHead{Head: l}
				}
				for s, step := range c.Steps {
					what := fmt.Sprintf("%s P=%d step %d", c.Name, p, s)
					c.stepMargins(l, s)
					x, w := adaMat(step.X), adaMat(step.W)
					loss, dx, dw, err := shardedStep(t, shards, x, w, step.Labels, max(c.K, 1))
					if err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					o := c.Outs[s]
					checkAdaLoss(t, what, loss, o.Loss)
					checkAdaGrad(t, what+" dx", dx, o.DX)
					checkAdaGrad(t, what+" dw", dw, o.DW)
					for q, sh := range shards {
						checkAdaState(t, fmt.Sprintf("%s shard %d", what, q), nil, sh.State(), o)
					}
				}
				if l.State() != (c.head(t).State()) {
					t.Errorf("%s: the ShardedHeads changed Head's state", c.Name)
				}
			}
		}
	})
}
