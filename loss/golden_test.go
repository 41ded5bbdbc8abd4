package loss_test

// Golden tests: the float32 API against float64 PyTorch autograd results
// stored in testdata/golden_*.json. Regenerate those with
//
//	/usr/bin/python3 testdata/gen_golden.py
//
// (Debian's interpreter, which has torch; run from the repository root).
// Every input in the files is exactly float32-representable, so the API sees
// the very inputs PyTorch used.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

// Tolerances shared by the golden tests and the float64-reference
// comparisons in gradcheck_test.go.
const (
	// Loss: |got − ref| / max(|ref|, lossRelFloor) ≤ lossRelTol. The floor
	// only matters for losses that are exactly or nearly 0 (C = 1, or a row
	// whose target dominates), where it turns the check into an absolute
	// 1e-10 bound.
	lossRelTol   = 1e-4
	lossRelFloor = 1e-6
	// Gradients: max_k |got_k − ref_k| ≤ gradRelTol · max(max_k |ref_k|,
	// gradFloor), per output (dx, dw, dlogits) separately. The floor only
	// matters for gradients that are identically zero (C = 1).
	gradRelTol = 1e-3
	gradFloor  = 1e-6
	// Center.Update: max |got − ref| ≤ centerRelTol · max(max |ref|, 1).
	centerRelTol = 1e-5
)

// ---------------------------------------------------------------------------
// Error bookkeeping: the worst error per loss kind, logged as a summary.

type errStat struct {
	lossRel        float64
	lossAt         string
	grad           float64 // max abs err / max|ref|
	gradAt         string
	cases, outputs int
}

type errTable struct {
	mu        sync.Mutex
	stats     map[string]*errStat
	gradLabel string // what the grad column measures
}

func newErrTable() *errTable {
	return &errTable{stats: map[string]*errStat{}, gradLabel: "grad err/max|g|"}
}

func (e *errTable) get(kind string) *errStat {
	s := e.stats[kind]
	if s == nil {
		s = &errStat{}
		e.stats[kind] = s
	}
	return s
}

func nanToInf(v float64) float64 {
	if math.IsNaN(v) {
		return math.Inf(1)
	}
	return v
}

func (e *errTable) loss(kind, at string, rel float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.get(kind)
	s.cases++
	if rel = nanToInf(rel); rel >= s.lossRel {
		s.lossRel, s.lossAt = rel, at
	}
}

func (e *errTable) grad(kind, at string, ratio float64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.get(kind)
	s.outputs++
	if ratio = nanToInf(ratio); ratio >= s.grad {
		s.grad, s.gradAt = ratio, at
	}
}

func (e *errTable) log(t *testing.T, title string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	kinds := make([]string, 0, len(e.stats))
	for k := range e.stats {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		s := e.stats[k]
		var parts []string
		if s.cases > 0 {
			parts = append(parts, fmt.Sprintf("%d loss checks, worst loss rel err %.2e (%s)", s.cases, s.lossRel, s.lossAt))
		}
		if s.outputs > 0 {
			parts = append(parts, fmt.Sprintf("%d gradient checks, worst %s %.2e (%s)", s.outputs, e.gradLabel, s.grad, s.gradAt))
		}
		t.Logf("%s %s: %s", title, k, strings.Join(parts, "; "))
	}
}

// lossRelErr is |got − ref| / max(|ref|, lossRelFloor) (NaN/Inf → +Inf).
func lossRelErr(got float32, ref float64) float64 {
	g := float64(got)
	if math.IsNaN(g) || math.IsInf(g, 0) {
		return math.Inf(1)
	}
	return math.Abs(g-ref) / math.Max(math.Abs(ref), lossRelFloor)
}

// gradErr returns max |got − ref|, the index where it occurs, and
// max(max|ref|, gradFloor). A non-finite got counts as an infinite error.
func gradErr(got []float32, ref []float64) (maxErr float64, at int, scale float64) {
	scale = gradFloor
	for k, r := range ref {
		scale = math.Max(scale, math.Abs(r))
		g := float64(got[k])
		e := math.Abs(g - r)
		if math.IsNaN(g) || math.IsInf(g, 0) {
			e = math.Inf(1)
		}
		if e > maxErr {
			maxErr, at = e, k
		}
	}
	return maxErr, at, scale
}

// checkLoss records and asserts the loss tolerance.
func checkLoss(t *testing.T, tab *errTable, kind, at string, got float32, ref float64) {
	t.Helper()
	rel := lossRelErr(got, ref)
	tab.loss(kind, at, rel)
	assert.LessOrEqualf(t, rel, lossRelTol, "%s: loss got %.9g want %.12g (rel err %.3e)", at, got, ref, rel)
}

// checkGrad records and asserts the gradient tolerance for one output.
func checkGrad(t *testing.T, tab *errTable, kind, at, what string, got []float32, ref []float64, cols int) {
	t.Helper()
	checkGradScaled(t, tab, kind, at, what, got, ref, cols, 0)
}

// checkGradScaled is checkGrad with the scale raised to at least floor.
func checkGradScaled(t *testing.T, tab *errTable, kind, at, what string, got []float32, ref []float64, cols int, floor float64) {
	t.Helper()
	require.Len(t, got, len(ref), "%s: %s length", at, what)
	e, k, scale := gradErr(got, ref)
	scale = math.Max(scale, floor)
	tab.grad(kind, at+" "+what, e/scale)
	if len(ref) == 0 {
		return
	}
	assert.LessOrEqualf(t, e, gradRelTol*scale,
		"%s: %s[%d,%d] got %.9g want %.12g (abs err %.3e, max|ref| %.3e, ratio %.3e)",
		at, what, k/max(cols, 1), k%max(cols, 1), got[k], ref[k], e, scale, e/scale)
}

// nanMatrix returns a rows×cols matrix filled with NaN, so that any element a
// loss fails to overwrite shows up.
func nanMatrix(rows, cols int) loss.Matrix {
	d := make([]float32, rows*cols)
	for i := range d {
		d[i] = float32(math.NaN())
	}
	return loss.Matrix{Rows: rows, Cols: cols, Data: d}
}

func matOf(rows, cols int, data []float32) loss.Matrix {
	return loss.Matrix{Rows: rows, Cols: cols, Data: slices.Clone(data)}
}

func loadGolden(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", name))
	require.NoError(t, err, "missing golden file; regenerate with /usr/bin/python3 testdata/gen_golden.py")
	require.NoError(t, json.Unmarshal(b, v), name)
}

func parseReduction(t *testing.T, s string) loss.Reduction {
	t.Helper()
	switch s {
	case "mean":
		return loss.Mean
	case "sum":
		return loss.Sum
	}
	t.Fatalf("unknown reduction %q", s)
	return 0
}

// ---------------------------------------------------------------------------
// MarginSoftmax

// marginSpec describes one MarginSoftmax configuration. Float parameters hold
// float32 values (widened), the ones the API receives.
type marginSpec struct {
	Kind         string // arcface, cosface, combined, sphereface, largemargin
	S, M         float64
	M1, M2, M3   float64
	Mi           int
	Lambda       float64
	Easy, Detach bool
	Red          loss.Reduction
}

func (sp marginSpec) String() string {
	var b strings.Builder
	b.WriteString(sp.Kind)
	g := func(v float64) float32 { return float32(v) } // print the float32 the API gets
	switch sp.Kind {
	case "arcface", "cosface":
		fmt.Fprintf(&b, "(s=%g,m=%g)", g(sp.S), g(sp.M))
	case "combined":
		fmt.Fprintf(&b, "(s=%g,m=%g,%g,%g)", g(sp.S), g(sp.M1), g(sp.M2), g(sp.M3))
	default:
		fmt.Fprintf(&b, "(m=%d,λ=%g)", sp.Mi, g(sp.Lambda))
	}
	if sp.Easy {
		b.WriteString("+easy")
	}
	if sp.Detach {
		b.WriteString("+detach")
	}
	b.WriteString("/" + sp.Red.String())
	return b.String()
}

// normalised reports whether both x and W rows are normalised.
func (sp marginSpec) normalised() bool {
	return sp.Kind == "arcface" || sp.Kind == "cosface" || sp.Kind == "combined"
}

func (sp marginSpec) api() *loss.MarginSoftmax {
	var l *loss.MarginSoftmax
	switch sp.Kind {
	case "arcface":
		l = loss.ArcFace(float32(sp.S), float32(sp.M))
	case "cosface":
		l = loss.CosFace(float32(sp.S), float32(sp.M))
	case "combined":
		l = loss.CombinedMargin(float32(sp.S), float32(sp.M1), float32(sp.M2), float32(sp.M3))
	case "sphereface":
		l = loss.SphereFace(sp.Mi, float32(sp.Lambda))
	case "largemargin":
		l = loss.LargeMargin(sp.Mi, float32(sp.Lambda))
	default:
		panic("unknown kind " + sp.Kind)
	}
	l.Reduction = sp.Red
	l.EasyMargin = sp.Easy
	l.DetachMargin = sp.Detach
	l.TileBudget = tileBudget
	return l
}

type goldenMarginCase struct {
	Name         string
	Kind         string
	S, M         float32
	M1, M2, M3   float32
	Mi           int
	Lambda       float32 `json:"lambda"`
	Easy, Detach bool
	Reduction    string
	N, C, D      int
	X, W         []float32
	Labels       []int32
	Loss         float64
	DX           []float64 `json:"dx"`
	DW           []float64 `json:"dw"`
	// Only for D = 1, where every normalised row is ±1 and the reference
	// gradient through the normalisation is identically zero (dx for
	// ArcFace/CosFace/CombinedMargin, dw for those and SphereFace): the size
	// of the terms that cancel, max_i |∂L/∂x̂_i|/‖x_i‖ (resp. Ŵ, W). The
	// float32 result is the rounding residue of that cancellation (x̂ is
	// x·(1/‖x‖), not exactly ±1), so the tolerance scale for these
	// cases is max(max|ref|, DXScale); such cases are logged as "<kind>(D=1)".
	DXScale float64 `json:"dx_scale"`
	DWScale float64 `json:"dw_scale"`
}

func TestGoldenMargin(t *testing.T) { forEachLevelAndPath(t, testGoldenMargin) }

func testGoldenMargin(t *testing.T) {
	var doc struct{ Cases []goldenMarginCase }
	loadGolden(t, "golden_margin.json", &doc)
	require.NotEmpty(t, doc.Cases)
	tab := newErrTable()
	for _, gc := range doc.Cases {
		t.Run(gc.Name, func(t *testing.T) {
			require.Len(t, gc.X, gc.N*gc.D)
			require.Len(t, gc.W, gc.C*gc.D)
			require.Len(t, gc.Labels, gc.N)
			sp := marginSpec{Kind: gc.Kind, S: float64(gc.S), M: float64(gc.M), M1: float64(gc.M1),
				M2: float64(gc.M2), M3: float64(gc.M3), Mi: gc.Mi, Lambda: float64(gc.Lambda),
				Easy: gc.Easy, Detach: gc.Detach, Red: parseReduction(t, gc.Reduction)}
			l := sp.api()
			x := matOf(gc.N, gc.D, gc.X)
			w := matOf(gc.C, gc.D, gc.W)
			dx := nanMatrix(gc.N, gc.D)
			dw := nanMatrix(gc.C, gc.D)
			got, err := l.Loss(x, w, gc.Labels, &dx, &dw)
			require.NoError(t, err)
			at, kind := gc.Name, gc.Kind
			if gc.D == 1 {
				kind += "(D=1)"
			}
			checkLoss(t, tab, kind, at, got, gc.Loss)
			checkGradScaled(t, tab, kind, at, "dx", dx.Data, gc.DX, gc.D, gc.DXScale)
			checkGradScaled(t, tab, kind, at, "dw", dw.Data, gc.DW, gc.D, gc.DWScale)
			// Inputs are read-only.
			require.Equal(t, gc.X, x.Data, "x modified")
			require.Equal(t, gc.W, w.Data, "w modified")
			// The loss does not depend on which gradients are requested.
			got2, err := l.Loss(x, w, gc.Labels, nil, nil)
			require.NoError(t, err)
			checkLoss(t, tab, kind, at+" (no grads)", got2, gc.Loss)
			dx2 := nanMatrix(gc.N, gc.D)
			_, err = l.Loss(x, w, gc.Labels, &dx2, nil)
			require.NoError(t, err)
			checkGradScaled(t, tab, kind, at+" (dx only)", "dx", dx2.Data, gc.DX, gc.D, gc.DXScale)
		})
	}
	tab.log(t, "golden")
}

// ---------------------------------------------------------------------------
// Focal

type goldenFocalCase struct {
	Name         string
	Kind         string // softmax, sigmoid
	Gamma, Alpha float32
	Reduction    string
	N, C         int
	Logits       []float32
	Labels       []int32
	Targets      []float32
	Loss         float64
	DLogits      []float64 `json:"dlogits"`
}

func TestGoldenFocal(t *testing.T) { forEachLevel(t, testGoldenFocal) }

func testGoldenFocal(t *testing.T) {
	var doc struct{ Cases []goldenFocalCase }
	loadGolden(t, "golden_focal.json", &doc)
	require.NotEmpty(t, doc.Cases)
	tab := newErrTable()
	for _, gc := range doc.Cases {
		t.Run(gc.Name, func(t *testing.T) {
			f := loss.Focal{Gamma: gc.Gamma, Alpha: gc.Alpha, Reduction: parseReduction(t, gc.Reduction)}
			z := matOf(gc.N, gc.C, gc.Logits)
			dz := nanMatrix(gc.N, gc.C)
			kind := "focal-" + gc.Kind
			var got, got2 float32
			var err error
			switch gc.Kind {
			case "softmax":
				got, err = f.Softmax(z, gc.Labels, &dz)
				require.NoError(t, err)
				got2, err = f.Softmax(z, gc.Labels, nil)
			case "sigmoid":
				tg := matOf(gc.N, gc.C, gc.Targets)
				got, err = f.Sigmoid(z, tg, &dz)
				require.NoError(t, err)
				require.Equal(t, gc.Targets, tg.Data, "targets modified")
				got2, err = f.Sigmoid(z, tg, nil)
			default:
				t.Fatalf("unknown focal kind %q", gc.Kind)
			}
			require.NoError(t, err)
			require.Equal(t, gc.Logits, z.Data, "logits modified")
			checkLoss(t, tab, kind, gc.Name, got, gc.Loss)
			checkLoss(t, tab, kind, gc.Name+" (no grads)", got2, gc.Loss)
			checkGrad(t, tab, kind, gc.Name, "dlogits", dz.Data, gc.DLogits, gc.C)
		})
	}
	tab.log(t, "golden")
}

// ---------------------------------------------------------------------------
// Center

type goldenCenterCase struct {
	Name         string
	N, C, D      int
	Alpha        float32
	Lambda       float32 // Center.Lambda as given (0 = weight 1)
	X, Centers   []float32
	Labels       []int32
	Loss         float64
	DX           []float64 `json:"dx"`
	CentersAfter []float64 `json:"centers_after"`
}

func TestGoldenCenter(t *testing.T) { forEachLevel(t, testGoldenCenter) }

func testGoldenCenter(t *testing.T) {
	var doc struct{ Cases []goldenCenterCase }
	loadGolden(t, "golden_center.json", &doc)
	require.NotEmpty(t, doc.Cases)
	tab := newErrTable()
	for _, gc := range doc.Cases {
		t.Run(gc.Name, func(t *testing.T) {
			c := &loss.Center{Centers: matOf(gc.C, gc.D, gc.Centers), Alpha: gc.Alpha, Lambda: gc.Lambda}
			x := matOf(gc.N, gc.D, gc.X)
			dx := nanMatrix(gc.N, gc.D)
			got, err := c.Loss(x, gc.Labels, &dx)
			require.NoError(t, err)
			checkLoss(t, tab, "center", gc.Name, got, gc.Loss)
			checkGrad(t, tab, "center", gc.Name, "dx", dx.Data, gc.DX, gc.D)
			require.Equal(t, gc.Centers, c.Centers.Data, "Loss modified the centers")

			require.NoError(t, c.Update(x, gc.Labels))
			require.Equal(t, gc.X, x.Data, "Update modified x")
			e, k, _ := gradErr(c.Centers.Data, gc.CentersAfter)
			scale := 1.0
			for _, v := range gc.CentersAfter {
				scale = math.Max(scale, math.Abs(v))
			}
			tab.grad("center-update", gc.Name+" centers", e/scale)
			assert.LessOrEqualf(t, e, centerRelTol*scale, "centers[%d,%d] got %.9g want %.12g",
				k/gc.D, k%gc.D, c.Centers.Data[k], gc.CentersAfter[k])
		})
	}
	tab.log(t, "golden")
}
