package loss

import (
	"fmt"
	"math"
	"slices"

	"github.com/marginloss/marginloss/asm"
)

// AdaFaceEps is AdaFace's ε: the cosine clamp, the θ clip and the σ guard,
// as mk-minchul/AdaFace head.py has it.
const AdaFaceEps = 1e-3

// AdaFace returns the quality-adaptive margin loss of Kim et al. (2022), as
// mk-minchul/AdaFace head.py computes it: cosines clamped to
// [−1+AdaFaceEps, 1−AdaFaceEps]; the norms ‖x_i‖, clipped to [0.001, 100],
// update the state first (μ ← α·mean + (1−α)·μ, σ ← α·std + (1−α)·σ, std
// unbiased); then ŝ_i = clip(h·(n_i − μ)/(σ + AdaFaceEps), −1, 1) (no
// gradient) and the target logit is s·(cos(clip(θ_y − m·ŝ_i, ε, π−ε)) − m − m·ŝ_i).
// Needs s > 0, 0 ≤ m < π/2, h ≥ 0, 0 ≤ tAlpha ≤ 1. The paper's setting is
// AdaFace(64, 0.4, 0.333, 0.01). The state starts at μ = 20, σ = 100.
func AdaFace(s, m, h, tAlpha float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindAda, s: s, m2: m, ad: adaptiveParams{h: h, alpha: tAlpha},
		state: AdaptiveState{BatchMean: 20, BatchStd: 100}}
}

// MagFace returns the magnitude-aware margin loss of Meng et al. (2021), as
// IrvingMeng/MagFace models/magface.py computes it: a_i = clamp(‖x_i‖, la, ua),
// m_i = (um−lm)/(ua−la)·(a_i−la) + lm, ArcFace's target cos(θ+m_i) with
// EasyMargin (set by the constructor, as the authors train) or the per-row
// threshold fallback t − m_i·sin m_i, plus λ_g·g(a_i), g(a) = a/ua² + 1/a,
// per row. The gradient flows through m_i and g into ‖x_i‖ where
// la ≤ ‖x_i‖ ≤ ua. Needs s > 0, 0 < la < ua, 0 ≤ lm ≤ um < π/2,
// lambdaG ≥ 0. The paper's setting is MagFace(64, 10, 110, 0.45, 0.8, 35).
func MagFace(s, la, ua, lm, um, lambdaG float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindMag, s: s, EasyMargin: true,
		ad: adaptiveParams{la: la, ua: ua, lm: lm, um: um, lambdaG: lambdaG}}
}

// ElasticArcFace returns ElasticFace-Arc (Boutros et al. 2022,
// fdbtrs/ElasticFace utils/losses.py): per row and call a margin
// m_i ~ N(m, std²) (see Seed, Margins, ElasticPlus); the target logit is
// s·cos(θ_y + m_i) with no fallback. Needs s > 0, finite m, std ≥ 0.
// Paper settings: ElasticArcFace(64, 0.5, 0.05); with ElasticPlus std 0.0175.
func ElasticArcFace(s, m, std float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindElasticArc, s: s, m2: m, ad: adaptiveParams{std: std}}
}

// ElasticCosFace returns ElasticFace-Cos (Boutros et al. 2022): per row and
// call a margin m_i ~ N(m, std²) (see Seed, Margins, ElasticPlus); the
// target logit is s·(cos θ_y − m_i). Needs s > 0, finite m, std ≥ 0. Paper
// settings: ElasticCosFace(64, 0.35, 0.05); with ElasticPlus std 0.02.
func ElasticCosFace(s, m, std float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindElasticCos, s: s, m2: m, ad: adaptiveParams{std: std}}
}

// CurricularFace returns the loss of Huang et al. (2020),
// HuangYG123/CurricularFace head/metrics.py: target as ArcFace (threshold
// fallback t − m·sin m), and each non-target cosine c_j > cos(θ_y+m) (the
// formula t·cos m − sqrt(1−t²)·sin m, strict >) becomes c_j·(T + c_j), where
// T ← α·mean_i(t_i) + (1−α)·T is updated first (no gradient). Needs s > 0,
// 0 ≤ m < π/2, 0 ≤ alpha ≤ 1. The authors' code has alpha = 0.01
// (Tencent/TFace's copy: 0.1). T starts at 0.
func CurricularFace(s, m, alpha float32) *MarginSoftmax {
	return &MarginSoftmax{kind: kindCurricular, s: s, m2: m, ad: adaptiveParams{alpha: alpha}}
}

// AdaptiveState is the state an adaptive head carries from call to call, in
// float32 as the authors' buffers are. Updates are computed in float64 and
// rounded once; the rounded value is the one used.
type AdaptiveState struct {
	BatchMean, BatchStd float32 // AdaFace: EMAs of the clipped norms' mean and unbiased std (20, 100)
	T                   float32 // CurricularFace: EMA of the batch's mean target cosine (0)
	Calls               uint64  // ElasticArcFace/ElasticCosFace: drawing calls so far
}

// adaptiveParams are the constructor parameters of the adaptive kinds
// beyond s and m (m2).
type adaptiveParams struct {
	h, alpha                float32 // AdaFace h, t_alpha; CurricularFace alpha
	la, ua, lm, um, lambdaG float32 // MagFace
	std                     float32 // ElasticFace
}

func (k headKind) adaptive() bool { return k >= kindAda && k <= kindCurricular }

// State returns the head's current state (zero fields for kinds that do not
// use them).
func (l *MarginSoftmax) State() AdaptiveState {
	if l == nil {
		return AdaptiveState{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// SetState replaces the state, for checkpoints, replays and tests. It
// returns an error wrapping ErrParam for a non-finite field, BatchStd < 0,
// or |T| > 1. Fields a kind does not use are ignored.
func (l *MarginSoftmax) SetState(st AdaptiveState) error {
	if l == nil {
		return errNilHead
	}
	if err := checkState(st); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state = st
	return nil
}

func checkState(st AdaptiveState) error {
	if !isFinite(st.BatchMean) || !isFinite(st.BatchStd) || !isFinite(st.T) || st.BatchStd < 0 || !(math.Abs(float64(st.T)) <= 1) {
		return fmt.Errorf("%w: AdaptiveState (BatchMean %g, BatchStd %g, T %g): want finite fields, BatchStd ≥ 0, |T| ≤ 1", ErrParam, st.BatchMean, st.BatchStd, st.T)
	}
	return nil
}

// AppendMargins appends the per-row margin quantity of the last successful
// call and returns dst: AdaFace ŝ_i (angular margin −m·ŝ_i, additive
// m + m·ŝ_i), MagFace m_i, ElasticArcFace/CosFace the m_i applied (after
// ElasticPlus); nothing for the other kinds.
func (l *MarginSoftmax) AppendMargins(dst []float32) []float32 {
	if l == nil {
		return dst
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.kind {
	case kindAda, kindMag, kindElasticArc, kindElasticCos:
		return append(dst, l.lastMargins...)
	}
	return dst
}

// NeedsTargets reports whether the head needs every row's target cosine
// before its logits exist: CurricularFace (the mask threshold cos(θ_y+m) per
// row, T from their mean) and ElasticPlus.
func (l *MarginSoftmax) NeedsTargets() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.needsTargets()
}

func (l *MarginSoftmax) needsTargets() bool {
	return l.kind == kindCurricular || l.ElasticPlus && (l.kind == kindElasticArc || l.kind == kindElasticCos)
}

// needsNorms reports whether the margin reads ‖x_i‖ (LossFromCosines then
// needs LossFromCosinesNorms).
func (k headKind) needsNorms() bool { return k == kindAda || k == kindMag }

// checkAdaptive validates the adaptive kinds' parameters (the scale is
// checked by marginFunc) and the state.
func (l *MarginSoftmax) checkAdaptive() error {
	name := kindNames[l.kind]
	p := l.ad
	fin := func(v float32) bool { return isFinite(v) }
	switch l.kind {
	case kindAda:
		if !(l.m2 >= 0 && float64(l.m2) < math.Pi/2) || !(p.h >= 0) || !fin(p.h) || !(p.alpha >= 0 && p.alpha <= 1) {
			return fmt.Errorf("%w: AdaFace (m, h, tAlpha) = (%g, %g, %g), want 0 ≤ m < π/2, finite h ≥ 0, 0 ≤ tAlpha ≤ 1", ErrParam, l.m2, p.h, p.alpha)
		}
	case kindMag:
		if !(p.la > 0 && p.la < p.ua) || !fin(p.ua) || !(p.lm >= 0 && p.lm <= p.um && float64(p.um) < math.Pi/2) || !(p.lambdaG >= 0) || !fin(p.lambdaG) {
			return fmt.Errorf("%w: MagFace (la, ua, lm, um, λg) = (%g, %g, %g, %g, %g), want 0 < la < ua finite, 0 ≤ lm ≤ um < π/2, finite λg ≥ 0", ErrParam, p.la, p.ua, p.lm, p.um, p.lambdaG)
		}
		k := float64(p.um-p.lm) / float64(p.ua-p.la)
		if float64(l.s)*k*2 > MaxLogit || float64(p.lambdaG)/(float64(p.la)*float64(p.la)) > MaxLogit {
			return fmt.Errorf("%w: MagFace s·(um−lm)/(ua−la) = %g or λg/la² = %g exceeds MaxLogit", ErrParam, float64(l.s)*k, float64(p.lambdaG)/(float64(p.la)*float64(p.la)))
		}
	case kindElasticArc, kindElasticCos:
		if !fin(l.m2) || !(p.std >= 0) || !fin(p.std) {
			return fmt.Errorf("%w: %s (m, std) = (%g, %g), want finite m and finite std ≥ 0", ErrParam, name, l.m2, p.std)
		}
		if float64(p.std) > 1e6 || math.Abs(float64(l.m2)) > 1e6 {
			return fmt.Errorf("%w: %s (m, std) = (%g, %g), want |m|, std ≤ 1e6", ErrParam, name, l.m2, p.std)
		}
	case kindCurricular:
		if !(l.m2 >= 0 && float64(l.m2) < math.Pi/2) || !(p.alpha >= 0 && p.alpha <= 1) {
			return fmt.Errorf("%w: CurricularFace (m, alpha) = (%g, %g), want 0 ≤ m < π/2, 0 ≤ alpha ≤ 1", ErrParam, l.m2, p.alpha)
		}
	}
	return checkState(l.state)
}

// adaptiveBounds returns bounds on |φ| and |φ′| of the adaptive kinds, from
// the parameters (ElasticFace: from the draws, see adaCall.phiMax), and the
// bound of the non-target factor (CurricularFace: |c(T+c)| ≤ 2, |T+2c| ≤ 3).
func (l *MarginSoftmax) adaptiveBounds() (phiMax, dphiMax float64) {
	invSin := 1 / math.Sqrt(asm.ClampEps*(2-asm.ClampEps))
	m := float64(l.m2)
	switch l.kind {
	case kindAda:
		e := AdaFaceEps
		return 1 + 2*m, 1 / math.Sqrt(e*(2-e))
	case kindMag:
		um := float64(l.ad.um)
		return 1 + um, 1 + invSin
	case kindElasticArc:
		return 1, 1 + invSin
	case kindElasticCos:
		return 1 + math.Abs(m) + 10*float64(l.ad.std), 1
	case kindCurricular:
		return 2 + m, math.Max(3, 1+invSin)
	}
	return 1, 1
}

// adaCall is one call's adaptive margin: what the logits and gradients need
// beyond φ and φ′ at the target, and the state the call commits on success.
type adaCall struct {
	kind     headKind
	on       bool
	s        float32
	state    AdaptiveState // the state after this call
	margins  []float32     // per row: AppendMargins
	thr      []float32     // CurricularFace: per row s·cos(θ_y+m) (the mask threshold on the logits)
	dmz      []float32     // MagFace: per row s·∂φ/∂m·∂m/∂a (0 outside [la, ua])
	reg      []float32     // MagFace: per row λg·(1/ua² − 1/a²) (0 outside [la, ua])
	regLoss  float64       // MagFace: Σ_i λg·g(a_i)
	perm     []int32       // ElasticPlus: rows by descending target cosine
	sorted   []float32     // ElasticPlus: the draws ascending
	t32      float32       // CurricularFace: T of this call
	hi       float32       // AdaFace: s·(1−ε), the logit clamp
	invS     float32       // 1/s
	phiMax   float64       // max |φ| over the rows (bounds)
	modulate bool          // non-target logits are modulated (AdaFace, CurricularFace)
}

func (a *adaCall) size(n int) {
	a.margins, a.thr = grow(a.margins, n), grow(a.thr, n)
	a.dmz, a.reg = grow(a.dmz, n), grow(a.reg, n)
}

// eval computes φ and φ′ (phi, dphi) of every row from its raw target
// cosine t (the class cosine, max over K), the norms (AdaFace, MagFace),
// and the state st, and stages the new state. own reports whether row i's
// label is on this w (its φ is used); all t must be valid when the kind
// needs every row's target (NeedsTargets). It writes only the workspace.
func (a *adaCall) eval(l *MarginSoftmax, st AdaptiveState, t, norms []float32, own func(i int) bool, phi, dphi []float32) error {
	n := len(t)
	a.kind, a.on, a.s = l.kind, true, l.s
	a.state, a.regLoss, a.phiMax = st, 0, 0
	a.invS = 1 / l.s
	a.modulate = l.kind == kindAda || l.kind == kindCurricular
	a.size(n)
	s := float64(l.s)
	m := float64(l.m2)
	clamp := func(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
	sinPole := func(c float64) float64 {
		cc := clamp(c, -1+asm.ClampEps, 1-asm.ClampEps)
		return math.Sqrt(1 - cc*cc)
	}
	switch l.kind {
	case kindAda:
		if n == 1 {
			return fmt.Errorf("%w: AdaFace with N = 1: the unbiased std of one norm is NaN (the authors' state turns NaN for good)", ErrShape)
		}
		eps := AdaFaceEps
		alpha := float64(l.ad.alpha)
		var sum float64
		for _, r := range norms {
			sum += clamp(float64(r), 0.001, 100)
		}
		mean := sum / float64(n)
		var ss float64
		for _, r := range norms {
			d := clamp(float64(r), 0.001, 100) - mean
			ss += d * d
		}
		std := math.Sqrt(ss / float64(n-1))
		mu := float32(mean*alpha + (1-alpha)*float64(st.BatchMean))
		sg := float32(std*alpha + (1-alpha)*float64(st.BatchStd))
		if !isFinite(mu) || !isFinite(sg) {
			return fmt.Errorf("%w: AdaFace state (%g, %g) leaves float32", ErrNonFinite, mu, sg)
		}
		a.state.BatchMean, a.state.BatchStd = mu, sg
		h := float64(l.ad.h)
		a.hi = float32(s * (1 - eps))
		for i := range t {
			sh := clamp((clamp(float64(norms[i]), 0.001, 100)-float64(mu))/(float64(sg)+eps)*h, -1, 1)
			a.margins[i] = float32(sh)
			u := float64(t[i])
			c := clamp(u, -1+eps, 1-eps)
			th := math.Acos(c) - m*sh
			thc := clamp(th, eps, math.Pi-eps)
			phi[i] = float32(math.Cos(thc) - m - m*sh)
			d := 0.0
			if u >= -1+eps && u <= 1-eps && th >= eps && th <= math.Pi-eps {
				d = math.Sin(thc) / math.Sqrt(1-c*c)
			}
			dphi[i] = float32(d)
		}
	case kindMag:
		p := l.ad
		la, ua, lm, um := float64(p.la), float64(p.ua), float64(p.lm), float64(p.um)
		k := (um - lm) / (ua - la)
		lam := float64(p.lambdaG)
		for i := range t {
			r := float64(norms[i])
			av := clamp(r, la, ua)
			mi := k*(av-la) + lm
			a.margins[i] = float32(mi)
			a.regLoss += lam * (av/(ua*ua) + 1/av)
			in := r >= la && r <= ua
			c := clamp(float64(t[i]), -1, 1)
			sn := math.Sqrt(1 - c*c)
			cm := c*math.Cos(mi) - sn*math.Sin(mi)
			var f, df, dm float64
			switch {
			case l.EasyMargin && c > 0, !l.EasyMargin && c > math.Cos(math.Pi-mi):
				f, df, dm = cm, math.Cos(mi)+c*math.Sin(mi)/sinPole(c), -(c*math.Sin(mi) + sn*math.Cos(mi))
			case l.EasyMargin:
				f, df, dm = c, 1, 0
			default:
				f, df, dm = c-math.Sin(math.Pi-mi)*mi, 1, -(math.Sin(mi) + mi*math.Cos(mi))
			}
			phi[i], dphi[i] = float32(f), float32(df)
			a.dmz[i], a.reg[i] = 0, 0
			if in {
				a.dmz[i] = float32(s * dm * k)
				a.reg[i] = float32(lam * (1/(ua*ua) - 1/(av*av)))
			}
		}
	case kindElasticArc, kindElasticCos:
		draws := a.margins[:n]
		if l.Margins != nil {
			copy(draws, l.Margins)
		} else {
			g := newSplitMix64(l.Seed, st.Calls)
			mean, sd := float64(l.m2), float64(l.ad.std)
			for i := range draws {
				v1, v2 := g.next(), g.next()
				u1 := float64(v1>>11+1) * 0x1p-53
				u2 := float64(v2>>11) * 0x1p-53
				draws[i] = float32(mean + sd*math.Sqrt(-2*math.Log(u1))*math.Cos(2*math.Pi*u2))
			}
			a.state.Calls++
		}
		if l.ElasticPlus {
			a.perm, a.sorted = grow(a.perm, n), grow(a.sorted, n)
			for i := range a.perm {
				a.perm[i] = int32(i)
			}
			slices.SortStableFunc(a.perm, func(p, q int32) int {
				tp, tq := clampF(t[p]), clampF(t[q])
				switch {
				case tp > tq:
					return -1
				case tp < tq:
					return 1
				}
				return 0
			})
			copy(a.sorted, draws)
			slices.Sort(a.sorted)
			for i, p := range a.perm {
				draws[i] = a.sorted[p]
			}
		}
		for i := range t {
			mi := float64(draws[i])
			c := clamp(float64(t[i]), -1, 1)
			if l.kind == kindElasticCos {
				phi[i], dphi[i] = float32(c-mi), 1
			} else {
				th := math.Acos(c)
				phi[i], dphi[i] = float32(math.Cos(th+mi)), float32(math.Sin(th+mi)/sinPole(c))
			}
		}
	case kindCurricular:
		var sum float64
		for _, v := range t {
			sum += clamp(float64(v), -1, 1)
		}
		alpha := float64(l.ad.alpha)
		mean := 0.0
		if n > 0 {
			mean = sum / float64(n)
		}
		a.state.T = float32(mean*alpha + (1-alpha)*float64(st.T))
		a.t32 = a.state.T
		cm, sm := math.Cos(m), math.Sin(m)
		th := math.Cos(math.Pi - m)
		mm := math.Sin(math.Pi-m) * m
		for i := range t {
			c := clamp(float64(t[i]), -1, 1)
			f := c*cm - math.Sqrt(1-c*c)*sm
			a.thr[i] = float32(s * f)
			if c > th {
				phi[i], dphi[i] = float32(f), float32(cm+c*sm/sinPole(c))
			} else {
				phi[i], dphi[i] = float32(c-mm), 1
			}
		}
	}
	for i := range t {
		if own(i) {
			a.phiMax = math.Max(a.phiMax, math.Abs(float64(phi[i])))
		}
	}
	return nil
}

func clampF(v float32) float32 { return min(max(v, -1), 1) }

// checkDraws validates Margins for a call of n rows.
func (l *MarginSoftmax) checkDraws(n int) error {
	if l.Margins == nil || !(l.kind == kindElasticArc || l.kind == kindElasticCos) {
		return nil
	}
	if len(l.Margins) != n {
		return fmt.Errorf("%w: %s Margins has %d values for %d rows", ErrShape, kindNames[l.kind], len(l.Margins), n)
	}
	if i := indexNonFinite(l.Margins); i >= 0 {
		return fmt.Errorf("%w: %s Margins[%d] = %v", ErrNonFinite, kindNames[l.kind], i, l.Margins[i])
	}
	return nil
}

// commit makes the call's state and margins the head's (after a successful
// call).
func (a *adaCall) commit(l *MarginSoftmax, st *AdaptiveState, n int) {
	if !a.on {
		return
	}
	*st = a.state
	switch l.kind {
	case kindAda, kindMag, kindElasticArc, kindElasticCos:
		l.lastMargins = append(l.lastMargins[:0], a.margins[:n]...)
	}
}

// modRow modulates row i's non-target logits z (s·c_j) in place: AdaFace
// clamps them to ±s·(1−ε), CurricularFace maps the hard ones (z > s·φ_i)
// to z·(T + z/s). When dz is non-nil it receives ∂z′/∂z per entry (0 outside
// AdaFace's clamp, T + 2c for a hard negative, else 1); dz may not be z.
func (a *adaCall) modRow(z, dz []float32, i int) {
	switch a.kind {
	case kindAda:
		hi := a.hi
		for j, v := range z {
			d := float32(1)
			if v > hi {
				v, d = hi, 0
			} else if v < -hi {
				v, d = -hi, 0
			}
			z[j] = v
			if dz != nil {
				dz[j] = d
			}
		}
	case kindCurricular:
		thr, tt, inv := a.thr[i], a.t32, a.invS
		for j, v := range z {
			d := float32(1)
			if v > thr {
				c := v * inv
				z[j] = v * (tt + c)
				d = tt + 2*c
			}
			if dz != nil {
				dz[j] = d
			}
		}
	}
}

// radial is MagFace's ∂L/∂‖x_i‖ given ∂L/∂z_iy (gz), for a row whose label
// is on this w (own) and the regulariser where reg is set.
func (a *adaCall) radial(i int, gz float32, own, reg bool, scale float32) float32 {
	var r float32
	if own {
		r = gz * a.dmz[i]
	}
	if reg {
		r += a.reg[i] * scale
	}
	return r
}

// regLoss is MagFace's Σ_i λg·g(a_i) (on every shard), 0 for the others.
func (h *headWorkspace) regLoss() float64 {
	if h.kind == kindMag && h.ada.on {
		return h.ada.regLoss
	}
	return 0
}

// adaptiveMargins evaluates the adaptive margin of every row after norms
// (which left φ alone for these kinds) from state st, and sets the target
// logits. targets, when non-nil, holds every row's target cosine (a
// ShardedHead's reduced ShardStats.Targets); else the rows' own h.t.
func (h *headWorkspace) adaptiveMargins(l *MarginSoftmax, st AdaptiveState, targets []float32) error {
	t := h.t[:h.n]
	if targets != nil {
		t = targets
	}
	own := func(i int) bool { return h.lab[i] >= 0 }
	if err := h.ada.eval(l, st, t, h.xnorm[:h.n], own, h.phi[:h.n], h.dphi[:h.n]); err != nil {
		return err
	}
	s := h.s
	for i := 0; i < h.n; i++ {
		h.zt[i] = s * h.phi[i]
		if h.detach {
			h.dphi[i] = 1
		}
	}
	return nil
}

// adaptiveBoundsOf widens phiMax by the call's largest |φ| (ElasticFace's
// draws are not bounded by the parameters).
func (h *headWorkspace) adaptivePhiMax(phiMax float64) float64 {
	if h.ada.on {
		return math.Max(phiMax, h.ada.phiMax)
	}
	return phiMax
}

// checkCall validates what an adaptive head needs of a call of n rows
// beyond the shapes: AdaFace N ≠ 1, Margins.
func (l *MarginSoftmax) checkCall(n int) error {
	if l.kind == kindAda && n == 1 {
		return fmt.Errorf("%w: AdaFace with N = 1: the unbiased std of one norm is NaN (the authors' state turns NaN for good)", ErrShape)
	}
	if n == 0 {
		return nil
	}
	return l.checkDraws(n)
}
