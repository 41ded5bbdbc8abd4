package loss

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/asm"
)

// kindDesc describes one margin kind: everything the head, the cosine entry
// and the sharded head ask of a kind, so that their phases never switch on
// the kind itself. A new kind is a constant, a row of kinds, the functions
// that row names (in the kind's own file) and, for a new φ, its asm margin
// body.
type kindDesc struct {
	name string

	// The logits. scaled: x and W rows normalised and z = s·cos (the row
	// scale A_i = s); rowNorm: A_i = ‖x_i‖ (SphereFace, L-Softmax);
	// colNorm: B_j = ‖W_j‖ and a zero row of x keeps its linear logits
	// (L-Softmax).
	scaled, rowNorm, colNorm bool

	subCenters bool // SubCenters > 1 allowed
	detach     bool // DetachMargin applies
	norms      bool // the margin reads ‖x_i‖ (LossFromCosines needs LossFromCosinesNorms)
	targets    bool // needs every row's target cosine before its logits (NeedsTargets)
	draws      bool // ElasticPlus, Seed and Margins apply (and NeedsTargets with ElasticPlus)
	margins    bool // AppendMargins reports a per-row margin
	normGrad   bool // the loss depends on ‖x_i‖ beyond x̂ (MagFace: dnorms, the dx radial term, a regulariser)
	manyRows   bool // a batch of one row is ErrShape (AdaFace: the unbiased std of one norm is NaN)

	// params validates the constructor's parameters (after the common
	// checks of Reduction, the options and s) and returns φ's asm margin
	// (a placeholder for the adaptive kinds, whose φ is per row: eval).
	params func(l *MarginSoftmax) (asm.Margin, error)
	// bounds returns bounds on |φ| and |φ′| over t ∈ [−1, 1] (φ′ with the
	// pole clamp; DetachMargin is applied by phiBounds).
	bounds func(l *MarginSoftmax) (phiMax, dphiMax float64)
	// describe is String's text.
	describe func(l *MarginSoftmax) string

	// The adaptive kinds (nil otherwise): eval computes every row's φ, φ′
	// and margin from the target cosines, the norms and the state into a
	// (a's common fields set), and stages the new state; mod modulates one
	// row's non-target logits (AdaFace's clamp, CurricularFace's hard
	// negatives) with their derivative, by a vector kernel (asm's modulate
	// family).
	eval func(a *adaCall, l *MarginSoftmax, t, norms, phi, dphi []float32) error
	mod  func(a *adaCall, z, dz []float32, i int)
}

// kinds is the table of margin kinds, indexed by headKind. It is filled by
// init, since its functions read it back (their kind's name).
var kinds [kindCount]kindDesc

func init() { kinds = kindTable() }

func kindTable() [kindCount]kindDesc {
	return [...]kindDesc{
		kindNone: {name: "MarginSoftmax"},
		kindArc: {name: "ArcFace", scaled: true, subCenters: true, detach: true,
			params: arcParams, bounds: arcBounds, describe: describeSM},
		kindCos: {name: "CosFace", scaled: true, subCenters: true, detach: true,
			params: cosParams, bounds: cosBounds, describe: describeSM},
		kindCombined: {name: "CombinedMargin", scaled: true, subCenters: true, detach: true,
			params: combinedParams, bounds: combinedBounds, describe: describeCombined},
		kindSphere: {name: "SphereFace", rowNorm: true,
			params: psiParams, bounds: psiBounds, describe: describePsi},
		kindLarge: {name: "LargeMargin", rowNorm: true, colNorm: true,
			params: psiParams, bounds: psiBounds, describe: describePsi},
		kindAda: {name: "AdaFace", scaled: true, subCenters: true, norms: true, margins: true, manyRows: true,
			params: adaFaceParams, bounds: adaFaceBounds, describe: describeAdaFace,
			eval: evalAdaFace, mod: modAdaFace},
		kindMag: {name: "MagFace", scaled: true, subCenters: true, norms: true, margins: true, normGrad: true,
			params: magFaceParams, bounds: magFaceBounds, describe: describeMagFace,
			eval: evalMagFace},
		kindElasticArc: {name: "ElasticArcFace", scaled: true, subCenters: true, detach: true, draws: true, margins: true,
			params: elasticParams, bounds: elasticArcBounds, describe: describeElastic,
			eval: evalElastic},
		kindElasticCos: {name: "ElasticCosFace", scaled: true, subCenters: true, detach: true, draws: true, margins: true,
			params: elasticParams, bounds: elasticCosBounds, describe: describeElastic,
			eval: evalElastic},
		kindCurricular: {name: "CurricularFace", scaled: true, subCenters: true, targets: true,
			params: curricularParams, bounds: curricularBounds, describe: describeCurricular,
			eval: evalCurricular, mod: modCurricular},
	}
}

// desc returns the kind's row of kinds (kindNone's for a value outside it).
func (k headKind) desc() *kindDesc {
	if k < 0 || int(k) >= len(kinds) {
		return &kinds[kindNone]
	}
	return &kinds[k]
}

// adaptive reports whether the kind's margin is evaluated per row and call.
func (k headKind) adaptive() bool { return k.desc().eval != nil }

// invSinClamp is 1/sin θ̃ at the pole clamp |t| = 1 − ClampEps.
var invSinClamp = 1 / math.Sqrt(asm.ClampEps*(2-asm.ClampEps))

func describeSM(l *MarginSoftmax) string {
	return fmt.Sprintf("%s(s=%g, m=%g)", l.kind.desc().name, l.s, l.m2)
}

func describeCombined(l *MarginSoftmax) string {
	return fmt.Sprintf("%s(s=%g, m1=%g, m2=%g, m3=%g)", l.kind.desc().name, l.s, l.m1, l.m2, l.m3)
}

func describePsi(l *MarginSoftmax) string {
	return fmt.Sprintf("%s(m=%d, λ=%g)", l.kind.desc().name, l.intM, l.lambda)
}

func arcParams(l *MarginSoftmax) (asm.Margin, error) {
	if !(l.m2 >= 0 && float64(l.m2) < math.Pi/2) {
		return asm.Margin{}, fmt.Errorf("%w: ArcFace margin m = %g, want 0 ≤ m < π/2", ErrParam, l.m2)
	}
	kind := asm.MarginArc
	if l.EasyMargin {
		kind = asm.MarginArcEasy
	}
	return asm.NewMargin(kind, 1, float64(l.m2), 0, 0, 0), nil
}

func arcBounds(l *MarginSoftmax) (float64, float64) {
	m := float64(l.m2)
	return 1 + m*math.Sin(m), 1 + math.Sin(m)*invSinClamp
}

func cosParams(l *MarginSoftmax) (asm.Margin, error) {
	if !(l.m2 >= 0) || !isFinite(l.m2) {
		return asm.Margin{}, fmt.Errorf("%w: CosFace margin m = %g, want finite m ≥ 0", ErrParam, l.m2)
	}
	return asm.NewMargin(asm.MarginCos, 1, float64(l.m2), 0, 0, 0), nil
}

func cosBounds(l *MarginSoftmax) (float64, float64) { return 1 + float64(l.m2), 1 }

func combinedParams(l *MarginSoftmax) (asm.Margin, error) {
	if !(l.m1 > 0 && l.m1 <= 8) || !isFinite(l.m2) || !isFinite(l.m3) {
		return asm.Margin{}, fmt.Errorf("%w: CombinedMargin (m1, m2, m3) = (%g, %g, %g), want 0 < m1 ≤ 8 and finite m2, m3", ErrParam, l.m1, l.m2, l.m3)
	}
	return asm.NewMargin(asm.MarginCombined, float64(l.m1), float64(l.m2), float64(l.m3), 0, 0), nil
}

func combinedBounds(l *MarginSoftmax) (float64, float64) {
	return 1 + math.Abs(float64(l.m3)), math.Max(1, float64(l.m1)*invSinClamp)
}

func psiParams(l *MarginSoftmax) (asm.Margin, error) {
	name := l.kind.desc().name
	if l.intM < 1 || l.intM > 8 {
		return asm.Margin{}, fmt.Errorf("%w: %s margin m = %d, want an integer in 1..8", ErrParam, name, l.intM)
	}
	if !(l.lambda >= 0) || !isFinite(l.lambda) {
		return asm.Margin{}, fmt.Errorf("%w: %s λ = %g, want finite λ ≥ 0", ErrParam, name, l.lambda)
	}
	return asm.NewMargin(asm.MarginPsi, 0, 0, 0, l.intM, float64(l.lambda)), nil
}

// psiBounds: ψ ∈ [1−2m, 1], |ψ′| = m·|U_{m−1}| ≤ m².
func psiBounds(l *MarginSoftmax) (float64, float64) {
	mi := float64(l.intM)
	return 2*mi - 1, math.Max(1, mi*mi)
}
