package loss_test

// The adaptive heads (AdaFace, MagFace, ElasticArcFace/CosFace and their
// Plus variant, CurricularFace) with Precision = BFloat16, against a
// float64 reference of the same loss, within the bounds of precision_test.go
// (loss |Δ| ≤ bf16LossTol·max(1, |L|), gradients ‖Δ‖/‖g‖ ≤ bf16GradTol),
// through Loss, PartialFC{SampleRate: 1} and a 2-shard ShardedHead, at every
// level, on both tile paths and with every bf16 driver; their state and
// margins; bitwise determinism for any GOMAXPROCS and zero steady-state
// allocations.
//
// adaRef64 is the float64 reference, written from ADAPTIVE.md's formulas
// (not from the code under test) and checked first against the PyTorch
// float64 goldens of testdata/golden_adaptive.json (TestAdaptiveRef64Golden),
// so that the bf16 shapes, too large for committed goldens, have a
// reference of known provenance.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// adaSpec is an adaptive head's configuration, for the reference and the
// API alike.
type adaSpec struct {
	kind                string // adaface, magface, elasticarc, elasticcos, curricular
	s, m                float64
	h, alpha            float64 // AdaFace h and t_alpha; CurricularFace alpha
	la, ua, lm, um, lam float64 // MagFace
	std                 float64 // ElasticFace
	hard                bool    // MagFace without EasyMargin
	plus                bool    // ElasticPlus
	k                   int     // SubCenters (0 = 1)
	eps                 float64 // LabelSmoothing (a float32 value)
	sum                 bool    // Reduction Sum
	state0              loss.AdaptiveState
}

func (sp adaSpec) String() string {
	return fmt.Sprintf("%s(plus=%v hard=%v K=%d ε=%g sum=%v)", sp.kind, sp.plus, sp.hard, max(sp.k, 1), sp.eps, sp.sum)
}

// api builds the head (with the spec's state and the tests' TileBudget).
func (sp adaSpec) api() *loss.MarginSoftmax {
	f := func(v float64) float32 { return float32(v) }
	var l *loss.MarginSoftmax
	switch sp.kind {
	case "adaface":
		l = loss.AdaFace(f(sp.s), f(sp.m), f(sp.h), f(sp.alpha))
	case "magface":
		l = loss.MagFace(f(sp.s), f(sp.la), f(sp.ua), f(sp.lm), f(sp.um), f(sp.lam))
		l.EasyMargin = !sp.hard
	case "elasticarc":
		l = loss.ElasticArcFace(f(sp.s), f(sp.m), f(sp.std))
	case "elasticcos":
		l = loss.ElasticCosFace(f(sp.s), f(sp.m), f(sp.std))
	case "curricular":
		l = loss.CurricularFace(f(sp.s), f(sp.m), f(sp.alpha))
	default:
		panic("adaSpec: unknown kind " + sp.kind)
	}
	l.ElasticPlus = sp.plus
	l.SubCenters = sp.k
	l.LabelSmoothing = f(sp.eps)
	if sp.sum {
		l.Reduction = loss.Sum
	}
	l.TileBudget = tileBudget
	if err := l.SetState(sp.state0); err != nil {
		panic(err)
	}
	return l
}

// adaOut64 is the reference's result of one call.
type adaOut64 struct {
	loss    float64
	dcos    []float64 // N×(C·K): ∂L/∂u, u the raw cosines
	dnorms  []float64 // ∂L/∂‖x_i‖ beyond x̂ (MagFace)
	dx, dw  []float64 // lossRef only
	state   loss.AdaptiveState
	margins []float64 // AppendMargins's quantity
}

// cosRef evaluates the head on raw cosines u (N×(C·K), class c owning the
// rows c·K … c·K+K−1) and norms, in float64. draws are ElasticFace's
// margins of the call: the draws before ElasticPlus's assignment, or the
// margins as applied when applied is set. The state after the call is
// rounded to float32 as the API's (and the authors' buffers) hold it.
func (sp adaSpec) cosRef(u, norms []float64, labels []int32, n, rows int, draws []float64, applied bool) adaOut64 {
	const e = loss.AdaFaceEps
	k := max(sp.k, 1)
	c := rows / k
	o := adaOut64{dcos: make([]float64, n*rows), dnorms: make([]float64, n), state: sp.state0}
	cc := make([]float64, n*c) // class cosines: max over K, ties to the lowest row
	arg := make([]int, n*c)
	for i := range n {
		for j := range c {
			best := 0
			g := u[i*rows+j*k : i*rows+(j+1)*k]
			for q := range g {
				if g[q] > g[best] {
					best = q
				}
			}
			cc[i*c+j], arg[i*c+j] = g[best], best
		}
	}
	t := make([]float64, n)
	for i, y := range labels {
		t[i] = cc[i*c+int(y)]
	}
	scale := 1 / float64(n)
	if sp.sum {
		scale = 1
	}
	clip := func(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

	// The call's per-row margins and state (ADAPTIVE.md 1–4).
	margins := make([]float64, n)
	var mu, sg, tNew float64
	switch sp.kind {
	case "adaface":
		var sum float64
		for _, r := range norms {
			sum += clip(r, 0.001, 100)
		}
		mean := sum / float64(n)
		var ss float64
		for _, r := range norms {
			d := clip(r, 0.001, 100) - mean
			ss += d * d
		}
		std := math.Sqrt(ss / float64(n-1))
		o.state.BatchMean = float32(sp.alpha*mean + (1-sp.alpha)*float64(sp.state0.BatchMean))
		o.state.BatchStd = float32(sp.alpha*std + (1-sp.alpha)*float64(sp.state0.BatchStd))
		mu, sg = float64(o.state.BatchMean), float64(o.state.BatchStd)
		for i, r := range norms {
			margins[i] = clip(sp.h*(clip(r, 0.001, 100)-mu)/(sg+e), -1, 1)
		}
	case "magface":
		for i, r := range norms {
			a := clip(r, sp.la, sp.ua)
			margins[i] = (sp.um-sp.lm)/(sp.ua-sp.la)*(a-sp.la) + sp.lm
		}
	case "elasticarc", "elasticcos":
		copy(margins, draws)
		if sp.plus && !applied {
			perm := make([]int, n)
			for i := range perm {
				perm[i] = i
			}
			slices.SortStableFunc(perm, func(p, q int) int {
				tp, tq := clip(t[p], -1, 1), clip(t[q], -1, 1)
				switch {
				case tp > tq:
					return -1
				case tp < tq:
					return 1
				}
				return 0
			})
			sorted := slices.Clone(draws)
			slices.Sort(sorted)
			for i, p := range perm {
				margins[i] = sorted[p]
			}
		}
	case "curricular":
		var sum float64
		for _, v := range t {
			sum += clip(v, -1, 1)
		}
		o.state.T = float32(sp.alpha*sum/float64(n) + (1-sp.alpha)*float64(sp.state0.T))
		tNew = float64(o.state.T)
	}
	switch sp.kind {
	case "adaface", "magface", "elasticarc", "elasticcos":
		o.margins = margins
	}

	z := make([]float64, c)
	dz := make([]float64, c) // ∂z_j/∂cc_j
	var total float64
	for i := range n {
		y := int(labels[i])
		row := cc[i*c : (i+1)*c]
		tc := clip(t[i], -1, 1)
		phiC := tc*math.Cos(sp.m) - math.Sqrt(1-tc*tc)*math.Sin(sp.m) // CurricularFace's mask threshold
		for j, v := range row {
			z[j], dz[j] = sp.s*clip(v, -1, 1), sp.s
			switch sp.kind {
			case "adaface":
				z[j] = sp.s * clip(v, -1+e, 1-e)
				if v < -1+e || v > 1-e {
					dz[j] = 0
				}
			case "curricular":
				if v > phiC {
					z[j], dz[j] = sp.s*v*(tNew+v), sp.s*(tNew+2*v)
				}
			}
		}
		var phi, dphi, dphidm float64
		switch sp.kind {
		case "adaface":
			cl := clip(t[i], -1+e, 1-e)
			th := math.Acos(cl) - sp.m*margins[i]
			thc := clip(th, e, math.Pi-e)
			phi = math.Cos(thc) - sp.m - sp.m*margins[i]
			if t[i] >= -1+e && t[i] <= 1-e && th >= e && th <= math.Pi-e {
				dphi = math.Sin(thc) / math.Sqrt(1-cl*cl)
			}
		case "magface":
			mi := margins[i]
			sn := math.Sqrt(1 - tc*tc)
			switch {
			case !sp.hard && tc > 0, sp.hard && tc > math.Cos(math.Pi-mi):
				phi = math.Cos(math.Acos(tc) + mi)
				dphi = math.Cos(mi) + tc*math.Sin(mi)/sn
				dphidm = -(tc*math.Sin(mi) + sn*math.Cos(mi))
			case !sp.hard:
				phi, dphi = tc, 1
			default:
				phi, dphi = tc-math.Sin(math.Pi-mi)*mi, 1
				dphidm = -(math.Sin(mi) + mi*math.Cos(mi))
			}
		case "elasticarc":
			th := math.Acos(tc)
			phi, dphi = math.Cos(th+margins[i]), math.Sin(th+margins[i])/math.Sqrt(1-tc*tc)
		case "elasticcos":
			phi, dphi = tc-margins[i], 1
		case "curricular":
			if tc > math.Cos(math.Pi-sp.m) {
				phi, dphi = phiC, math.Cos(sp.m)+tc*math.Sin(sp.m)/math.Sqrt(1-tc*tc)
			} else {
				phi, dphi = tc-math.Sin(math.Pi-sp.m)*sp.m, 1
			}
		}
		z[y], dz[y] = sp.s*phi, sp.s*dphi
		mx := math.Inf(-1)
		var zs float64
		for _, v := range z {
			mx = math.Max(mx, v)
			zs += v
		}
		var se float64
		for _, v := range z {
			se += math.Exp(v - mx)
		}
		lse := mx + math.Log(se)
		total += scale * (lse - (1-sp.eps)*z[y] - sp.eps/float64(c)*zs)
		var gy float64
		for j, v := range z {
			g := math.Exp(v-lse) - sp.eps/float64(c)
			if j == y {
				g -= 1 - sp.eps
				gy = g * scale
			}
			o.dcos[i*rows+j*k+arg[i*c+j]] = g * scale * dz[j]
		}
		if sp.kind == "magface" {
			a := clip(norms[i], sp.la, sp.ua)
			total += scale * sp.lam * (a/(sp.ua*sp.ua) + 1/a)
			if norms[i] >= sp.la && norms[i] <= sp.ua {
				kk := (sp.um - sp.lm) / (sp.ua - sp.la)
				o.dnorms[i] = gy*sp.s*dphidm*kk + scale*sp.lam*(1/(sp.ua*sp.ua)-1/(a*a))
			}
		}
	}
	o.loss = total
	return o
}

// lossRef is cosRef on x (N×D) and w ((C·K)×D) in float64, its ∂L/∂u
// chained through the normalisations (ADAPTIVE.md's common backward) and
// MagFace's ∂L/∂‖x_i‖ added along x̂_i.
//
// A zero row (of x or W) has x̂ = 0, so its cosines are 0, and no gradient
// through its normalisation (the package's convention); its norm is 0.
func (sp adaSpec) lossRef(x, w []float64, labels []int32, n, rows, d int, draws []float64, applied bool) adaOut64 {
	unit := func(v []float64) ([]float64, float64) {
		nr := math.Sqrt(dot(v, v))
		h := make([]float64, len(v))
		for k := range v {
			if nr > 0 {
				h[k] = v[k] / nr
			}
		}
		return h, nr
	}
	xh, wh := make([][]float64, n), make([][]float64, rows)
	xn, wn := make([]float64, n), make([]float64, rows)
	for i := range n {
		xh[i], xn[i] = unit(x[i*d : (i+1)*d])
	}
	for j := range rows {
		wh[j], wn[j] = unit(w[j*d : (j+1)*d])
	}
	u := make([]float64, n*rows)
	for i := range n {
		for j := range rows {
			u[i*rows+j] = dot(xh[i], wh[j])
		}
	}
	o := sp.cosRef(u, xn, labels, n, rows, draws, applied)
	o.dx, o.dw = make([]float64, n*d), make([]float64, rows*d)
	for i := range n {
		if xn[i] == 0 {
			continue
		}
		dxi := o.dx[i*d : (i+1)*d]
		radial := o.dnorms[i] * xn[i] // ∂L/∂‖x‖·x̂ = (∂L/∂‖x‖·‖x‖)·x̂/‖x‖ below
		for j := range rows {
			g := o.dcos[i*rows+j]
			if g == 0 {
				continue
			}
			uij := u[i*rows+j]
			dwj := o.dw[j*d : (j+1)*d]
			for q := range d {
				dxi[q] += g * (wh[j][q] - uij*xh[i][q]) / xn[i]
				if wn[j] > 0 {
					dwj[q] += g * (xh[i][q] - uij*wh[j][q]) / wn[j]
				}
			}
		}
		for q := range d {
			dxi[q] += radial * xh[i][q] / xn[i]
		}
	}
	return o
}

// TestAdaptiveRef64Golden: the float64 reference against every case of
// golden_adaptive.json (PyTorch float64 autograd of the authors' heads),
// step by step with the state carried, to 1e-9 (both are float64; the state
// in float32, as both round it). ElasticFace's seeded cases take the
// golden's applied margins; the cases with explicit Margins apply them (and
// ElasticPlus) themselves.
func TestAdaptiveRef64Golden(t *testing.T) {
	var doc struct {
		Cases []adaptiveCase `json:"cases"`
	}
	loadGolden(t, "golden_adaptive.json", &doc)
	require.GreaterOrEqual(t, len(doc.Cases), 50)
	near := func(what string, got, want []float64) {
		t.Helper()
		require.Len(t, got, len(want), what)
		var gmax, dmax float64
		for i := range want {
			gmax = math.Max(gmax, math.Abs(want[i]))
			dmax = math.Max(dmax, math.Abs(got[i]-want[i]))
		}
		require.LessOrEqualf(t, dmax, 1e-9*math.Max(gmax, 1e-3), "%s: max|Δ| %.3g (max|g| %.3g)", what, dmax, gmax)
	}
	flat := func(m [][]float64) []float64 {
		var f []float64
		for _, r := range m {
			f = append(f, r...)
		}
		return f
	}
	checked := 0
	for _, gc := range doc.Cases {
		p := gc.Params
		sp := adaSpec{kind: gc.Kind, s: p["s"], m: p["m"], h: p["h"], std: p["std"],
			la: p["la"], ua: p["ua"], lm: p["lm"], um: p["um"], lam: p["lambda_g"],
			plus: gc.Plus, k: gc.K, eps: gc.Smoothing, sum: gc.Sum,
			state0: loss.AdaptiveState{BatchMean: float32(gc.State0.BatchMean), BatchStd: float32(gc.State0.BatchStd),
				T: float32(gc.State0.T), Calls: gc.State0.Calls}}
		sp.alpha = p["alpha"]
		if gc.Kind == "adaface" {
			sp.alpha = p["t_alpha"]
		}
		if gc.Kind == "magface" {
			sp.hard = gc.Easy != nil && !*gc.Easy
		}
		for s, step := range gc.Steps {
			what := fmt.Sprintf("%s step %d", gc.Name, s)
			o := gc.Outs[s]
			var draws []float64
			applied := gc.Margins == nil
			if gc.Kind == "elasticarc" || gc.Kind == "elasticcos" {
				draws = o.Margins
				if !applied {
					draws = to64(adaF32(gc.Margins[s]))
				}
			}
			var r adaOut64
			if gc.Entry == "loss" {
				x, w := flat(step.X), flat(step.W)
				n, d := len(step.X), len(step.X[0])
				r = sp.lossRef(x, w, step.Labels, n, len(step.W), d, draws, applied)
				near(what+" dx", r.dx, flat(o.DX))
				near(what+" dw", r.dw, flat(o.DW))
			} else {
				cos := flat(step.Cos)
				r = sp.cosRef(cos, step.Norms, step.Labels, len(step.Cos), len(step.Cos[0]), draws, applied)
				near(what+" dcos", r.dcos, flat(o.DCos))
				if o.DNorms != nil {
					near(what+" dnorms", r.dnorms, o.DNorms)
				}
			}
			require.InDeltaf(t, o.Loss, r.loss, 1e-9*math.Max(1, math.Abs(o.Loss)), "%s loss", what)
			for _, f := range [][2]float64{{float64(r.state.BatchMean), o.State.BatchMean},
				{float64(r.state.BatchStd), o.State.BatchStd}, {float64(r.state.T), o.State.T}} {
				require.InDeltaf(t, f[1], f[0], 1e-6*math.Abs(f[1]), "%s state %+v, golden %+v", what, r.state, o.State)
			}
			if r.margins != nil || len(o.Margins) > 0 {
				near(what+" margins", r.margins, o.Margins)
			}
			sp.state0 = r.state
			sp.state0.Calls = o.State.Calls
			checked++
		}
	}
	t.Logf("%d golden steps", checked)
}

// adaBF16Specs are the adaptive kinds at paper-like parameters, with
// sub-centers, label smoothing and Sum where ADAPTIVE.md's combination
// table allows them (it allows every one for every kind), from mid-training
// states (AdaFace's statistics near the batch's, so that ŝ spans [−1, 1];
// CurricularFace's T > 0, so that the modulation moves the logits).
func adaBF16Specs() []adaSpec {
	ada := adaSpec{kind: "adaface", s: 64, m: f32(0.4), h: f32(0.333), alpha: f32(0.01),
		state0: loss.AdaptiveState{BatchMean: 40, BatchStd: 30}}
	adaK := ada
	adaK.k, adaK.eps, adaK.alpha = 3, f32(0.1), f32(0.3)
	adaKSum := adaK
	adaKSum.sum, adaKSum.eps = true, 0
	mag := adaSpec{kind: "magface", s: 64, la: 10, ua: 110, lm: f32(0.45), um: f32(0.8), lam: 35}
	magK := mag
	magK.k, magK.eps, magK.hard = 3, f32(0.1), true
	arc := adaSpec{kind: "elasticarc", s: 64, m: f32(0.5), std: f32(0.05)}
	cos := adaSpec{kind: "elasticcos", s: 64, m: f32(0.35), std: f32(0.05)}
	arcPlus := adaSpec{kind: "elasticarc", s: 64, m: f32(0.5), std: f32(0.0175), plus: true}
	cosPlusK := adaSpec{kind: "elasticcos", s: 64, m: f32(0.35), std: f32(0.02), plus: true, k: 3, eps: f32(0.1)}
	cur := adaSpec{kind: "curricular", s: 64, m: f32(0.5), alpha: f32(0.01), state0: loss.AdaptiveState{T: 0.25}}
	curK := cur
	curK.k, curK.eps, curK.alpha = 3, f32(0.1), f32(0.1)
	return []adaSpec{ada, adaK, adaKSum, mag, magK, arc, cos, arcPlus, cosPlusK, cur, curK}
}

// adaBF16Case is one input of TestBFloat16Adaptive with its float64
// reference, computed once for every level, path and driver.
type adaBF16Case struct {
	at         string
	sp         adaSpec
	n, rows, d int
	x, w       []float64
	labels     []int32
	draws      []float32 // ElasticFace: Margins
	trained    bool
	ref        adaOut64
	emul       float64 // lossRefBF16: the loss with BFloat16's rounding applied
}

// bf16CosErr is the worst-case move of one cosine when x̂ and Ŵ_j are
// rounded to bf16 (precision_test.go): 2⁻⁸·(1+2⁻¹⁰)·Σ_k|x̂_k·Ŵ_jk|.
func bf16CosErr(xh, wh []float64) float64 {
	var s float64
	for k := range xh {
		s += math.Abs(xh[k] * wh[k])
	}
	return 0x1p-8 * (1 + 0x1p-10) * s
}

var adaBF16Refs = sync.OnceValues(func() ([]adaBF16Case, error) {
	rng := rand.New(rand.NewPCG(17, 16))
	var cs []adaBF16Case
	// 9×600 and 24×700 span two class tiles (the head's tile is 512 wide).
	for _, shp := range [][3]int{{9, 600, 64}, {24, 700, 128}} {
		n, c, d := shp[0], shp[1], shp[2]
		for _, trained := range []bool{false, true} {
			for _, sp := range adaBF16Specs() {
				k := max(sp.k, 1)
				if k > 1 && n != 9 {
					continue // sub-centers on the smaller shape only (emulated CI runs are slow)
				}
				rows := c * k
				var x, w []float64
				var labels []int32
				if trained {
					x, w, labels = drawTrained(rng, n, rows, d)
					for i := range labels {
						labels[i] /= int32(k) // the sub-center's class
					}
				} else {
					x, w, labels = randNorm(rng, n*d), randNorm(rng, rows*d), drawLabels(rng, n, c)
				}
				// Row norms over [2, 130]: AdaFace's ŝ spans [−1, 1],
				// MagFace's clamp [10, 110] acts at both ends and between.
				for i := range n {
					xi := x[i*d : (i+1)*d]
					f := (2 + 128*rng.Float64()) / math.Sqrt(dot(xi, xi))
					for q := range xi {
						xi[q] *= f
					}
				}
				x, w = to64(to32(x)), to64(to32(w))
				var draws []float32
				var d64 []float64
				if sp.kind == "elasticarc" || sp.kind == "elasticcos" {
					draws = make([]float32, n)
					for i := range draws {
						draws[i] = float32(sp.m + sp.std*rng.NormFloat64())
					}
					d64 = to64(draws)
				}
				at := fmt.Sprintf("%v %dx%dx%d trained=%v", sp, n, c, d, trained)
				// Redraw the class rows that put a cosine on a branch (on
				// trained-like inputs only those of no row's class, which
				// that row's x was drawn around).
				for tries := 0; ; tries++ {
					j, err := adaBF16Branches(sp, x, w, labels, n, rows, d)
					if err == nil {
						break
					}
					if tries == 100 || trained && slices.Contains(labels, int32(j/k)) {
						return nil, fmt.Errorf("%s: %w", at, err)
					}
					copy(w[j*d:(j+1)*d], to64(to32(randNorm(rng, d))))
				}
				ref := sp.lossRef(x, w, labels, n, rows, d, d64, false)
				emul := sp.lossRefBF16(x, w, labels, n, rows, d, d64)
				cs = append(cs, adaBF16Case{at, sp, n, rows, d, x, w, labels, draws, trained, ref, emul})
			}
		}
	}
	return cs, nil
})

// adaBF16Branches returns a w row (and an error naming it) with a cosine
// within twice bf16's worst-case rounding (bf16CosErr) of a branch whose
// side moves a logit discontinuously, or −1: CurricularFace's mask
// threshold (c_j > φ_i switches the logit from s·c to s·c·(T+c)). On such
// inputs the comparison with the float64 reference would test the draw,
// not the head; the case generator redraws that row. (The target cosine
// stays float32 in BFloat16, so the target's branches, ElasticPlus's order
// and the state are not at risk; AdaFace's clamp at ±(1−ε) is continuous.)
func adaBF16Branches(sp adaSpec, x, w []float64, labels []int32, n, rows, d int) (int, error) {
	if sp.kind != "curricular" {
		return -1, nil
	}
	k := max(sp.k, 1)
	unit := func(v []float64) []float64 {
		nr := math.Sqrt(dot(v, v))
		h := make([]float64, len(v))
		for q := range v {
			h[q] = v[q] / nr
		}
		return h
	}
	for i := range n {
		xh := unit(x[i*d : (i+1)*d])
		y := int(labels[i])
		tc := math.Inf(-1)
		for q := range k {
			tc = math.Max(tc, dot(xh, unit(w[(y*k+q)*d:(y*k+q+1)*d])))
		}
		phi := tc*math.Cos(sp.m) - math.Sqrt(1-tc*tc)*math.Sin(sp.m)
		for j := range rows {
			if j/k == y {
				continue
			}
			wh := unit(w[j*d : (j+1)*d])
			if c := dot(xh, wh); math.Abs(c-phi) <= 2*bf16CosErr(xh, wh) {
				return j, fmt.Errorf("row %d, w row %d: cosine %.6f within bf16 rounding of the mask threshold %.6f", i, j, c, phi)
			}
		}
	}
	return -1, nil
}

// TestBFloat16Adaptive: every adaptive kind in BFloat16 against the float64
// reference, through Loss (at both shapes; sub-centers on the smaller one)
// and, on the smaller shape, a PartialFC sampling every class and a
// 2-shard ShardedHead (Prepare, the SUM of Targets, Forward, the merge,
// Backward), at every level, on both tile paths and with every bf16
// driver; BFloat16 really changes the result.
//
// State and margins: BFloat16 rounds the GEMMs' operands only. AdaFace's
// statistics and MagFace's margins are functions of the norms ‖x_i‖, which
// are float32 in either precision; CurricularFace's T, ElasticPlus's order
// and the ElasticFace draws are functions of the target cosines t_i, which
// the head computes in float32 (x̂_i·W_y, not through the bf16 logits: the
// package doc's "the target logits stay float32") and of (Seed, Calls).
// So the state and the margins after a BFloat16 call are bitwise those
// after the same Float32 call, and the test requires exactly that (for
// every entry, the shards' copies included). Were the targets ever taken
// from the bf16 logits, T would move by at most α·mean_i|Δt_i| ≤
// α·2⁻⁸(1+2⁻¹⁰) (bf16CosErr, Σ|x̂_k·Ŵ_k| ≤ 1), far above 1e-5 relative:
// that would be a change of the documented numerics, which this test is to
// catch.
func TestBFloat16Adaptive(t *testing.T) {
	forEachLevelAndPath(t, forEachBF16Driver(testBFloat16Adaptive))
}

func testBFloat16Adaptive(t *testing.T) {
	cases, err := adaBF16Refs()
	require.NoError(t, err)
	var st bf16Stats
	var emulWorst float64
	for _, rc := range cases {
		sp, at, ref := rc.sp, rc.at, rc.ref
		n, rows, d := rc.n, rc.rows, rc.d
		xm, wm := matOf(n, d, to32(rc.x)), matOf(rows, d, to32(rc.w))
		mk := func(p loss.Precision) *loss.MarginSoftmax {
			l := sp.api()
			l.Precision = p
			l.Margins = rc.draws
			return l
		}
		// The loss within lossRelTol·max(1, |L|) of lossRefBF16 (what is
		// left is float32's, the sums' order and x̂'s float32 rounding), and
		// of the float64 reference within bf16LossTol·max(1, |L|) on random
		// inputs; on trained-like inputs within BFloat16's own distance from
		// it (|emul − L|, the rounding of the definition, which exceeds
		// bf16LossTol for AdaFace and ElasticArcFace there: a high-norm
		// AdaFace row's target logit is pushed down by s·2m, so the rounded
		// non-target logits carry its log-sum-exp) plus that tolerance.
		check := func(at string, l float32, dx, dw []float32) {
			t.Helper()
			tol := lossRelTol * math.Max(1, math.Abs(rc.emul))
			require.LessOrEqualf(t, math.Abs(float64(l)-rc.emul), tol, "%s: loss %v, float64 with BFloat16's rounding %v", at, l, rc.emul)
			emulWorst = math.Max(emulWorst, math.Abs(float64(l)-rc.emul)/math.Max(1, math.Abs(rc.emul)))
			bound := 0.0
			if rc.trained {
				bound = math.Max(bf16LossTol*math.Max(1, math.Abs(ref.loss)), math.Abs(rc.emul-ref.loss)) + tol
			}
			checkBF16(t, &st, at, l, dx, dw, ref.loss, ref.dx, ref.dw, bound)
		}
		h := mk(loss.BFloat16)
		dx, dw := nanMatrix(n, d), nanMatrix(rows, d)
		l, err := h.Loss(xm, wm, rc.labels, &dx, &dw)
		require.NoError(t, err, at)
		check(at, l, dx.Data, dw.Data)

		h32 := mk(loss.Float32)
		f32dx, f32dw := nanMatrix(n, d), nanMatrix(rows, d)
		l32, err := h32.Loss(xm, wm, rc.labels, &f32dx, &f32dw)
		require.NoError(t, err, at)
		if l32 == l && relDiff(f32dw.Data, dw.Data) == 0 {
			t.Fatalf("%s: BFloat16 gives Float32's bits", at)
		}
		want, wantM := h32.State(), h32.AppendMargins(nil)
		require.Equal(t, want, h.State(), "%s: state after BFloat16", at)
		requireBits(t, wantM, h.AppendMargins(nil), at+": margins after BFloat16")
		// and the reference's (the float32 state against float64 arithmetic
		// rounded once, see adaRefState).
		adaRefState(t, at, sp, want, wantM, ref, rc.x, n, d, d)

		if n != 9 {
			continue // the composed entries on the smaller shape only (emulated CI runs are slow)
		}
		p := &loss.PartialFC{Head: mk(loss.BFloat16), SampleRate: 1}
		pdx, pdw := nanMatrix(n, d), nanMatrix(rows, d)
		pl, err := p.Loss(xm, wm, rc.labels, &pdx, &pdw)
		require.NoError(t, err, at)
		check(at+" partialfc", pl, pdx.Data, pdw.Data)
		require.Equal(t, want, p.Head.State(), "%s: PartialFC state", at)
		requireBits(t, wantM, p.Head.AppendMargins(nil), at+": PartialFC margins")

		head := mk(loss.BFloat16)
		shards := []*loss.ShardedHead{{Head: head}, {Head: head}}
		sl, sdx, sdw, err := shardedStep(t, shards, xm, wm, rc.labels, max(sp.k, 1))
		require.NoError(t, err, at)
		check(at+" sharded", sl, sdx, sdw)
		for q, sh := range shards {
			require.Equal(t, want, sh.State(), "%s: shard %d state", at, q)
		}
		require.Equal(t, sp.state0, head.State(), "%s: the shards changed Head's state", at)
	}
	st.log(t, "adaptive, float64 reference")
	t.Logf("adaptive, float64 with BFloat16's rounding: worst loss |Δ|/max(1,|L|) = %.2e", emulWorst)
}

// adaRefState: the API's state and margins against the reference's, to
// 1e-5 relative (issue 17's bound; both round the state to float32 once)
// plus what the API's float32 inputs to them move: the norms ‖x_i‖ (a
// float32 sum of D squares and its root, within δn = (D+2)·2⁻²⁴·‖x_i‖ of
// the float64 norm) and the target cosines (within (D+2)·2⁻²⁴ likewise).
// So, with n* the largest norm: μ and σ by α·δn* (the unbiased std is
// √(N/(N−1))-Lipschitz in the max-norm of the inputs); AdaFace's
// ŝ_i = h·(n_i − μ)/(σ + ε) by h·(δn_i + Δμ + 2⁻²⁴|μ|)/(σ + ε) + |ŝ_i|·Δσ/σ
// (a cancellation where n_i ≈ μ, which a relative bound alone would not
// cover at D = 128); MagFace's m_i by k·δn_i, k = (um−lm)/(ua−la); T by
// α·(D+2)·2⁻²⁴.
//
// depth is D, or more where st carries further roundings.
func adaRefState(t *testing.T, at string, sp adaSpec, st loss.AdaptiveState, margins []float32, ref adaOut64, x []float64, n, d, depth int) {
	t.Helper()
	g := float64(depth+2) * 0x1p-24
	norms := make([]float64, n)
	var maxN float64
	for i := range n {
		norms[i] = math.Sqrt(dot(x[i*d:(i+1)*d], x[i*d:(i+1)*d]))
		maxN = math.Max(maxN, math.Min(norms[i], 100)) // AdaFace clips at 100
	}
	nf := float64(n)
	dMu := sp.alpha * g * maxN
	dSg := sp.alpha * g * maxN * math.Sqrt(nf/math.Max(nf-1, 1))
	mu, sg := float64(ref.state.BatchMean), float64(ref.state.BatchStd)
	near := func(what string, got, want, extra float64) {
		t.Helper()
		require.InDeltaf(t, want, got, 1e-5*math.Abs(want)+extra, "%s: %s (state %+v, reference %+v)", at, what, st, ref.state)
	}
	switch sp.kind {
	case "adaface":
		near("BatchMean", float64(st.BatchMean), mu, dMu)
		near("BatchStd", float64(st.BatchStd), sg, dSg)
	case "curricular":
		near("T", float64(st.T), float64(ref.state.T), sp.alpha*g)
	}
	require.Len(t, margins, len(ref.margins), at)
	for i, m := range ref.margins {
		extra := 0.0
		switch sp.kind {
		case "adaface":
			if math.Abs(m) < 1 {
				e := loss.AdaFaceEps
				extra = sp.h*(g*math.Min(norms[i], 100)+dMu+0x1p-24*math.Abs(mu))/(sg+e) + math.Abs(m)*dSg/sg
			}
		case "magface":
			extra = (sp.um - sp.lm) / (sp.ua - sp.la) * g * norms[i]
		}
		require.InDeltaf(t, m, float64(margins[i]), 1e-5*math.Max(math.Abs(m), 1e-2)+extra, "%s: margin %d", at, i)
	}
}

// TestBFloat16AdaptiveNoAllocsDeterministic: in BFloat16 every adaptive
// kind (ElasticFace with seeded draws) allocates nothing in steady state,
// through Loss and a ShardedHead step, and gives the same bits (loss, dx,
// dw, state, margins) for GOMAXPROCS 1, 2 and 3.
func TestBFloat16AdaptiveNoAllocsDeterministic(t *testing.T) {
	forEachLevelAndPath(t, forEachBF16Driver(testBFloat16AdaptiveNoAllocsDeterministic))
}

func testBFloat16AdaptiveNoAllocsDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 3))
	n, c, d := 70, 1100, 17 // 70 rows: two row chunks; 1100 classes: three tiles, three shards
	x := to32(randNorm(r, n*d))
	for i := range n {
		f := float32(1 + 120*r.Float64())
		for q := range d {
			x[i*d+q] *= f / 4 // ‖x_i‖ ≈ f·√17/4 ∈ [1, 124]
		}
	}
	xm := matOf(n, d, x)
	labels := drawLabels(r, n, c)
	specs := adaBF16Specs()
	// every kind, its modulation (AdaFace's clamp, CurricularFace's hard
	// negatives), sub-centers, Plus's sort and MagFace's radial term: the
	// spec list less the variants that add no other path (the race
	// detector's and qemu's CI runs repeat this test)
	for _, sp := range []adaSpec{specs[0], specs[1], specs[3], specs[7], specs[6], specs[10]} {
		k := max(sp.k, 1)
		wm := matOf(c*k, d, to32(randNorm(r, c*k*d)))
		mk := func() *loss.MarginSoftmax {
			h := sp.api()
			h.Precision = loss.BFloat16
			h.Seed = 5 // ElasticFace: the seeded draws
			return h
		}
		h := mk()
		dx, dw := filled(n, d, 0), filled(c*k, d, 0)
		require.Zero(t, testing.AllocsPerRun(3, func() { _, _ = h.Loss(xm, wm, labels, &dx, &dw) }), "%v: allocations", sp)
		sh := &loss.ShardedHead{Head: h, Classes: c}
		sst := &loss.ShardStats{}
		step := func() {
			if err := sh.Prepare(xm, wm, labels, sst); err != nil {
				panic(err)
			}
			if err := sh.Forward(xm, wm, labels, sst); err != nil {
				panic(err)
			}
			if _, err := sh.Backward(xm, wm, labels, sst, &dx, &dw); err != nil {
				panic(err)
			}
		}
		require.Zero(t, testing.AllocsPerRun(3, step), "%v: ShardedHead allocations", sp)

		var ref []float32
		var refSt loss.AdaptiveState
		for _, procs := range []int{1, 2, 3} {
			old := runtime.GOMAXPROCS(procs)
			h := mk()
			l, err := h.Loss(xm, wm, labels, &dx, &dw)
			runtime.GOMAXPROCS(old)
			require.NoError(t, err)
			got := append(append([]float32{l}, dx.Data...), dw.Data...)
			got = append(got, h.AppendMargins(nil)...)
			if ref == nil {
				ref, refSt = got, h.State()
				continue
			}
			require.Equal(t, refSt, h.State(), "%v: GOMAXPROCS=%d state", sp, procs)
			for q := range got {
				if math.Float32bits(got[q]) != math.Float32bits(ref[q]) {
					t.Fatalf("%v: GOMAXPROCS=%d differs from 1 at output %d: %v vs %v", sp, procs, q, got[q], ref[q])
				}
			}
		}
	}
}

// bf16RNE rounds v to bfloat16, to nearest even (as the packs do).
func bf16RNE(v float32) float32 {
	b := math.Float32bits(v)
	b += 0x7fff + (b>>16)&1
	return math.Float32frombits(b &^ 0xffff)
}

// lossRefBF16 is lossRef's loss with BFloat16's definition applied to the
// logits' GEMM: every non-target cosine from x̂ and Ŵ rounded to float32,
// then to bf16, their products summed exactly; the target class's cosines
// exact (BFloat16 computes them in float32 beside the GEMM).
func (sp adaSpec) lossRefBF16(x, w []float64, labels []int32, n, rows, d int, draws []float64) float64 {
	k := max(sp.k, 1)
	// unit returns v/‖v‖ and its bf16 operand: v/‖v‖ rounded to float32,
	// then to bf16 (x̂), or v rounded to bf16 over ‖v‖ (W, whose column
	// scale 1/‖W_j‖ the GEMM's epilogue applies).
	unit := func(v []float64, scaled bool) ([]float64, []float64, float64) {
		nr := math.Sqrt(dot(v, v))
		h, b := make([]float64, len(v)), make([]float64, len(v))
		for q := range v {
			h[q] = v[q] / nr
			if scaled {
				b[q] = float64(bf16RNE(float32(v[q]))) / nr
			} else {
				b[q] = float64(bf16RNE(float32(h[q])))
			}
		}
		return h, b, nr
	}
	xh, xb := make([][]float64, n), make([][]float64, n)
	wh, wb := make([][]float64, rows), make([][]float64, rows)
	xn := make([]float64, n)
	for i := range n {
		xh[i], xb[i], xn[i] = unit(x[i*d:(i+1)*d], false)
	}
	for j := range rows {
		wh[j], wb[j], _ = unit(w[j*d:(j+1)*d], true)
	}
	u := make([]float64, n*rows)
	for i := range n {
		y := int(labels[i])
		for j := range rows {
			if j/k == y {
				u[i*rows+j] = dot(xh[i], wh[j])
			} else {
				u[i*rows+j] = dot(xb[i], wb[j])
			}
		}
	}
	return sp.cosRef(u, xn, labels, n, rows, draws, false).loss
}
