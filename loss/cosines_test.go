package loss_test

// Tests of MarginSoftmax.LossFromCosines and of the SubCenters and
// LabelSmoothing options, in the layers of gradcheck_test.go:
//
//  1. refCosines, a float64 reference written from the documented
//     definitions, whose hand-derived ∂L/∂cos is verified against float64
//     central differences (TestFDRef64Cosines; DetachMargin through the
//     frozen-offset surrogate, as for Loss).
//  2. The float32 API against that reference (TestGradRef64Cosines) and
//     against PyTorch float64 goldens (TestGoldenCosines,
//     testdata/golden_cosines.json), with the golden tolerances of
//     golden_test.go: loss |got − ref| ≤ 1e-4·max(|ref|, 1e-6), gradient
//     max|got − ref| ≤ 1e-3·max|ref|. The API works in float32 on float32
//     inputs the reference sees exactly: the logits s·c carry one rounding
//     (2⁻²⁴ relative), the log-sum-exp (C+10.5)·2⁻²³ relative in its sum,
//     and p_j = e^(z_j − lse) the rounding of z_j − lse (|z| ≤ 2s ≤ 128, so
//     ≤ 2⁻¹⁷ absolute in the exponent): every term is below 1e-5 relative,
//     a hundredfold inside both tolerances, which leave room for the
//     vector levels' kernels (each within a few 2⁻²³ of the generic one).
//  3. Directional finite differences of the float32 API itself
//     (TestFDAPICosines), through dirCheck.
//
// and: equality with Loss (x̂·Ŵᵀ fed to LossFromCosines; the gradient
// chained through the normalisation), the Loss-side goldens (skipped while
// Loss refuses SubCenters and LabelSmoothing), errors with outputs
// untouched, allocations, determinism across GOMAXPROCS, poles, ties and
// confident rows.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"weak"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// ---------------------------------------------------------------------------
// Goldens

// goldenCosineCase is one LossFromCosines case of golden_cosines.json: cos is
// N×(C·K) and labels are class indices in [0, C).
type goldenCosineCase struct {
	Name           string
	Kind           string // arcface, cosface, combined
	S, M           float32
	M1, M2, M3     float32
	Easy, Detach   bool
	Reduction      string
	SubCenters     int     `json:"sub_centers"`
	LabelSmoothing float32 `json:"label_smoothing"`
	N, C, K        int
	Cos            []float32
	Labels         []int32
	Loss           float64
	DCos           []float64 `json:"dcos"`
}

// goldenCosineLossCase is one Loss case of golden_cosines.json: x is N×D, w
// is (C·K)×D (class c owns rows c·K … c·K+K−1), labels are in [0, C), and
// Loss, DX, DW are PyTorch's float64 loss and gradients. Kind is any of the
// five; K > 1 only for arcface, cosface and combined.
type goldenCosineLossCase struct {
	Name           string
	Kind           string
	S, M           float32
	M1, M2, M3     float32
	Mi             int
	Lambda         float32 `json:"lambda"`
	Easy, Detach   bool
	Reduction      string
	SubCenters     int     `json:"sub_centers"`
	LabelSmoothing float32 `json:"label_smoothing"`
	N, C, D, K     int
	X, W           []float32
	Labels         []int32
	Loss           float64
	DX             []float64 `json:"dx"`
	DW             []float64 `json:"dw"`
}

// cosineGoldens is golden_cosines.json.
type cosineGoldens struct {
	CosineCases []goldenCosineCase     `json:"cosine_cases"`
	LossCases   []goldenCosineLossCase `json:"loss_cases"`
}

// loadCosineGoldens reads testdata/golden_cosines.json and checks the shapes
// of every case.
func loadCosineGoldens(t *testing.T) cosineGoldens {
	t.Helper()
	var doc cosineGoldens
	loadGolden(t, "golden_cosines.json", &doc)
	require.NotEmpty(t, doc.CosineCases)
	require.NotEmpty(t, doc.LossCases)
	for _, gc := range doc.CosineCases {
		require.Equal(t, max(gc.SubCenters, 1), gc.K, gc.Name)
		require.Len(t, gc.Cos, gc.N*gc.C*gc.K, gc.Name)
		require.Len(t, gc.DCos, gc.N*gc.C*gc.K, gc.Name)
		require.Len(t, gc.Labels, gc.N, gc.Name)
	}
	for _, gc := range doc.LossCases {
		require.Equal(t, max(gc.SubCenters, 1), gc.K, gc.Name)
		require.Len(t, gc.X, gc.N*gc.D, gc.Name)
		require.Len(t, gc.W, gc.C*gc.K*gc.D, gc.Name)
		require.Len(t, gc.DX, gc.N*gc.D, gc.Name)
		require.Len(t, gc.DW, gc.C*gc.K*gc.D, gc.Name)
		require.Len(t, gc.Labels, gc.N, gc.Name)
	}
	return doc
}

func (gc goldenCosineCase) spec(t *testing.T) cosSpec {
	return cosSpec{marginSpec: marginSpec{Kind: gc.Kind, S: float64(gc.S), M: float64(gc.M), M1: float64(gc.M1),
		M2: float64(gc.M2), M3: float64(gc.M3), Easy: gc.Easy, Detach: gc.Detach, Red: parseReduction(t, gc.Reduction)},
		K: gc.K, Eps: float64(gc.LabelSmoothing)}
}

// api returns the MarginSoftmax of a Loss golden case, SubCenters and
// LabelSmoothing set.
func (gc goldenCosineLossCase) api(t *testing.T) *loss.MarginSoftmax {
	sp := marginSpec{Kind: gc.Kind, S: float64(gc.S), M: float64(gc.M), M1: float64(gc.M1),
		M2: float64(gc.M2), M3: float64(gc.M3), Mi: gc.Mi, Lambda: float64(gc.Lambda),
		Easy: gc.Easy, Detach: gc.Detach, Red: parseReduction(t, gc.Reduction)}
	l := sp.api()
	l.SubCenters = gc.SubCenters
	l.LabelSmoothing = gc.LabelSmoothing
	return l
}

func TestGoldenCosines(t *testing.T) { forEachLevel(t, testGoldenCosines) }

func testGoldenCosines(t *testing.T) {
	doc := loadCosineGoldens(t)
	tab := newErrTable()
	for _, gc := range doc.CosineCases {
		t.Run(gc.Name, func(t *testing.T) {
			l := gc.spec(t).api()
			cols := gc.C * gc.K
			cos := matOf(gc.N, cols, gc.Cos)
			dcos := nanMatrix(gc.N, cols)
			got, err := l.LossFromCosines(cos, gc.Labels, &dcos)
			require.NoError(t, err)
			kind := fmt.Sprintf("cos-%s(k=%d)", gc.Kind, gc.K)
			checkLoss(t, tab, kind, gc.Name, got, gc.Loss)
			checkGrad(t, tab, kind, gc.Name, "dcos", dcos.Data, gc.DCos, cols)
			require.Equal(t, gc.Cos, cos.Data, "cos modified")

			// The loss does not depend on whether the gradient is asked for.
			got2, err := l.LossFromCosines(cos, gc.Labels, nil)
			require.NoError(t, err)
			require.Equal(t, math.Float32bits(got), math.Float32bits(got2), "loss without dcos")
			// In place: the bits of a separate dcos.
			inPlace := matOf(gc.N, cols, gc.Cos)
			got3, err := l.LossFromCosines(inPlace, gc.Labels, &inPlace)
			require.NoError(t, err)
			require.Equal(t, math.Float32bits(got), math.Float32bits(got3))
			requireBits(t, dcos.Data, inPlace.Data, "in-place dcos")
			// Accumulate: old + the overwriting call's gradient, bitwise.
			l.Accumulate = true
			acc := matOf(gc.N, cols, gc.Cos) // any finite old values
			old := slices.Clone(acc.Data)
			_, err = l.LossFromCosines(cos, gc.Labels, &acc)
			require.NoError(t, err)
			for k := range old {
				require.Equal(t, math.Float32bits(old[k]+dcos.Data[k]), math.Float32bits(acc.Data[k]), "accumulated dcos[%d]", k)
			}
		})
	}
	tab.log(t, "golden")
}

// TestGoldenCosinesFromXW feeds the Loss goldens' cosines x̂·Ŵᵀ (float64,
// rounded once to float32) to LossFromCosines and chains ∂L/∂cos through the
// normalisation: the loss and dx, dw must match PyTorch's Loss goldens with
// the golden tolerances (the rounding of cos adds 2⁻²⁴ relative to each
// cosine, far inside them). SphereFace and LargeMargin need the norms, so
// only the normalised kinds take part.
func TestGoldenCosinesFromXW(t *testing.T) { forEachLevel(t, testGoldenCosinesFromXW) }

func testGoldenCosinesFromXW(t *testing.T) {
	doc := loadCosineGoldens(t)
	tab := newErrTable()
	for _, gc := range doc.LossCases {
		if gc.Kind == "sphereface" || gc.Kind == "largemargin" {
			continue
		}
		t.Run(gc.Name, func(t *testing.T) {
			rows := gc.C * gc.K
			x, w := to64(gc.X), to64(gc.W)
			cos := cosinesOf(x, w, gc.N, rows, gc.D)
			dcos := nanMatrix(gc.N, rows)
			got, err := gc.api(t).LossFromCosines(matOf(gc.N, rows, cos), gc.Labels, &dcos)
			require.NoError(t, err)
			kind := fmt.Sprintf("xw-%s(k=%d)", gc.Kind, gc.K)
			checkLoss(t, tab, kind, gc.Name, got, gc.Loss)
			dx, dw := chainCosines(x, w, dcos.Data, gc.N, rows, gc.D)
			checkGrad(t, tab, kind, gc.Name, "dx", to32(dx), gc.DX, gc.D)
			checkGrad(t, tab, kind, gc.Name, "dw", to32(dw), gc.DW, gc.D)
		})
	}
	tab.log(t, "golden(x̂·Ŵᵀ)")
}

// TestGoldenCosinesLoss checks Loss itself against the sub-center and
// label-smoothing goldens. Until head.go honours the two options Loss
// refuses them (ErrParam, "not supported yet by Loss") and the cases skip.
func TestGoldenCosinesLoss(t *testing.T) { forEachLevelAndPath(t, testGoldenCosinesLoss) }

func testGoldenCosinesLoss(t *testing.T) {
	doc := loadCosineGoldens(t)
	tab := newErrTable()
	for _, gc := range doc.LossCases {
		t.Run(gc.Name, func(t *testing.T) {
			rows := gc.C * gc.K
			x, w := matOf(gc.N, gc.D, gc.X), matOf(rows, gc.D, gc.W)
			dx, dw := nanMatrix(gc.N, gc.D), nanMatrix(rows, gc.D)
			got, err := gc.api(t).Loss(x, w, gc.Labels, &dx, &dw)
			require.NoError(t, err)
			kind := fmt.Sprintf("loss-%s(k=%d)", gc.Kind, gc.K)
			checkLoss(t, tab, kind, gc.Name, got, gc.Loss)
			checkGrad(t, tab, kind, gc.Name, "dx", dx.Data, gc.DX, gc.D)
			checkGrad(t, tab, kind, gc.Name, "dw", dw.Data, gc.DW, gc.D)
			require.Equal(t, gc.X, x.Data, "x modified")
			require.Equal(t, gc.W, w.Data, "w modified")
		})
	}
	tab.log(t, "golden")
}

func requireBits(t *testing.T, want, got []float32, what string) {
	t.Helper()
	require.Len(t, got, len(want), what)
	for k := range want {
		if math.Float32bits(want[k]) != math.Float32bits(got[k]) {
			t.Fatalf("%s[%d]: %v, want the bits of %v", what, k, got[k], want[k])
		}
	}
}

// cosinesOf returns x̂·Ŵᵀ (n×rows) computed in float64 and rounded once to
// float32, clamped to [−1, 1].
func cosinesOf(x, w []float64, n, rows, d int) []float32 {
	unit := func(v []float64) []float64 {
		nr := math.Sqrt(dot(v, v))
		u := make([]float64, len(v))
		for k := range v {
			u[k] = v[k] / nr
		}
		return u
	}
	out := make([]float32, n*rows)
	for i := range n {
		xi := unit(x[i*d : (i+1)*d])
		for j := range rows {
			out[i*rows+j] = float32(min(max(dot(xi, unit(w[j*d:(j+1)*d])), -1), 1))
		}
	}
	return out
}

// chainCosines turns ∂L/∂cos (n×rows) for cos = x̂·Ŵᵀ into ∂L/∂x and ∂L/∂W,
// in float64:
//
//	∂L/∂x_i = Σ_j G_ij·(Ŵ_j − c_ij·x̂_i)/‖x_i‖,  ∂L/∂W_j = Σ_i G_ij·(x̂_i − c_ij·Ŵ_j)/‖W_j‖
func chainCosines(x, w []float64, dcos []float32, n, rows, d int) (dx, dw []float64) {
	dx, dw = make([]float64, n*d), make([]float64, rows*d)
	xn, wn := make([]float64, n), make([]float64, rows)
	for i := range n {
		xn[i] = math.Sqrt(dot(x[i*d:(i+1)*d], x[i*d:(i+1)*d]))
	}
	for j := range rows {
		wn[j] = math.Sqrt(dot(w[j*d:(j+1)*d], w[j*d:(j+1)*d]))
	}
	for i := range n {
		for j := range rows {
			g := float64(dcos[i*rows+j])
			if g == 0 {
				continue
			}
			c := dot(x[i*d:(i+1)*d], w[j*d:(j+1)*d]) / (xn[i] * wn[j])
			for k := range d {
				xh, wh := x[i*d+k]/xn[i], w[j*d+k]/wn[j]
				dx[i*d+k] += g * (wh - c*xh) / xn[i]
				dw[j*d+k] += g * (xh - c*wh) / wn[j]
			}
		}
	}
	return dx, dw
}

// ---------------------------------------------------------------------------
// float64 reference

// cosSpec is a MarginSoftmax configuration for LossFromCosines: a normalised
// kind with K sub-centers and label smoothing ε (a float32 value).
type cosSpec struct {
	marginSpec
	K   int
	Eps float64
}

func (sp cosSpec) String() string {
	return fmt.Sprintf("%v/k%d/ε%g", sp.marginSpec, sp.K, float32(sp.Eps))
}

func (sp cosSpec) api() *loss.MarginSoftmax {
	l := sp.marginSpec.api()
	l.SubCenters = sp.K
	l.LabelSmoothing = float32(sp.Eps)
	return l
}

type cosRef struct {
	loss  float64
	dcos  []float64 // n×(c·k)
	z     []float64 // n×c logits
	t, ht []float64 // per row: target cosine and ∂z_y/∂t
	arg   []int     // n×c: each class's arg-max column
}

// phiPole is φ and φ′ with the package's pole convention (doc.go,
// asm.MarginForward): φ exact, φ′ evaluated wholly at t clamped to
// [−1+1e-6, 1−1e-6]. It is marginSpec.phi for |t| ≤ 1 − 1e-6; beyond,
// marginSpec.phi (like the x, w goldens' SafeAcos) clamps only the 1/sin θ
// factor, which at |t| = 1 differs from the convention by cos m for ArcFace
// (φ′ = cos m + t̃·sin m/sin θ̃ against sin(θ + m)/sin θ̃) and more for
// CombinedMargin. Loss never meets the difference where it matters: at
// exactly |t| = 1 its gradients through the normalisation vanish.
func (sp cosSpec) phiPole(t float64) (v, dv float64) {
	v, _ = sp.phi(t)
	_, dv = sp.phi(clampT(t))
	return v, dv
}

// refCosines evaluates LossFromCosines in float64: per class the largest of
// its K cosines (the lowest column on ties), z_j = s·c_j, z_y = s·φ(c_y)
// (phiPole), row loss lse(z) − (1−ε)·z_y − (ε/C)·Σ_j z_j, computed as
// log1p(Σ_{j≠y} e^(z_j − z_y)) + (ε/C)·Σ_j (z_y − z_j) so that confident rows
// and C = 1 keep their precision, and ∂L/∂cos at class j's arg-max column
// r·(p_j − (1−ε)[j=y] − ε/C)·∂z_j/∂c_j (0 at the other columns). off, when
// non-nil, replaces φ(t) by t + off_i (DetachMargin's frozen-offset
// surrogate).
func refCosines(sp cosSpec, cos []float64, labels []int32, n, c int, off []float64) cosRef {
	k := sp.K
	cols := c * k
	r := cosRef{dcos: make([]float64, n*cols), z: make([]float64, n*c), t: make([]float64, n),
		ht: make([]float64, n), arg: make([]int, n*c)}
	scale := redScale(sp.Red, n)
	cls := make([]float64, c)
	cf := float64(c)
	for i := range n {
		row := cos[i*cols : (i+1)*cols]
		for j := range c {
			best, at := row[j*k], j*k
			for a := 1; a < k; a++ {
				if row[j*k+a] > best {
					best, at = row[j*k+a], j*k+a
				}
			}
			cls[j], r.arg[i*c+j] = best, at
		}
		y := int(labels[i])
		z := r.z[i*c : (i+1)*c]
		for j := range c {
			z[j] = sp.S * cls[j]
		}
		v, dv := sp.phiPole(cls[y])
		if off != nil {
			v, dv = cls[y]+off[i], 1
		}
		if sp.Detach {
			dv = 1
		}
		z[y], r.ht[i], r.t[i] = sp.S*v, sp.S*dv, cls[y]
		var others, spread float64 // Σ_{j≠y} e^(z_j − z_y), Σ_j (z_y − z_j)
		for j, zj := range z {
			if j != y {
				others += math.Exp(zj - z[y])
				spread += z[y] - zj
			}
		}
		nll := math.Log1p(others)
		r.loss += scale * (nll + sp.Eps/cf*spread)
		lse := z[y] + nll
		for j := range c {
			g := math.Exp(z[j]-lse) - sp.Eps/cf
			dzdc := sp.S
			if j == y {
				// p_y − 1 = −r/(1 + r), precise for confident rows
				g = -others/(1+others) + sp.Eps - sp.Eps/cf
				dzdc = r.ht[i]
			}
			r.dcos[i*cols+r.arg[i*c+j]] = scale * g * dzdc
		}
	}
	return r
}

// quantCos rounds to the 2^-12 grid inside [−0.97, 0.97]: such values, and
// v + j·2^-7·u with |j| ≤ 2 and u on the same grid in [−1, 1], are exact in
// float32 and stay inside [−1, 1].
func quantCos(v float64) float64 { return math.Round(min(max(v, -0.97), 0.97)*4096) / 4096 }

// drawCosines draws n rows of c·k cosines on the 2^-12 grid in
// [−0.97, 0.97]: the target cosine (its class's largest) at an angle
// θ ∈ [0, π] to keep every branch visited and at least gap from every
// branch boundary of sp, and every class's two largest cosines at least
// subGap apart (so that small steps keep the arg-max).
func drawCosines(t *testing.T, rng *rand.Rand, sp cosSpec, n, c int, gap, subGap float64) (cos []float64, labels []int32) {
	t.Helper()
	k := sp.K
	cols := c * k
	cos = make([]float64, n*cols)
	labels = make([]int32, n)
	drawClass := func(sub []float64) {
		for try := 0; ; try++ {
			require.Less(t, try, 10000, "cannot draw a class")
			for a := range sub {
				sub[a] = quantCos(2*rng.Float64() - 1)
			}
			if k == 1 || top2Gap(sub) >= subGap {
				return
			}
		}
	}
	for i := range n {
		y := rng.IntN(c)
		labels[i] = int32(y)
		row := cos[i*cols : (i+1)*cols]
		for j := range c {
			drawClass(row[j*k : (j+1)*k])
		}
		for try := 0; ; try++ {
			require.Less(t, try, 10000, "cannot draw a target for %v", sp)
			tv := quantCos(math.Cos(rng.Float64() * math.Pi))
			if _, dist := sp.branch(tv); dist < gap || tv-subGap < -0.97 {
				continue
			}
			sub := row[y*k : (y+1)*k]
			pos := rng.IntN(k)
			for a := range sub {
				sub[a] = quantCos(tv - subGap - rng.Float64()*(tv-subGap+0.97))
			}
			sub[pos] = tv
			if k == 1 || (top2Gap(sub) >= subGap && slices.Max(sub) == tv) {
				break
			}
		}
	}
	return cos, labels
}

// top2Gap is the distance between the two largest values of s (len ≥ 2).
func top2Gap(s []float64) float64 {
	a, b := math.Inf(-1), math.Inf(-1)
	for _, v := range s {
		if v > a {
			a, b = v, a
		} else if v > b {
			b = v
		}
	}
	return a - b
}

// cosSpecs crosses the normalised kinds of allMarginSpecs (s = 6) with
// K ∈ {1, 3} and ε ∈ {0, 0.2}.
func cosSpecs() []cosSpec {
	var out []cosSpec
	q := 0
	for _, sp := range allMarginSpecs() {
		if !sp.normalised() {
			continue
		}
		for _, k := range []int{1, 3} {
			for _, eps := range []float64{0, f32(0.2)} {
				s := cosSpec{marginSpec: sp, K: k, Eps: eps}
				if q%3 == 1 {
					s.Red = loss.Sum
				}
				q++
				out = append(out, s)
			}
		}
	}
	return out
}

// detachCosOffsets returns φ(t_i) − t_i at the reference's targets.
func detachCosOffsets(sp cosSpec, ref cosRef) []float64 {
	off := make([]float64, len(ref.t))
	for i, t := range ref.t {
		v, _ := sp.phi(t)
		off[i] = v - t
	}
	return off
}

// cosSig lists every row's branch and every class's arg-max column.
func cosSig(sp cosSpec, ref cosRef) []int {
	sig := slices.Clone(ref.arg)
	for _, t := range ref.t {
		b, _ := sp.branch(t)
		sig = append(sig, b)
	}
	return sig
}

// ---------------------------------------------------------------------------
// Layer 1: the reference against float64 central differences

func TestFDRef64Cosines(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	tab := newErrTable()
	tab.gradLabel = "|fd − analytic|/max|g|"
	for _, sp := range cosSpecs() {
		for _, shp := range [][2]int{{3, 4}, {2, 1}, {4, 7}} {
			n, c := shp[0], shp[1]
			at := fmt.Sprintf("%v %dx%d", sp, n, c)
			t.Run(at, func(t *testing.T) {
				cos, labels := drawCosines(t, rng, sp, n, c, 1e-2, 1e-2)
				base := refCosines(sp, cos, labels, n, c, nil)
				var off []float64
				if sp.Detach {
					off = detachCosOffsets(sp, base)
					sur := refCosines(sp, cos, labels, n, c, off)
					require.InDelta(t, base.loss, sur.loss, 1e-12*max(1, math.Abs(base.loss)))
				}
				if c == 1 {
					// One class: the loss is identically 0, whatever ε.
					require.Zero(t, base.loss)
					return
				}
				sig := cosSig(sp, base)
				checkFD64(t, tab, "cos-"+sp.Kind, at, func(p []float64) float64 {
					r := refCosines(sp, p, labels, n, c, off)
					require.Equal(t, sig, cosSig(sp, r), "step crossed a branch or changed an arg-max")
					return r.loss
				}, cos, base.dcos)
			})
		}
	}
	tab.log(t, "fd64(ref)")
}

// ---------------------------------------------------------------------------
// Layer 2: the API against the reference

func TestGradRef64Cosines(t *testing.T) { forEachLevel(t, testGradRef64Cosines) }

func testGradRef64Cosines(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	tab := newErrTable()
	shapes := [][2]int{{5, 7}, {1, 1}, {70, 40}, {3, 2500}, {2, 1100}}
	for q, sp := range cosSpecs() {
		for _, s := range []float64{6, 64} {
			sp.S = s
			shp := shapes[q%len(shapes)]
			if q%7 == 0 {
				shp = shapes[3+q%2] // several blocks of classes
			}
			n, c := shp[0], shp[1]
			at := fmt.Sprintf("%v %dx%d", sp, n, c)
			t.Run(at, func(t *testing.T) {
				cos, labels := drawCosines(t, rng, sp, n, c, 1e-3, 1e-3)
				ref := refCosines(sp, cos, labels, n, c, nil)
				cols := c * sp.K
				dcos := nanMatrix(n, cols)
				got, err := sp.api().LossFromCosines(matOf(n, cols, to32(cos)), labels, &dcos)
				require.NoError(t, err)
				checkLoss(t, tab, "cos-"+sp.Kind, at, got, ref.loss)
				checkGrad(t, tab, "cos-"+sp.Kind, at, "dcos", dcos.Data, ref.dcos, cols)
			})
		}
	}
	tab.log(t, "ref64")
}

// ---------------------------------------------------------------------------
// Layer 3: directional finite differences of the API

func TestFDAPICosines(t *testing.T) { forEachLevel(t, testFDAPICosines) }

func testFDAPICosines(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	tab := newErrTable()
	tab.gradLabel = "|FD − Σg·v|/tol"
	for _, sp := range cosSpecs() {
		if sp.Detach {
			continue // not a derivative by design
		}
		sp.Red = loss.Sum
		for _, shp := range [][2]int{{4, 5}, {3, 2}, {6, 9}} {
			n, c := shp[0], shp[1]
			at := fmt.Sprintf("%v %dx%d", sp, n, c)
			t.Run(at, func(t *testing.T) {
				// Steps move a cosine by up to 2·2^-7; keep branches and
				// arg-maxes 0.05 away.
				cos, labels := drawCosines(t, rng, sp, n, c, 0.05, 0.05)
				ref := refCosines(sp, cos, labels, n, c, nil)
				sig := cosSig(sp, ref)
				l := sp.api()
				cols := c * sp.K
				dcos := nanMatrix(n, cols)
				_, err := l.LossFromCosines(matOf(n, cols, to32(cos)), labels, &dcos)
				require.NoError(t, err)
				dirCheck(t, tab, rng, "cos-"+sp.Kind, at, dirProblem{
					inputs: [][]float64{cos},
					grads:  [][]float32{dcos.Data},
					f: func(t *testing.T, in [][]float32) float32 {
						v, err := l.LossFromCosines(matOf(n, cols, in[0]), labels, nil)
						require.NoError(t, err)
						return v
					},
					ok: func(in [][]float64) bool {
						for _, v := range in[0] {
							if !(v >= -1 && v <= 1) {
								return false
							}
						}
						r := refCosines(sp, in[0], labels, n, c, nil)
						for _, t := range r.t {
							if _, dist := sp.branch(t); dist < 1e-3 {
								return false
							}
						}
						return slices.Equal(sig, cosSig(sp, r))
					},
					fwdErr: cosFwdErr(sp, ref, n, c),
				})
			})
		}
	}
	tab.log(t, "fd32(api)")
}

// cosFwdErr bounds |L_float32 − L| for LossFromCosines, as marginFwdErr
// does for Loss but without the length-D dot products: the logits carry
// one rounding, the log-sum-exp over C classes (C+10.5)·2⁻²³ relative of its
// sum, the ε terms a length-C float64 sum, the reduction N·u·|L_i|; with a
// factor 2 of slack for the transcendental functions:
//
//	δ = 2·u·(C + N + 12)·Σ_i r·(1 + max_j |z_ij| + |∂z_iy/∂t|)
func cosFwdErr(sp cosSpec, ref cosRef, n, c int) float64 {
	r := redScale(sp.Red, n)
	var s float64
	for i := range n {
		mz := 0.0
		for j := range c {
			mz = max(mz, math.Abs(ref.z[i*c+j]))
		}
		s += r * (1 + mz + math.Abs(ref.ht[i]))
	}
	return 2 * u32 * float64(c+n+12) * s
}

// ---------------------------------------------------------------------------
// Equality with Loss

// TestCosinesMatchLoss: for random x and W, LossFromCosines on x̂·Ŵᵀ gives
// Loss's loss, and its ∂L/∂cos chained through the normalisation gives
// Loss's dx and dW, within the golden tolerances. The configurations with
// SubCenters or LabelSmoothing compare once Loss supports them (until then
// Loss refuses them and only LossFromCosines runs).
func TestCosinesMatchLoss(t *testing.T) { forEachLevelAndPath(t, testCosinesMatchLoss) }

func testCosinesMatchLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	tab := newErrTable()
	type cfg struct {
		name string
		mk   func() *loss.MarginSoftmax
	}
	var cfgs []cfg
	for name, mk := range allHeads() {
		if name == "sphere" || name == "large" {
			continue
		}
		for _, k := range []int{1, 3} {
			for _, eps := range []float32{0, 0.1} {
				cfgs = append(cfgs, cfg{fmt.Sprintf("%s/k%d/ε%g", name, k, eps), func() *loss.MarginSoftmax {
					h := mk()
					h.SubCenters, h.LabelSmoothing = k, eps
					return h
				}})
			}
		}
	}
	slices.SortFunc(cfgs, func(a, b cfg) int { return strings.Compare(a.name, b.name) })
	compared := 0
	for _, shp := range [][3]int{{6, 7, 5}, {40, 300, 33}} {
		n, c, d := shp[0], shp[1], shp[2]
		for _, cf := range cfgs {
			h := cf.mk()
			rows := c * max(h.SubCenters, 1)
			x, w := gaussian(rng, n*d), gaussian(rng, rows*d)
			labels := drawLabels(rng, n, c)
			cos := cosinesOf(x, w, n, rows, d)
			dcos := nanMatrix(n, rows)
			lc, err := h.LossFromCosines(matOf(n, rows, cos), labels, &dcos)
			require.NoError(t, err, cf.name)
			require.True(t, allFinite(dcos.Data) && allFinite([]float32{lc}), cf.name)
			dx, dw := nanMatrix(n, d), nanMatrix(rows, d)
			ll, err := h.Loss(matOf(n, d, to32(x)), matOf(rows, d, to32(w)), labels, &dx, &dw)
			require.NoError(t, err, cf.name)
			compared++
			at := fmt.Sprintf("%s %dx%dx%d", cf.name, n, c, d)
			checkLoss(t, tab, "vs-loss", at, lc, float64(ll))
			cdx, cdw := chainCosines(x, w, dcos.Data, n, rows, d)
			checkGrad(t, tab, "vs-loss", at, "dx", dx.Data, cdx, d)
			checkGrad(t, tab, "vs-loss", at, "dw", dw.Data, cdw, d)
		}
	}
	require.GreaterOrEqual(t, compared, 10, "too few configurations compared with Loss")
	tab.log(t, "LossFromCosines vs Loss")
}

// gaussian draws n float32-representable standard normal values.
func gaussian(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for k := range v {
		v[k] = f32(rng.NormFloat64())
	}
	return v
}

// TestLossSubCentersLabelSmoothing: Loss with the two options agrees with
// LossFromCosines.
func TestLossSubCentersLabelSmoothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	n, c, d := 5, 4, 6
	for _, k := range []int{1, 2} {
		for _, eps := range []float32{0, 0.2} {
			if k == 1 && eps == 0 {
				continue
			}
			h := loss.ArcFace(30, 0.5)
			h.SubCenters, h.LabelSmoothing = k, eps
			x, w := gaussian(rng, n*d), gaussian(rng, c*k*d)
			labels := drawLabels(rng, n, c)
			dx := filled(n, d, 3)
			l, err := h.Loss(matOf(n, d, to32(x)), matOf(c*k, d, to32(w)), labels, &dx, nil)
			require.NoError(t, err, "k=%d ε=%g", k, eps)
			lc, err := h.LossFromCosines(matOf(n, c*k, cosinesOf(x, w, n, c*k, d)), labels, nil)
			require.NoError(t, err)
			assert.LessOrEqual(t, lossRelErr(l, float64(lc)), lossRelTol, "k=%d ε=%g: Loss %v, LossFromCosines %v", k, eps, l, lc)
		}
	}
}

// ---------------------------------------------------------------------------
// Errors, allocations, determinism

func TestCosinesErrors(t *testing.T) {
	n, c := 4, 3
	cos := filled(n, c, 0.25)
	cos.Data[5] = -0.5
	lab := []int32{0, 2, 1, 2}
	arc := func(mod func(h *loss.MarginSoftmax)) *loss.MarginSoftmax {
		h := loss.ArcFace(30, 0.5)
		if mod != nil {
			mod(h)
		}
		return h
	}
	with := func(i int, v float32) loss.Matrix {
		m := matOf(n, c, cos.Data)
		m.Data[i] = v
		return m
	}
	buf := make([]float32, 3*n*c) // for overlapping views
	view := func(off int) loss.Matrix { return loss.Matrix{Rows: n, Cols: c, Data: buf[off : off+n*c]} }
	copy(buf, cos.Data)
	nanD := filled(n, c, 0)
	nanD.Data[7] = float32(math.NaN())
	type tc struct {
		name   string
		want   error
		head   *loss.MarginSoftmax
		cos    loss.Matrix
		labels []int32
		dcos   *loss.Matrix
		in     string // the error names this
	}
	cases := []tc{
		{"nil head", loss.ErrParam, nil, cos, lab, nil, ""},
		{"zero-value head", loss.ErrParam, &loss.MarginSoftmax{}, cos, lab, nil, ""},
		{"SphereFace", loss.ErrParam, loss.SphereFace(4, 0), cos, lab, nil, "SphereFace"},
		{"LargeMargin", loss.ErrParam, loss.LargeMargin(2, 1), cos, lab, nil, "LargeMargin"},
		{"bad margin", loss.ErrParam, loss.ArcFace(30, 2), cos, lab, nil, ""},
		{"s·max|φ| > MaxLogit", loss.ErrParam, loss.CosFace(64, 1e37), cos, lab, nil, ""},
		{"SubCenters < 0", loss.ErrParam, arc(func(h *loss.MarginSoftmax) { h.SubCenters = -1 }), cos, lab, nil, "SubCenters"},
		{"SubCenters on SphereFace", loss.ErrParam, func() *loss.MarginSoftmax { h := loss.SphereFace(4, 0); h.SubCenters = 2; return h }(), cos, lab, nil, "SubCenters"},
		{"SubCenters on LargeMargin", loss.ErrParam, func() *loss.MarginSoftmax { h := loss.LargeMargin(2, 0); h.SubCenters = 3; return h }(), cos, lab, nil, "SubCenters"},
		{"ε < 0", loss.ErrParam, arc(func(h *loss.MarginSoftmax) { h.LabelSmoothing = -0.1 }), cos, lab, nil, "LabelSmoothing"},
		{"ε = 1", loss.ErrParam, arc(func(h *loss.MarginSoftmax) { h.LabelSmoothing = 1 }), cos, lab, nil, "LabelSmoothing"},
		{"ε NaN", loss.ErrParam, arc(func(h *loss.MarginSoftmax) { h.LabelSmoothing = float32(math.NaN()) }), cos, lab, nil, "LabelSmoothing"},
		{"ε +Inf", loss.ErrParam, arc(func(h *loss.MarginSoftmax) { h.LabelSmoothing = float32(math.Inf(1)) }), cos, lab, nil, "LabelSmoothing"},
		{"bad reduction", loss.ErrParam, arc(func(h *loss.MarginSoftmax) { h.Reduction = 5 }), cos, lab, nil, ""},
		{"cos data length", loss.ErrShape, arc(nil), loss.Matrix{Rows: n, Cols: c, Data: cos.Data[:n*c-1]}, lab, nil, "cos"},
		{"cos negative rows", loss.ErrShape, arc(nil), loss.Matrix{Rows: -1, Cols: c}, nil, nil, "cos"},
		{"no classes", loss.ErrShape, arc(nil), loss.Matrix{Rows: n, Cols: 0}, lab, nil, "cos"},
		{"cols not a multiple of K", loss.ErrShape, arc(func(h *loss.MarginSoftmax) { h.SubCenters = 2 }), cos, lab, nil, "SubCenters = 2"},
		{"labels short", loss.ErrLabel, arc(nil), cos, lab[:n-1], nil, ""},
		{"label = C", loss.ErrLabel, arc(nil), cos, []int32{0, 3, 1, 2}, nil, ""},
		{"label negative", loss.ErrLabel, arc(nil), cos, []int32{0, -1, 1, 2}, nil, ""},
		{"label in [C, C·K)", loss.ErrLabel, arc(func(h *loss.MarginSoftmax) { h.SubCenters = 3 }),
			filled(n, 6, 0.1), []int32{0, 1, 2, 0}, nil, ""}, // C = 2
		{"dcos shape", loss.ErrShape, arc(nil), cos, lab, &loss.Matrix{Rows: n, Cols: c + 1, Data: make([]float32, n*(c+1))}, "dcos"},
		{"dcos data length", loss.ErrShape, arc(nil), cos, lab, &loss.Matrix{Rows: n, Cols: c, Data: make([]float32, 2)}, "dcos"},
		{"NaN in cos", loss.ErrNonFinite, arc(nil), with(7, float32(math.NaN())), lab, nil, "cos row 2 column 1"},
		{"+Inf in cos", loss.ErrNonFinite, arc(nil), with(11, float32(math.Inf(1))), lab, nil, "cos row 3 column 2"},
		{"-Inf in cos", loss.ErrNonFinite, arc(nil), with(0, float32(math.Inf(-1))), lab, nil, "cos row 0 column 0"},
		{"cos above 1", loss.ErrParam, arc(nil), with(4, math.Nextafter32(1, 2)), lab, nil, "cos row 1 column 1"},
		{"cos below -1", loss.ErrParam, arc(nil), with(9, -1.5), lab, nil, "cos row 3 column 0"},
		{"first bad element", loss.ErrNonFinite, arc(nil), func() loss.Matrix {
			m := with(10, 2)
			m.Data[8] = float32(math.NaN())
			return m
		}(), lab, nil, "cos row 2 column 2"},
		{"dcos shifted over cos", loss.ErrOverlap, arc(nil), view(0), lab, ptr(view(1)), "dcos"},
		{"dcos ends inside cos", loss.ErrOverlap, arc(nil), view(n * c), lab, ptr(view(n*c - 2)), "dcos"},
		{"accumulate into NaN", loss.ErrNonFinite, arc(func(h *loss.MarginSoftmax) { h.Accumulate = true }), cos, lab, &nanD, "dcos"},
		{"accumulate past float32", loss.ErrNonFinite, arc(func(h *loss.MarginSoftmax) { h.Accumulate = true }), cos, lab, ptr(filled(n, c, 3.4e38)), "dcos"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			dcos := cs.dcos
			if dcos == nil && cs.cos.Rows >= 0 {
				dcos = ptr(filled(cs.cos.Rows, cs.cos.Cols, 42))
			}
			before := snapshot(dcos)
			cosBefore := slices.Clone(cs.cos.Data)
			var l float32
			var err error
			require.NotPanics(t, func() { l, err = cs.head.LossFromCosines(cs.cos, cs.labels, dcos) })
			require.ErrorIs(t, err, cs.want)
			for _, other := range []error{loss.ErrShape, loss.ErrLabel, loss.ErrNonFinite, loss.ErrParam, loss.ErrOverlap} {
				if other != cs.want {
					require.NotErrorIs(t, err, other)
				}
			}
			require.Contains(t, err.Error(), cs.in)
			require.Zero(t, l)
			requireUntouched(t, before, dcos)
			requireBits(t, cosBefore, cs.cos.Data, "cos")
			// A configuration error is Validate's error.
			if cs.want == loss.ErrParam && !strings.Contains(cs.name, "cos") {
				if verr := cs.head.Validate(); verr != nil {
					require.Equal(t, verr.Error(), err.Error())
				}
			}
		})
	}
	// Validate reports the option errors without data; valid options pass.
	for _, h := range []*loss.MarginSoftmax{
		arc(func(h *loss.MarginSoftmax) { h.SubCenters = 3; h.LabelSmoothing = 0.1 }),
		func() *loss.MarginSoftmax { h := loss.CosFace(30, 0.35); h.SubCenters = 1; return h }(),
		func() *loss.MarginSoftmax { h := loss.CombinedMargin(30, 1, 0.3, 0.2); h.SubCenters = 4; return h }(),
		func() *loss.MarginSoftmax {
			h := loss.SphereFace(4, 1)
			h.LabelSmoothing = 0.3
			h.SubCenters = 1
			return h
		}(),
		func() *loss.MarginSoftmax { h := loss.LargeMargin(2, 0); h.LabelSmoothing = 0.999; return h }(),
	} {
		require.NoError(t, h.Validate(), "%v", h)
	}
	require.ErrorIs(t, arc(func(h *loss.MarginSoftmax) { h.SubCenters = -2 }).Validate(), loss.ErrParam)
	require.ErrorIs(t, func() *loss.MarginSoftmax { h := loss.SphereFace(4, 1); h.SubCenters = 2; return h }().Validate(), loss.ErrParam)
	require.ErrorIs(t, arc(func(h *loss.MarginSoftmax) { h.LabelSmoothing = 1.5 }).Validate(), loss.ErrParam)
	// Loss reports the invalid options too, with Validate's error.
	bad := arc(func(h *loss.MarginSoftmax) { h.LabelSmoothing = -1 })
	_, err := bad.Loss(filled(1, 2, 1), filled(2, 2, 1), []int32{0}, nil, nil)
	require.Equal(t, bad.Validate().Error(), err.Error())
}

// TestCosinesNoCallerMemoryRetained: an error found in the forward pass
// (after the workspace took the call's matrices) leaves no reference to
// them behind.
func TestCosinesNoCallerMemoryRetained(t *testing.T) {
	h := loss.ArcFace(30, 0.5)
	var wc weak.Pointer[float32]
	var wl weak.Pointer[int32]
	func() {
		cos := filled(64, 300, 0.1)
		cos.Data[len(cos.Data)-1] = float32(math.NaN())
		labels := make([]int32, 64)
		dcos := filled(64, 300, 0)
		_, err := h.LossFromCosines(cos, labels, &dcos)
		require.ErrorIs(t, err, loss.ErrNonFinite)
		wc, wl = weak.Make(&cos.Data[0]), weak.Make(&labels[0])
	}()
	runtime.GC()
	runtime.GC()
	require.Nil(t, wc.Value(), "cos is still reachable after the failed call")
	require.Nil(t, wl.Value(), "labels are still reachable after the failed call")
	runtime.KeepAlive(h)
}

// TestCosinesEmptyBatch: N = 0 validates everything else, returns 0 and
// zeroes dcos (nothing to zero: it is 0×C); an empty batch with no classes
// is a shape error however many rows it claims.
func TestCosinesEmptyBatch(t *testing.T) {
	h := loss.ArcFace(30, 0.5)
	d := loss.Matrix{Rows: 0, Cols: 3}
	l, err := h.LossFromCosines(loss.Matrix{Rows: 0, Cols: 3}, nil, &d)
	require.NoError(t, err)
	require.Zero(t, l)
	_, err = h.LossFromCosines(loss.Matrix{Rows: 0, Cols: 3}, nil, &loss.Matrix{Rows: 1, Cols: 3, Data: make([]float32, 3)})
	require.ErrorIs(t, err, loss.ErrShape)
	_, err = h.LossFromCosines(loss.Matrix{Rows: math.MaxInt / 8, Cols: 0}, nil, nil)
	require.ErrorIs(t, err, loss.ErrShape)
	h.SubCenters = 2
	_, err = h.LossFromCosines(loss.Matrix{Rows: 0, Cols: 3}, nil, nil)
	require.ErrorIs(t, err, loss.ErrShape)
}

func TestCosinesNoAllocs(t *testing.T) { forEachLevel(t, testCosinesNoAllocs) }

func testCosinesNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	n, c := 64, 1500
	for _, k := range []int{1, 3} {
		cols := c * k
		cos := matOf(n, cols, to32(uniformCos(rng, n*cols)))
		labels := drawLabels(rng, n, c)
		dcos := filled(n, cols, 0)
		inPlace := matOf(n, cols, cos.Data)
		for _, eps := range []float32{0, 0.1} {
			for _, accum := range []bool{false, true} {
				h := loss.CombinedMargin(30, 1, 0.3, 0.2)
				h.SubCenters, h.LabelSmoothing, h.Accumulate = k, eps, accum
				_, err := h.LossFromCosines(cos, labels, &dcos)
				require.NoError(t, err)
				what := fmt.Sprintf("k=%d ε=%g accumulate=%v", k, eps, accum)
				require.Zero(t, testing.AllocsPerRun(10, func() { _, _ = h.LossFromCosines(cos, labels, &dcos) }), what)
				require.Zero(t, testing.AllocsPerRun(10, func() { _, _ = h.LossFromCosines(cos, labels, nil) }), what+" forward only")
				if !accum {
					require.Zero(t, testing.AllocsPerRun(10, func() {
						copy(inPlace.Data, cos.Data)
						_, _ = h.LossFromCosines(inPlace, labels, &inPlace)
					}), what+" in place")
				}
			}
		}
	}
}

// uniformCos draws float32-representable values uniform in [−1, 1].
func uniformCos(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for k := range v {
		v[k] = f32(2*rng.Float64() - 1)
	}
	return v
}

// TestCosinesDeterministicAcrossGOMAXPROCS: many row chunks and several
// blocks of classes, bitwise equal for 1, 2, 3 and 8 workers.
func TestCosinesDeterministicAcrossGOMAXPROCS(t *testing.T) {
	forEachLevel(t, testCosinesDeterministicAcrossGOMAXPROCS)
}

func testCosinesDeterministicAcrossGOMAXPROCS(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, shp := range [][3]int{{300, 2100, 1}, {130, 700, 3}} {
		n, c, k := shp[0], shp[1], shp[2]
		cols := c * k
		cos := matOf(n, cols, to32(uniformCos(rng, n*cols)))
		labels := drawLabels(rng, n, c)
		for _, eps := range []float32{0, 0.1} {
			var ref []float32
			for _, procs := range []int{1, 2, 3, 8} {
				h := loss.ArcFace(64, 0.5)
				h.SubCenters, h.LabelSmoothing = k, eps
				dcos := filled(n, cols, 0)
				old := runtime.GOMAXPROCS(procs)
				l, err := h.LossFromCosines(cos, labels, &dcos)
				runtime.GOMAXPROCS(old)
				require.NoError(t, err)
				got := append([]float32{l}, dcos.Data...)
				if ref == nil {
					ref = got
					continue
				}
				requireBits(t, ref, got, fmt.Sprintf("%dx%dx%d ε=%g GOMAXPROCS=%d vs 1", n, c, k, eps, procs))
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Poles, ties, confident rows

// TestCosinesPoles: cosines of exactly ±1 everywhere (the D = 1 situation)
// give finite results equal to the reference with the documented clamp of
// φ′ (t ∈ [−1+1e-6, 1−1e-6]).
func TestCosinesPoles(t *testing.T) { forEachLevel(t, testCosinesPoles) }

func testCosinesPoles(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	tab := newErrTable()
	n, c := 8, 5
	for _, sp := range cosSpecs() {
		sp.S = 30
		cols := c * sp.K
		cos := make([]float64, n*cols)
		labels := drawLabels(rng, n, c)
		for i := range n {
			for j := range c {
				// a class maximum of ±1 (only +1 with sub-centers, where −1
				// would tie them) above the other sub-centers
				for a := range sp.K {
					cos[i*cols+j*sp.K+a] = -0.5 + 0.1*float64(a)
				}
				if top := float64(1 - 2*rng.IntN(2)); top == 1 || sp.K == 1 {
					cos[i*cols+j*sp.K+rng.IntN(sp.K)] = top
				}
			}
		}
		ref := refCosines(sp, cos, labels, n, c, nil)
		dcos := nanMatrix(n, cols)
		l, err := sp.api().LossFromCosines(matOf(n, cols, to32(cos)), labels, &dcos)
		require.NoError(t, err, "%v", sp)
		require.True(t, allFinite(dcos.Data), "%v: %v", sp, dcos.Data)
		at := sp.String()
		checkLoss(t, tab, "pole-"+sp.Kind, at, l, ref.loss)
		checkGrad(t, tab, "pole-"+sp.Kind, at, "dcos", dcos.Data, ref.dcos, cols)
	}
	tab.log(t, "poles")
}

// TestCosinesSubCenterTies: equal sub-center cosines send the gradient to
// the lowest column; the other columns get exactly 0 (overwrite) or keep
// their old value (Accumulate).
func TestCosinesSubCenterTies(t *testing.T) {
	h := loss.CosFace(16, 0.35)
	h.SubCenters = 3
	cos := loss.Matrix{Rows: 2, Cols: 6, Data: []float32{
		0.3, 0.7, 0.7 /* class 0 */, 0.2, 0.2, 0.2, // class 1
		-0.1, 0.5, -0.1 /* class 0 */, 0.4, 0.1, 0.4, // class 1
	}}
	labels := []int32{0, 1}
	dcos := filled(2, 6, 9)
	_, err := h.LossFromCosines(cos, labels, &dcos)
	require.NoError(t, err)
	for _, k := range []int{0, 2, 4, 5, 6, 8, 10} {
		require.Zero(t, dcos.Data[k], "column %d is not an arg-max", k)
	}
	for _, k := range []int{1, 3, 7, 9} {
		require.NotZero(t, dcos.Data[k], "column %d is the arg-max", k)
	}
	require.Less(t, dcos.Data[1], float32(0)) // target of row 0
	require.Less(t, dcos.Data[9], float32(0)) // target of row 1
	// K = 1 on the arg-max columns: the same loss and gradient.
	h1 := loss.CosFace(16, 0.35)
	one := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{0.7, 0.2, 0.5, 0.4}}
	d1 := filled(2, 2, 0)
	l1, err := h1.LossFromCosines(one, labels, &d1)
	require.NoError(t, err)
	l3, err := h.LossFromCosines(cos, labels, nil)
	require.NoError(t, err)
	require.Equal(t, l1, l3)
	require.Equal(t, []float32{d1.Data[0], d1.Data[1], d1.Data[2], d1.Data[3]},
		[]float32{dcos.Data[1], dcos.Data[3], dcos.Data[7], dcos.Data[9]})

	h.Accumulate = true
	acc := filled(2, 6, 5)
	_, err = h.LossFromCosines(cos, labels, &acc)
	require.NoError(t, err)
	for k, v := range acc.Data {
		want := float32(5)
		if dcos.Data[k] != 0 {
			want += dcos.Data[k]
		}
		require.Equal(t, want, v, "accumulated column %d", k)
	}
}

// TestCosinesConfidentRows: a confident row's loss (≈ 1e-35, far below
// float32's epsilon relative to the logits) keeps its relative precision,
// and a target far below the largest logit stays finite.
func TestCosinesConfidentRows(t *testing.T) {
	sp := cosSpec{marginSpec: marginSpec{Kind: "arcface", S: 64, M: f32(0.5), Red: loss.Sum}, K: 1}
	cos := []float64{f32(0.99), -0.5, -0.5, -0.5, -0.5}
	labels := []int32{0}
	ref := refCosines(sp, cos, labels, 1, 5, nil)
	require.Less(t, ref.loss, 1e-30)
	dcos := nanMatrix(1, 5)
	l, err := sp.api().LossFromCosines(matOf(1, 5, to32(cos)), labels, &dcos)
	require.NoError(t, err)
	assert.InEpsilon(t, ref.loss, float64(l), 1e-4, "confident loss %g, want %g", l, ref.loss)
	for k, v := range dcos.Data {
		assert.InEpsilon(t, ref.dcos[k], float64(v), 1e-4, "dcos[%d]", k)
	}

	far := []float64{-1, 1, 1, 1, 1}
	ref = refCosines(sp, far, labels, 1, 5, nil)
	l, err = sp.api().LossFromCosines(matOf(1, 5, to32(far)), labels, &dcos)
	require.NoError(t, err)
	assert.InEpsilon(t, ref.loss, float64(l), 1e-6)
	require.True(t, allFinite(dcos.Data))
	assert.InDelta(t, ref.dcos[0], float64(dcos.Data[0]), 1e-4*math.Abs(ref.dcos[0]))
}

// ---------------------------------------------------------------------------
// Example

func ExampleMarginSoftmax_LossFromCosines() {
	// Two embeddings against three classes with two sub-centers each: the
	// cosines x̂_i·Ŵ_r computed elsewhere (another device, a sharded W).
	cos := loss.Matrix{Rows: 2, Cols: 6, Data: []float32{
		0.80, 0.10, -0.20, 0.30, 0.05, -0.40,
		-0.10, 0.20, 0.60, 0.70, 0.00, 0.10,
	}}
	labels := []int32{0, 1} // classes, not sub-center rows
	head := loss.ArcFace(16, 0.5)
	head.SubCenters = 2
	head.LabelSmoothing = 0.1
	dcos := loss.Matrix{Rows: 2, Cols: 6, Data: make([]float32, 12)}
	l, err := head.LossFromCosines(cos, labels, &dcos)
	if err != nil {
		panic(err)
	}
	fmt.Printf("loss %.4f\n", l)
	for i := 0; i < 2; i++ {
		fmt.Printf("dcos row %d: %.3f\n", i, dcos.Row(i))
	}
	// Output:
	// loss 0.4295
	// dcos row 0: [-0.894 0.000 0.000 0.836 -0.246 0.000]
	// dcos row 1: [0.000 1.567 0.000 -2.251 0.000 0.104]
}
