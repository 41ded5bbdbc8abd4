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
	if l.kind.desc().margins {
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
	d := l.kind.desc()
	return d.targets || l.ElasticPlus && d.draws
}

// needsNorms reports whether the margin reads ‖x_i‖ (LossFromCosines then
// needs LossFromCosinesNorms).
func (k headKind) needsNorms() bool { return k.desc().norms }

// checkAdaptiveCommon: every adaptive kind's state must be valid.
func (l *MarginSoftmax) adaptivePlaceholder() (asm.Margin, error) {
	if err := checkState(l.state); err != nil {
		return asm.Margin{}, err
	}
	// The adaptive margins are evaluated per row in float64 (eval); this
	// margin is never applied.
	return asm.NewMargin(asm.MarginCos, 1, 0, 0, 0, 0), nil
}

// adaCall is one call's adaptive margin: what the logits and gradients need
// beyond φ and φ′ at the target, and the state the call commits on success.
type adaCall struct {
	kind    headKind
	on      bool
	s       float32
	st      AdaptiveState // the state before this call
	state   AdaptiveState // the state after this call
	margins []float32     // per row: AppendMargins
	thr     []float32     // CurricularFace: per row s·cos(θ_y+m) (the mask threshold on the logits)
	dmz     []float32     // MagFace: per row s·∂φ/∂m·∂m/∂a (0 outside [la, ua])
	reg     []float32     // MagFace: per row λg·(1/ua² − 1/a²) (0 outside [la, ua])
	regLoss float64       // MagFace: Σ_i λg·g(a_i)
	rows    asm.Margin    // the per-row margin φ of the call, for asm.MarginForward (vector bodies at every level)
	m2, m3  []float32     // AdaFace: per row −m·ŝ and m + m·ŝ (rows' parameters)
	perm    []int32       // ElasticPlus: rows by descending target cosine
	sorted  []float32     // ElasticPlus: the draws ascending
	t32     float32       // CurricularFace: T of this call
	arc     asm.Margin    // CurricularFace: the target's ArcFace margin
	hi      float32       // AdaFace: s·(1−ε), the logit clamp
	invS    float32       // 1/s
	phiMax  float64       // max |φ| over the rows (bounds)
	// mod modulates a row's non-target logits (the kind's, or nil)
	mod func(a *adaCall, z, dz []float32, i int)
}

// eval computes φ and φ′ (phi, dphi) of every row from its raw target
// cosine t (the class cosine, max over K), the norms (AdaFace, MagFace),
// and the state st, and stages the new state. own reports whether row i's
// label is on this w (its φ is used); all t must be valid when the kind
// needs every row's target (NeedsTargets). It writes only the workspace.
func (a *adaCall) eval(l *MarginSoftmax, st AdaptiveState, t, norms []float32, own func(i int) bool, phi, dphi []float32) error {
	n := len(t)
	d := l.kind.desc()
	a.kind, a.on, a.s, a.mod = l.kind, true, l.s, d.mod
	a.st, a.state, a.regLoss, a.phiMax = st, st, 0, 0
	a.invS = 1 / l.s
	a.margins, a.thr = grow(a.margins, n), grow(a.thr, n)
	a.dmz, a.reg = grow(a.dmz, n), grow(a.reg, n)
	a.m2, a.m3 = grow(a.m2, n), grow(a.m3, n)
	if err := d.eval(a, l, t, norms, phi, dphi); err != nil {
		a.on = false
		return err
	}
	for i := range t {
		if own(i) {
			a.phiMax = math.Max(a.phiMax, math.Abs(float64(phi[i])))
		}
	}
	return nil
}

// modRow modulates row i's non-target logits z (s·c_j) in place, as the
// kind's mod does, and writes ∂z′/∂z into dz (as long as z; not z itself).
func (a *adaCall) modRow(z, dz []float32, i int) { a.mod(a, z, dz, i) }

func clamp64(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }

// sinPole is sin θ at t clamped to ±(1 − ClampEps): φ′'s pole convention.
func sinPole(c float64) float64 {
	cc := clamp64(c, -1+asm.ClampEps, 1-asm.ClampEps)
	return math.Sqrt(1 - cc*cc)
}

// ---- AdaFace

func describeAdaFace(l *MarginSoftmax) string {
	return fmt.Sprintf("AdaFace(s=%g, m=%g, h=%g, tAlpha=%g)", l.s, l.m2, l.ad.h, l.ad.alpha)
}

func adaFaceParams(l *MarginSoftmax) (asm.Margin, error) {
	p := l.ad
	if !(l.m2 >= 0 && float64(l.m2) < math.Pi/2) || !(p.h >= 0) || !isFinite(p.h) || !(p.alpha >= 0 && p.alpha <= 1) {
		return asm.Margin{}, fmt.Errorf("%w: AdaFace (m, h, tAlpha) = (%g, %g, %g), want 0 ≤ m < π/2, finite h ≥ 0, 0 ≤ tAlpha ≤ 1", ErrParam, l.m2, p.h, p.alpha)
	}
	return l.adaptivePlaceholder()
}

// adaFaceBounds: |φ| ≤ 1 + 2m; φ′ = sin θ′/sin θ with |c| ≤ 1 − ε.
func adaFaceBounds(l *MarginSoftmax) (float64, float64) {
	e := AdaFaceEps
	return 1 + 2*float64(l.m2), 1 / math.Sqrt(e*(2-e))
}

// evalAdaFace: head.py 77–120. The clipped norms' mean and unbiased std
// update the state first; ŝ_i = clip(h·(n_i − μ)/(σ + ε), −1, 1);
// θ′ = clip(acos c − m·ŝ, ε, π−ε), φ = cos θ′ − m − m·ŝ, and φ′ = 0 where
// the cosine clamp or the θ clip acts (torch's clamp passes the gradient at
// its bounds).
func evalAdaFace(a *adaCall, l *MarginSoftmax, t, norms, phi, dphi []float32) error {
	n := len(t)
	if n == 1 {
		return fmt.Errorf("%w: AdaFace with N = 1: the unbiased std of one norm is NaN (the authors' state turns NaN for good)", ErrShape)
	}
	eps := AdaFaceEps
	alpha := float64(l.ad.alpha)
	var sum float64
	for _, r := range norms {
		sum += clamp64(float64(r), 0.001, 100)
	}
	mean := sum / float64(n)
	var ss float64
	for _, r := range norms {
		d := clamp64(float64(r), 0.001, 100) - mean
		ss += d * d
	}
	std := math.Sqrt(ss / float64(n-1))
	mu := float32(mean*alpha + (1-alpha)*float64(a.st.BatchMean))
	sg := float32(std*alpha + (1-alpha)*float64(a.st.BatchStd))
	if !isFinite(mu) || !isFinite(sg) {
		return fmt.Errorf("%w: AdaFace state (%g, %g) leaves float32", ErrNonFinite, mu, sg)
	}
	a.state.BatchMean, a.state.BatchStd = mu, sg
	h, m, s := float64(l.ad.h), float64(l.m2), float64(l.s)
	a.hi = float32(s * (1 - eps))
	for i := range t {
		sh := clamp64((clamp64(float64(norms[i]), 0.001, 100)-float64(mu))/(float64(sg)+eps)*h, -1, 1)
		a.margins[i] = float32(sh)
		a.m2[i], a.m3[i] = float32(-m*sh), float32(m+m*sh)
	}
	// θ′ = clip(acos c − m·ŝ, ε, π−ε), φ = cos θ′ − (m + m·ŝ), φ′ = 0 where
	// a clamp acts: asm's ArcClip margin per row, the vector kernel.
	a.rows.SetRows(asm.MarginArcClip, eps, a.m2[:n], a.m3[:n])
	asm.MarginForward(phi, dphi, t, &a.rows)
	return nil
}

// modAdaFace clamps every non-target logit to ±s·(1−ε), with zero
// derivative outside (bounds included inside, as torch's clamp): the
// asm.ClampGrad kernel.
func modAdaFace(a *adaCall, z, dz []float32, _ int) { asm.ClampGrad(z, dz, -a.hi, a.hi) }

// ---- MagFace

func describeMagFace(l *MarginSoftmax) string {
	p := l.ad
	return fmt.Sprintf("MagFace(s=%g, la=%g, ua=%g, lm=%g, um=%g, λg=%g)", l.s, p.la, p.ua, p.lm, p.um, p.lambdaG)
}

func magFaceParams(l *MarginSoftmax) (asm.Margin, error) {
	p := l.ad
	if !(p.la > 0 && p.la < p.ua) || !isFinite(p.ua) || !(p.lm >= 0 && p.lm <= p.um && float64(p.um) < math.Pi/2) || !(p.lambdaG >= 0) || !isFinite(p.lambdaG) {
		return asm.Margin{}, fmt.Errorf("%w: MagFace (la, ua, lm, um, λg) = (%g, %g, %g, %g, %g), want 0 < la < ua finite, 0 ≤ lm ≤ um < π/2, finite λg ≥ 0", ErrParam, p.la, p.ua, p.lm, p.um, p.lambdaG)
	}
	k := float64(p.um-p.lm) / float64(p.ua-p.la)
	if reg := float64(p.lambdaG) / (float64(p.la) * float64(p.la)); float64(l.s)*k*2 > MaxLogit || reg > MaxLogit {
		return asm.Margin{}, fmt.Errorf("%w: MagFace s·(um−lm)/(ua−la) = %g or λg/la² = %g exceeds MaxLogit", ErrParam, float64(l.s)*k, reg)
	}
	return l.adaptivePlaceholder()
}

func magFaceBounds(l *MarginSoftmax) (float64, float64) { return 1 + float64(l.ad.um), 1 + invSinClamp }

// evalMagFace: models/magface.py 57–137. a = clamp(‖x‖, la, ua),
// m = k·(a − la) + lm; ArcFace's φ with EasyMargin or the per-row threshold
// fallback; ∂φ/∂m and the regulariser's derivative where la ≤ ‖x‖ ≤ ua.
func evalMagFace(a *adaCall, l *MarginSoftmax, t, norms, phi, dphi []float32) error {
	p := l.ad
	la, ua, lm, um := float64(p.la), float64(p.ua), float64(p.lm), float64(p.um)
	k := (um - lm) / (ua - la)
	lam, s := float64(p.lambdaG), float64(l.s)
	for i := range t {
		r := float64(norms[i])
		av := clamp64(r, la, ua)
		mi := k*(av-la) + lm
		a.margins[i] = float32(mi)
		a.regLoss += lam * (av/(ua*ua) + 1/av)
		c := clamp64(float64(t[i]), -1, 1)
		sn := math.Sqrt(1 - c*c)
		var dm float64 // ∂φ/∂m; φ and φ′ come from the per-row MarginForward below
		switch {
		case l.EasyMargin && c > 0, !l.EasyMargin && c > math.Cos(math.Pi-mi):
			dm = -(c*math.Sin(mi) + sn*math.Cos(mi))
		case l.EasyMargin:
		default: // d/dm [sin(π−m)·m] = sin m + m·cos m
			dm = -(math.Sin(mi) + mi*math.Cos(mi))
		}
		a.dmz[i], a.reg[i] = 0, 0
		if r >= la && r <= ua {
			a.dmz[i] = float32(s * dm * k)
			a.reg[i] = float32(lam * (1/(ua*ua) - 1/(av*av)))
		}
	}
	// φ = cos(θ + m_i) with EasyMargin's or the per-row threshold fallback:
	// ArcFace's margin per row, the vector kernel.
	kind := asm.MarginArc
	if l.EasyMargin {
		kind = asm.MarginArcEasy
	}
	a.rows.SetRows(kind, 1, a.margins[:len(t)], nil)
	asm.MarginForward(phi, dphi, t, &a.rows)
	return nil
}

// ---- ElasticFace

func describeElastic(l *MarginSoftmax) string {
	return fmt.Sprintf("%s(s=%g, m=%g, std=%g)", l.kind.desc().name, l.s, l.m2, l.ad.std)
}

func elasticParams(l *MarginSoftmax) (asm.Margin, error) {
	name := l.kind.desc().name
	if !isFinite(l.m2) || !(l.ad.std >= 0) || !isFinite(l.ad.std) {
		return asm.Margin{}, fmt.Errorf("%w: %s (m, std) = (%g, %g), want finite m and finite std ≥ 0", ErrParam, name, l.m2, l.ad.std)
	}
	if float64(l.ad.std) > 1e6 || math.Abs(float64(l.m2)) > 1e6 {
		return asm.Margin{}, fmt.Errorf("%w: %s (m, std) = (%g, %g), want |m|, std ≤ 1e6", ErrParam, name, l.m2, l.ad.std)
	}
	return l.adaptivePlaceholder()
}

// The draws are unbounded: the head widens phiMax by the call's own
// (adaCall.phiMax); this is the bound before the draws.
func elasticArcBounds(*MarginSoftmax) (float64, float64) { return 1, 1 + invSinClamp }

func elasticCosBounds(l *MarginSoftmax) (float64, float64) {
	return 1 + math.Abs(float64(l.m2)) + 10*float64(l.ad.std), 1
}

// evalElastic: utils/losses.py 36–88. The draws (Margins, or the seeded
// Box–Muller stream of (Seed, Calls)), ElasticPlus's assignment
// margin_sorted[argsort_desc(t)] (ties to the lower row), then φ = cos(θ+m_i)
// (Arc, no fallback) or t − m_i (Cos).
func evalElastic(a *adaCall, l *MarginSoftmax, t, _, phi, dphi []float32) error {
	n := len(t)
	draws := a.margins[:n]
	if l.Margins != nil {
		copy(draws, l.Margins)
	} else {
		g := newSplitMix64(l.Seed, a.st.Calls)
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
	// φ = cos(θ + m_i) with no fallback (Combined with m1 = 1) or t − m_i:
	// the margin per row, the vector kernel.
	if l.kind == kindElasticCos {
		a.rows.SetRows(asm.MarginCos, 1, draws, nil)
	} else {
		a.rows.SetRows(asm.MarginCombined, 1, draws, nil)
	}
	asm.MarginForward(phi, dphi, t, &a.rows)
	return nil
}

// ---- CurricularFace

func describeCurricular(l *MarginSoftmax) string {
	return fmt.Sprintf("CurricularFace(s=%g, m=%g, alpha=%g)", l.s, l.m2, l.ad.alpha)
}

func curricularParams(l *MarginSoftmax) (asm.Margin, error) {
	if !(l.m2 >= 0 && float64(l.m2) < math.Pi/2) || !(l.ad.alpha >= 0 && l.ad.alpha <= 1) {
		return asm.Margin{}, fmt.Errorf("%w: CurricularFace (m, alpha) = (%g, %g), want 0 ≤ m < π/2, 0 ≤ alpha ≤ 1", ErrParam, l.m2, l.ad.alpha)
	}
	return l.adaptivePlaceholder()
}

// curricularBounds: a hard negative's c·(T+c) is at most 2, its derivative
// T + 2c at most 3.
func curricularBounds(l *MarginSoftmax) (float64, float64) {
	return 2 + float64(l.m2), math.Max(3, 1+invSinClamp)
}

// evalCurricular: head/metrics.py 85–105. T ← α·mean(t) + (1−α)·T first;
// the mask threshold φ_i = t·cos m − sqrt(1−t²)·sin m (the formula, even
// past π) kept as the logit s·φ_i; the target ArcFace's with the threshold
// fallback t − m·sin m.
func evalCurricular(a *adaCall, l *MarginSoftmax, t, _, phi, dphi []float32) error {
	n := len(t)
	var sum float64
	for _, v := range t {
		sum += clamp64(float64(v), -1, 1)
	}
	alpha := float64(l.ad.alpha)
	mean := 0.0
	if n > 0 {
		mean = sum / float64(n)
	}
	a.state.T = float32(mean*alpha + (1-alpha)*float64(a.st.T))
	a.t32 = a.state.T
	// the threshold s·cos(θ+m) without fallback (Combined with m1 = 1, m
	// in every row), then the target's ArcFace margin: vector kernels.
	for i := range a.m2[:n] {
		a.m2[i] = l.m2
	}
	a.rows.SetRows(asm.MarginCombined, 1, a.m2[:n], nil)
	asm.MarginForward(a.thr, nil, t, &a.rows)
	asm.Scale(a.thr[:n], a.thr[:n], l.s)
	a.arc = asm.NewMargin(asm.MarginArc, 1, float64(l.m2), 0, 0, 0)
	asm.MarginForward(phi, dphi, t, &a.arc)
	return nil
}

// modCurricular maps row i's hard negatives (z > s·φ_i, strict) to
// z·(T + z/s), derivative T + 2c: the asm.HardNegatives kernel.
func modCurricular(a *adaCall, z, dz []float32, i int) {
	asm.HardNegatives(z, dz, a.thr[i], a.t32, a.invS)
}

func clampF(v float32) float32 { return min(max(v, -1), 1) }

// checkDraws validates Margins for a call of n rows.
func (l *MarginSoftmax) checkDraws(n int) error {
	if l.Margins == nil || !l.kind.desc().draws {
		return nil
	}
	if len(l.Margins) != n {
		return fmt.Errorf("%w: %s Margins has %d values for %d rows", ErrShape, l.kind.desc().name, len(l.Margins), n)
	}
	if i := indexNonFinite(l.Margins); i >= 0 {
		return fmt.Errorf("%w: %s Margins[%d] = %v", ErrNonFinite, l.kind.desc().name, i, l.Margins[i])
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
	if l.kind.desc().margins {
		l.lastMargins = append(l.lastMargins[:0], a.margins[:n]...)
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
	if h.kind.desc().normGrad && h.ada.on {
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
	if d := l.kind.desc(); d.manyRows && n == 1 {
		return fmt.Errorf("%w: %s with N = 1: the unbiased std of one norm is NaN (the authors' state turns NaN for good)", ErrShape, d.name)
	}
	if n == 0 {
		return nil
	}
	return l.checkDraws(n)
}
