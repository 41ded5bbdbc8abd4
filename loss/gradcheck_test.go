package loss_test

// Gradient checks of every loss, in three layers:
//
//  1. A float64 reference of each formula (plain loops, written from the
//     documented definitions and independent of the implementation), whose
//     hand-derived gradients are verified against float64 central
//     differences at 1e-6 relative (TestFDRef64*).
//  2. The float32 API against that reference on random inputs, with the
//     golden tolerances (TestGradRef64*).
//  3. Directional finite differences of the float32 API itself
//     (TestFDAPI*): the change of the API's loss along a random direction
//     against Σ g·v from the API's own gradients.
//
// DetachMargin gradients are, by design, not the derivative of the loss, so
// layer 3 skips them. Instead layer 1 verifies the reference's detached
// gradient as the exact derivative of the surrogate loss in which φ(t) − t
// is frozen per row at the evaluation point (its loss value equals the real
// loss there), and layer 2 compares the API's detached gradients with it.
// The goldens cover Detach as well.
//
// Edge cases (TestEdge*): t = ±1 exactly, s = 64 (and 128) with t ≈ 1, zero
// rows of x and W.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/loss"
)

const (
	eps32 = 0x1p-23 // float32 machine epsilon
	u32   = 0x1p-24 // float32 unit roundoff: |fl(a∘b) − a∘b| ≤ u·|a∘b|
)

func f32(v float64) float64 { return float64(float32(v)) }

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func redScale(red loss.Reduction, count int) float64 {
	if red == loss.Mean {
		return 1 / float64(count)
	}
	return 1
}

// ---------------------------------------------------------------------------
// float64 reference: MarginSoftmax

// refClamp is the documented clamp of t inside the derivative of the
// acos-based margins (ArcFace, CombinedMargin): t ∈ [−1+1e-6, 1−1e-6].
const refClamp = 1e-6

func clampT(t float64) float64 { return min(max(t, -1+refClamp), 1-refClamp) }

func acos1(t float64) float64 { return math.Acos(min(max(t, -1), 1)) }

// phi is the target function of ArcFace, CosFace and CombinedMargin, with
// dφ/dt.
func (sp marginSpec) phi(t float64) (v, dv float64) {
	tc := clampT(t)
	inv := 1 / math.Sqrt(1-tc*tc)
	theta := acos1(t)
	switch sp.Kind {
	case "arcface":
		useCos := t > math.Cos(math.Pi-sp.M)
		if sp.Easy {
			useCos = t > 0
		}
		if useCos {
			return math.Cos(theta + sp.M), math.Sin(theta+sp.M) * inv
		}
		if sp.Easy {
			return t, 1
		}
		return t - math.Sin(math.Pi-sp.M)*sp.M, 1
	case "cosface":
		return t - sp.M, 1
	case "combined":
		return math.Cos(sp.M1*theta+sp.M2) - sp.M3, sp.M1 * math.Sin(sp.M1*theta+sp.M2) * inv
	}
	panic("phi: " + sp.Kind)
}

// psiG is g(t) = (λ·t + ψ(θ))/(1+λ), ψ(θ) = (−1)^k·cos(mθ) − 2k,
// k = ⌊mθ/π⌋, with g′(t). cos(mθ) = T_m(t), so its t-derivative is
// m·U_{m−1}(t) (Chebyshev polynomials), finite on all of [−1, 1].
func (sp marginSpec) psiG(t float64) (g, dg float64, k int) {
	m := float64(sp.Mi)
	theta := acos1(t)
	k = int(math.Floor(m * theta / math.Pi))
	sign := 1.0
	if k%2 == 1 {
		sign = -1
	}
	psi := sign*math.Cos(m*theta) - 2*float64(k)
	u0, u1 := 1.0, 2*t // U_0, U_1
	for n := 1; n < sp.Mi-1; n++ {
		u0, u1 = u1, 2*t*u1-u0
	}
	um := u0 // U_{m−1}
	if sp.Mi >= 2 {
		um = u1
	}
	dpsi := sign * m * um
	return (sp.Lambda*t + psi) / (1 + sp.Lambda), (sp.Lambda + dpsi) / (1 + sp.Lambda), k
}

// targetLogit is z_y as a function h(t, ‖x‖, ‖W_y‖) with its partials.
// off, when non-nil, replaces φ(t) by t + *off (the frozen-offset surrogate).
func (sp marginSpec) targetLogit(t, nx, nw float64, off *float64) (h, hc, hnx, hnw float64) {
	switch sp.Kind {
	case "sphereface":
		g, dg, _ := sp.psiG(t)
		return nx * g, nx * dg, g, 0
	case "largemargin":
		g, dg, _ := sp.psiG(t)
		return nx * nw * g, nx * nw * dg, nw * g, nx * g
	}
	v, dv := sp.phi(t)
	if off != nil {
		v, dv = t+*off, 1
	}
	if sp.Detach {
		dv = 1
	}
	return sp.S * v, sp.S * dv, 0, 0
}

// otherLogit is z_j (j ≠ y) as a function of (c, ‖x‖, ‖W_j‖).
func (sp marginSpec) otherLogit(c, nx, nw float64) (h, hc, hnx, hnw float64) {
	switch sp.Kind {
	case "sphereface":
		return nx * c, nx, c, 0
	case "largemargin":
		return nx * nw * c, nx * nw, nw * c, nx * c
	}
	return sp.S * c, sp.S, 0, 0
}

// branch returns which smooth piece t lies on and its distance to the
// nearest piece boundary (or to ±1, where acos is singular).
func (sp marginSpec) branch(t float64) (id int, dist float64) {
	dist = 1 - math.Abs(t)
	switch sp.Kind {
	case "arcface":
		thr := math.Cos(math.Pi - sp.M)
		if sp.Easy {
			thr = 0
		}
		if t > thr {
			id = 1
		}
		dist = min(dist, math.Abs(t-thr))
	case "sphereface", "largemargin":
		_, _, id = sp.psiG(t)
		for k := 1; k < sp.Mi; k++ {
			dist = min(dist, math.Abs(t-math.Cos(float64(k)*math.Pi/float64(sp.Mi))))
		}
	}
	return id, dist
}

type marginRef struct {
	loss   float64
	dx, dw []float64
	z      []float64 // N×C logits
	t      []float64 // target cosine per row
	ht     []float64 // ∂z_y/∂t per row
	nx, nw []float64 // row norms
}

// refMargin evaluates a MarginSoftmax in float64 with analytic gradients.
// Every logit is z_ij = h(c_ij, ‖x_i‖, ‖W_j‖) with c_ij = x̂_i·Ŵ_j, so
//
//	∂z/∂x_i = h_nx·x̂_i + h_c·(Ŵ_j − c·x̂_i)/‖x_i‖
//	∂z/∂W_j = h_nw·Ŵ_j + h_c·(x̂_i − c·Ŵ_j)/‖W_j‖
//
// A zero row has x̂ = 0 (so c = 0) and no gradient through the normalisation.
func refMargin(sp marginSpec, x, w []float64, labels []int32, n, c, d int, off []float64) marginRef {
	r := marginRef{dx: make([]float64, n*d), dw: make([]float64, c*d), z: make([]float64, n*c),
		t: make([]float64, n), ht: make([]float64, n), nx: make([]float64, n), nw: make([]float64, c)}
	unit := func(v []float64, nr *float64) []float64 {
		s := 0.0
		for _, e := range v {
			s += e * e
		}
		*nr = math.Sqrt(s)
		u := make([]float64, len(v))
		if *nr > 0 {
			for k, e := range v {
				u[k] = e / *nr
			}
		}
		return u
	}
	xn := make([][]float64, n)
	wn := make([][]float64, c)
	for i := range n {
		xn[i] = unit(x[i*d:(i+1)*d], &r.nx[i])
	}
	for j := range c {
		wn[j] = unit(w[j*d:(j+1)*d], &r.nw[j])
	}
	scale := redScale(sp.Red, n)
	hc := make([]float64, c)
	hnx := make([]float64, c)
	hnw := make([]float64, c)
	cs := make([]float64, c)
	for i := range n {
		y := int(labels[i])
		z := r.z[i*c : (i+1)*c]
		for j := range c {
			cij := 0.0
			for k := range d {
				cij += xn[i][k] * wn[j][k]
			}
			cs[j] = cij
			if j == y {
				var o *float64
				if off != nil {
					o = &off[i]
				}
				z[j], hc[j], hnx[j], hnw[j] = sp.targetLogit(cij, r.nx[i], r.nw[j], o)
				r.t[i], r.ht[i] = cij, hc[j]
			} else {
				z[j], hc[j], hnx[j], hnw[j] = sp.otherLogit(cij, r.nx[i], r.nw[j])
			}
		}
		mx := math.Inf(-1)
		for _, v := range z {
			mx = max(mx, v)
		}
		sum := 0.0
		for _, v := range z {
			sum += math.Exp(v - mx)
		}
		lse := mx + math.Log(sum)
		r.loss += scale * (lse - z[y])
		for j := range c {
			dz := math.Exp(z[j] - lse)
			if j == y {
				dz--
			}
			dz *= scale
			for k := range d {
				gx := hnx[j] * xn[i][k]
				if r.nx[i] > 0 {
					gx += hc[j] * (wn[j][k] - cs[j]*xn[i][k]) / r.nx[i]
				}
				gw := hnw[j] * wn[j][k]
				if r.nw[j] > 0 {
					gw += hc[j] * (xn[i][k] - cs[j]*wn[j][k]) / r.nw[j]
				}
				r.dx[i*d+k] += dz * gx
				r.dw[j*d+k] += dz * gw
			}
		}
	}
	return r
}

// detachOffsets returns φ(t_i) − t_i at the given inputs (normalised kinds).
func detachOffsets(sp marginSpec, ref marginRef) []float64 {
	off := make([]float64, len(ref.t))
	for i, t := range ref.t {
		v, _ := sp.phi(t)
		off[i] = v - t
	}
	return off
}

// marginFwdErr bounds |L_float32 − L| for the API's float32 forward pass,
// from the standard γ_n ≈ n·u bound for a length-n sum (u = 2^-24): each
// logit is a length-D dot product of (normalised) rows, ≤ (D+4)·u·(1 + |z|)
// by Cauchy–Schwarz, then a margin function whose slope in t, ∂z_y/∂t,
// amplifies the error of t; the log-sum-exp over C classes adds
// ≈ (C+4)·u·(1 + max|z|) and the reduction over N rows ≈ N·u·|L_i|. With a
// factor 2 of slack for the transcendental functions (each within a few
// ulp):
//
//	δ = 2·u·(D + C + N + 8)·Σ_i r·(1 + max_j |z_ij| + |∂z_iy/∂t|)
//
// with r the reduction factor.
func marginFwdErr(sp marginSpec, ref marginRef, n, c, d int) float64 {
	r := redScale(sp.Red, n)
	var s float64
	for i := range n {
		mz := 0.0
		for j := range c {
			mz = max(mz, math.Abs(ref.z[i*c+j]))
		}
		s += r * (1 + mz + math.Abs(ref.ht[i]))
	}
	return 2 * u32 * float64(d+c+n+8) * s
}

// ---------------------------------------------------------------------------
// float64 reference: Focal and Center

func refFocalSoftmax(gamma float64, red loss.Reduction, z []float64, labels []int32, n, c int) (float64, []float64) {
	dz := make([]float64, n*c)
	scale := redScale(red, n)
	var L float64
	for i := range n {
		row := z[i*c : (i+1)*c]
		y := int(labels[i])
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, v)
		}
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(v - mx)
		}
		lse := mx + math.Log(sum)
		logp := row[y] - lse
		p := math.Exp(logp)
		q := -math.Expm1(logp) // 1 − p
		var li, dLdp float64
		if gamma == 0 {
			li, dLdp = -logp, -1/p
		} else {
			qg := math.Pow(q, gamma)
			li = -qg * logp
			dLdp = gamma*math.Pow(q, gamma-1)*logp - qg/p
		}
		L += scale * li
		for j := range c {
			pj := math.Exp(row[j] - lse)
			dpdz := -p * pj
			if j == y {
				dpdz += p
			}
			dz[i*c+j] = scale * dLdp * dpdz
		}
	}
	return L, dz
}

func refFocalSigmoid(gamma, alpha float64, red loss.Reduction, z, tg []float64) (float64, []float64) {
	dz := make([]float64, len(z))
	scale := redScale(red, len(z))
	var L float64
	for k, v := range z {
		t := tg[k]
		p := 1 / (1 + math.Exp(-v))
		ce := max(v, 0) - v*t + math.Log1p(math.Exp(-math.Abs(v)))
		q := p + t - 2*p*t // 1 − p_t
		wt := 1.0
		if alpha >= 0 {
			wt = alpha*t + (1-alpha)*(1-t)
		}
		qg, dqg := 1.0, 0.0
		if gamma != 0 {
			qg = math.Pow(q, gamma)
			dqg = gamma * math.Pow(q, gamma-1) * (1 - 2*t) * p * (1 - p)
		}
		L += scale * wt * ce * qg
		dz[k] = scale * wt * ((p-t)*qg + ce*dqg)
	}
	return L, dz
}

func refCenter(x, centers []float64, labels []int32, n, d int) (float64, []float64) {
	dx := make([]float64, n*d)
	var L float64
	for i := range n {
		y := int(labels[i])
		for k := range d {
			e := x[i*d+k] - centers[y*d+k]
			L += e * e / (2 * float64(n))
			dx[i*d+k] = e / float64(n)
		}
	}
	return L, dx
}

func refCenterUpdate(x, centers []float64, labels []int32, n, c, d int, alpha float64) []float64 {
	out := append([]float64(nil), centers...)
	for j := range c {
		cnt := 0
		delta := make([]float64, d)
		for i := range n {
			if int(labels[i]) != j {
				continue
			}
			cnt++
			for k := range d {
				delta[k] += centers[j*d+k] - x[i*d+k]
			}
		}
		for k := range d {
			out[j*d+k] = centers[j*d+k] - alpha*delta[k]/(1+float64(cnt))
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Variants and inputs

func allMarginSpecs() []marginSpec {
	var out []marginSpec
	k := 0
	red := func() loss.Reduction {
		k++
		if k%2 == 0 {
			return loss.Mean
		}
		return loss.Sum
	}
	for _, m := range []float64{0, 0.2, 0.5, 1.0, 1.5} {
		for _, easy := range []bool{false, true} {
			out = append(out, marginSpec{Kind: "arcface", S: 6, M: f32(m), Easy: easy, Red: red()})
		}
	}
	out = append(out,
		marginSpec{Kind: "arcface", S: 6, M: f32(0.5), Detach: true, Red: red()},
		marginSpec{Kind: "arcface", S: 6, M: f32(1.0), Easy: true, Detach: true, Red: red()},
		marginSpec{Kind: "arcface", S: 6, M: f32(1.5), Detach: true, Red: red()},
	)
	for _, m := range []float64{0, 0.35, 1.0} {
		out = append(out, marginSpec{Kind: "cosface", S: 6, M: f32(m), Red: red()})
	}
	out = append(out, marginSpec{Kind: "cosface", S: 6, M: f32(0.35), Detach: true, Red: red()})
	for _, mm := range [][3]float64{{1, 0.3, 0.2}, {0.9, 0.4, 0.15}, {1.2, 0, 0.1}, {1, 0.5, 0}} {
		out = append(out, marginSpec{Kind: "combined", S: 6, M1: f32(mm[0]), M2: f32(mm[1]), M3: f32(mm[2]), Red: red()})
	}
	out = append(out, marginSpec{Kind: "combined", S: 6, M1: 1, M2: f32(0.3), M3: f32(0.2), Detach: true, Red: red()})
	lams := []float64{0, 0.1, 1, 5}
	for mi := 1; mi <= 8; mi++ {
		out = append(out,
			marginSpec{Kind: "sphereface", Mi: mi, Lambda: f32(lams[mi%4]), Red: red()},
			marginSpec{Kind: "largemargin", Mi: mi, Lambda: f32(lams[(mi+1)%4]), Red: red()})
	}
	// DetachMargin must be ignored by these two.
	out = append(out,
		marginSpec{Kind: "sphereface", Mi: 4, Detach: true, Red: red()},
		marginSpec{Kind: "largemargin", Mi: 3, Lambda: 1, Detach: true, Red: red()})
	return out
}

// quant rounds to the grid 2^-12 and clips to (−4, 4): such values, and
// sums x + j·h·v with h = 2^-7, |j| ≤ 2 and v on the same grid in [−1, 1],
// need at most 22 significant bits, so they are exact in float32.
func quant(v float64) float64 {
	return math.Round(min(max(v, -3.99), 3.99)*4096) / 4096
}

// drawMargin draws float32-representable inputs (on the 2^-12 grid) whose
// rows all keep a distance ≥ gap from every branch boundary of sp and from
// t = ±1, and whose row norms are ≥ 0.5. x_i sits at an angle θ ∈ [0, π]
// to W_{y_i}, so ψ's pieces and ArcFace's fallback are all visited.
func drawMargin(t *testing.T, rng *rand.Rand, sp marginSpec, n, c, d int, gap float64) (x, w []float64, labels []int32) {
	t.Helper()
	require.GreaterOrEqual(t, d, 2)
	w = make([]float64, c*d)
	for j := range c {
		for {
			sc := 0.4 + rng.Float64()
			nr := 0.0
			for k := range d {
				w[j*d+k] = quant(rng.NormFloat64() * sc)
				nr += w[j*d+k] * w[j*d+k]
			}
			if math.Sqrt(nr) >= 0.5 {
				break
			}
		}
	}
	labels = make([]int32, n)
	x = make([]float64, n*d)
	for i := range n {
		y := rng.IntN(c)
		labels[i] = int32(y)
		wy := w[y*d : (y+1)*d]
		nw := math.Sqrt(dot(wy, wy))
		for try := 0; ; try++ {
			require.Less(t, try, 10000, "cannot draw a row for %v", sp)
			// u ⟂ Ŵ_y, unit.
			u := make([]float64, d)
			for k := range u {
				u[k] = rng.NormFloat64()
			}
			pr := dot(u, wy) / (nw * nw)
			for k := range u {
				u[k] -= pr * wy[k]
			}
			nu := math.Sqrt(dot(u, u))
			if nu < 1e-3 {
				continue
			}
			theta := rng.Float64() * math.Pi
			rad := 0.7 + 1.5*rng.Float64()
			row := x[i*d : (i+1)*d]
			for k := range row {
				row[k] = quant(rad * (math.Cos(theta)*wy[k]/nw + math.Sin(theta)*u[k]/nu))
			}
			nx := math.Sqrt(dot(row, row))
			if nx < 0.5 {
				continue
			}
			if _, dist := sp.branch(dot(row, wy) / (nx * nw)); dist >= gap {
				break
			}
		}
	}
	return x, w, labels
}

func dot(a, b []float64) float64 {
	s := 0.0
	for k := range a {
		s += a[k] * b[k]
	}
	return s
}

// branchSig lists the branch of every row of the reference.
func branchSig(sp marginSpec, ref marginRef) []int {
	sig := make([]int, len(ref.t))
	for i, t := range ref.t {
		sig[i], _ = sp.branch(t)
	}
	return sig
}

// ---------------------------------------------------------------------------
// Layer 1: float64 central differences of the float64 reference

// fd64 is the Richardson-extrapolated central difference of f along
// coordinate k: (4·D(h) − D(2h))/3 with D(h) = (f(p+h) − f(p−h))/(2h). Its
// truncation error is O(h⁴·f⁽⁵⁾) and its rounding error ≈ 1.5·ε64·|f|/h:
// with h = 1e-4 and O(1..100) losses both are far below 1e-9.
func fd64(f func([]float64) float64, p []float64, k int, h float64) float64 {
	orig := p[k]
	ev := func(dl float64) float64 {
		p[k] = orig + dl
		v := f(p)
		p[k] = orig
		return v
	}
	d1 := (ev(h) - ev(-h)) / (2 * h)
	d2 := (ev(2*h) - ev(-2*h)) / (4 * h)
	return (4*d1 - d2) / 3
}

const (
	fd64Step = 1e-4
	fd64Tol  = 1e-6 // max |fd − analytic| ≤ fd64Tol · max |analytic|
)

// checkFD64 compares the analytic gradient g of f at p with fd64 on every
// coordinate.
func checkFD64(t *testing.T, tab *errTable, kind, at string, f func([]float64) float64, p, g []float64) {
	t.Helper()
	scale := 0.0
	for _, v := range g {
		scale = max(scale, math.Abs(v))
	}
	require.Greater(t, scale, 0.0, "%s: zero gradient makes the check vacuous", at)
	worst, wk, wfd := 0.0, 0, 0.0
	for k := range p {
		fd := fd64(f, p, k, fd64Step)
		if e := math.Abs(fd - g[k]); e > worst || math.IsNaN(e) {
			worst, wk, wfd = e, k, fd
		}
	}
	tab.grad(kind, at, worst/scale)
	assert.LessOrEqualf(t, worst, fd64Tol*scale, "%s: coord %d analytic %.12g fd %.12g (err/max|g| %.2e)",
		at, wk, g[wk], wfd, worst/scale)
}

func TestFDRef64Margin(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tab := newErrTable()
	tab.gradLabel = "|fd − analytic|/max|g|"
	for _, sp := range allMarginSpecs() {
		for _, shp := range [][3]int{{3, 4, 5}, {2, 3, 2}} {
			n, c, d := shp[0], shp[1], shp[2]
			at := fmt.Sprintf("%v %dx%dx%d", sp, n, c, d)
			t.Run(at, func(t *testing.T) {
				x, w, labels := drawMargin(t, rng, sp, n, c, d, 1e-2)
				base := refMargin(sp, x, w, labels, n, c, d, nil)
				p := append(append([]float64(nil), x...), w...)
				g := append(append([]float64(nil), base.dx...), base.dw...)
				var off []float64
				if sp.Detach && sp.normalised() {
					// The detached gradient is the derivative of the
					// surrogate with φ(t) − t frozen at this point.
					off = detachOffsets(sp, base)
					sur := refMargin(sp, x, w, labels, n, c, d, off)
					require.InDelta(t, base.loss, sur.loss, 1e-12*max(1, math.Abs(base.loss)))
				}
				sig := branchSig(sp, base)
				f := func(p []float64) float64 {
					r := refMargin(sp, p[:n*d], p[n*d:], labels, n, c, d, off)
					require.Equal(t, sig, branchSig(sp, r), "step crossed a branch")
					return r.loss
				}
				checkFD64(t, tab, sp.Kind, at, f, p, g)
			})
		}
	}
	tab.log(t, "fd64(ref)")
}

func focalSpecs() []loss.Focal {
	var out []loss.Focal
	for _, g := range []float32{0, 0.5, 2, 5} {
		for _, a := range []float32{-1, 0.25} {
			out = append(out, loss.Focal{Gamma: g, Alpha: a})
		}
	}
	return out
}

// drawLogits draws float32 logits on the 2^-12 grid, |z| < 4.
func drawLogits(rng *rand.Rand, n int, sd float64) []float64 {
	z := make([]float64, n)
	for k := range z {
		z[k] = quant(rng.NormFloat64() * sd)
	}
	return z
}

func drawTargets(rng *rand.Rand, n int, soft bool) []float64 {
	tg := make([]float64, n)
	for k := range tg {
		if soft {
			tg[k] = f32(rng.Float64())
		} else if rng.Float64() < 0.3 {
			tg[k] = 1
		}
	}
	return tg
}

func drawLabels(rng *rand.Rand, n, c int) []int32 {
	l := make([]int32, n)
	for i := range l {
		l[i] = int32(rng.IntN(c))
	}
	return l
}

func TestFDRef64Focal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tab := newErrTable()
	tab.gradLabel = "|fd − analytic|/max|g|"
	const n, c = 4, 5
	for _, f := range focalSpecs() {
		for _, red := range []loss.Reduction{loss.Mean, loss.Sum} {
			gamma, alpha := float64(f.Gamma), float64(f.Alpha)
			if alpha < 0 {
				at := fmt.Sprintf("softmax γ=%g %v", gamma, red)
				z := drawLogits(rng, n*c, 1.5)
				labels := drawLabels(rng, n, c)
				_, g := refFocalSoftmax(gamma, red, z, labels, n, c)
				checkFD64(t, tab, "focal-softmax", at, func(p []float64) float64 {
					L, _ := refFocalSoftmax(gamma, red, p, labels, n, c)
					return L
				}, z, g)
			}
			for _, soft := range []bool{false, true} {
				at := fmt.Sprintf("sigmoid γ=%g α=%g soft=%v %v", gamma, alpha, soft, red)
				z := drawLogits(rng, n*c, 1.5)
				tg := drawTargets(rng, n*c, soft)
				_, g := refFocalSigmoid(gamma, alpha, red, z, tg)
				checkFD64(t, tab, "focal-sigmoid", at, func(p []float64) float64 {
					L, _ := refFocalSigmoid(gamma, alpha, red, p, tg)
					return L
				}, z, g)
			}
		}
	}
	// Center: the loss in x.
	const d = 3
	x := drawLogits(rng, n*d, 1.5)
	centers := drawLogits(rng, c*d, 1)
	labels := drawLabels(rng, n, c)
	_, g := refCenter(x, centers, labels, n, d)
	checkFD64(t, tab, "center", "center", func(p []float64) float64 {
		L, _ := refCenter(p, centers, labels, n, d)
		return L
	}, x, g)
	tab.log(t, "fd64(ref)")
}

// ---------------------------------------------------------------------------
// Layer 2: the float32 API against the float64 reference

func TestGradRef64Margin(t *testing.T) { forEachLevelAndPath(t, testGradRef64Margin) }

func testGradRef64Margin(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tab := newErrTable()
	// (9, 600, 12) spans more than one class tile.
	shapes := [][3]int{{5, 7, 9}, {16, 33, 40}, {9, 600, 12}, {1, 2, 2}}
	for _, sp := range allMarginSpecs() {
		for si, shp := range shapes {
			n, c, d := shp[0], shp[1], shp[2]
			sp := sp
			if si == 1 {
				sp.S = 30 // a production-like scale
			}
			at := fmt.Sprintf("%v %dx%dx%d", sp, n, c, d)
			t.Run(at, func(t *testing.T) {
				x, w, labels := drawMargin(t, rng, sp, n, c, d, 1e-3)
				ref := refMargin(sp, x, w, labels, n, c, d, nil)
				dx, dw := nanMatrix(n, d), nanMatrix(c, d)
				got, err := sp.api().Loss(matOf(n, d, to32(x)), matOf(c, d, to32(w)), labels, &dx, &dw)
				require.NoError(t, err)
				checkLoss(t, tab, sp.Kind, at, got, ref.loss)
				checkGrad(t, tab, sp.Kind, at, "dx", dx.Data, ref.dx, d)
				checkGrad(t, tab, sp.Kind, at, "dw", dw.Data, ref.dw, d)
			})
		}
	}
	tab.log(t, "ref64")
}

func TestGradRef64FocalCenter(t *testing.T) { forEachLevel(t, testGradRef64FocalCenter) }

func testGradRef64FocalCenter(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tab := newErrTable()
	for _, shp := range [][2]int{{6, 5}, {33, 17}, {3, 300}, {1, 1}} {
		n, c := shp[0], shp[1]
		for _, f := range focalSpecs() {
			for _, red := range []loss.Reduction{loss.Mean, loss.Sum} {
				f.Reduction = red
				z := drawLogits(rng, n*c, 1.5)
				if f.Alpha < 0 && c > 1 {
					at := fmt.Sprintf("softmax γ=%g %v %dx%d", f.Gamma, red, n, c)
					labels := drawLabels(rng, n, c)
					L, g := refFocalSoftmax(float64(f.Gamma), red, z, labels, n, c)
					dz := nanMatrix(n, c)
					got, err := f.Softmax(matOf(n, c, to32(z)), labels, &dz)
					require.NoError(t, err)
					checkLoss(t, tab, "focal-softmax", at, got, L)
					checkGrad(t, tab, "focal-softmax", at, "dlogits", dz.Data, g, c)
				}
				for _, soft := range []bool{false, true} {
					at := fmt.Sprintf("sigmoid γ=%g α=%g soft=%v %v %dx%d", f.Gamma, f.Alpha, soft, red, n, c)
					tg := drawTargets(rng, n*c, soft)
					L, g := refFocalSigmoid(float64(f.Gamma), float64(f.Alpha), red, z, tg)
					dz := nanMatrix(n, c)
					got, err := f.Sigmoid(matOf(n, c, to32(z)), matOf(n, c, to32(tg)), &dz)
					require.NoError(t, err)
					checkLoss(t, tab, "focal-sigmoid", at, got, L)
					checkGrad(t, tab, "focal-sigmoid", at, "dlogits", dz.Data, g, c)
				}
			}
		}
	}
	for _, shp := range [][3]int{{7, 3, 4}, {40, 17, 33}, {5, 300, 2}} {
		n, c, d := shp[0], shp[1], shp[2]
		at := fmt.Sprintf("center %dx%dx%d", n, c, d)
		x := drawLogits(rng, n*d, 1.5)
		centers := drawLogits(rng, c*d, 1)
		labels := drawLabels(rng, n, c)
		alpha := f32(0.3)
		L, g := refCenter(x, centers, labels, n, d)
		after := refCenterUpdate(x, centers, labels, n, c, d, alpha)
		cl := &loss.Center{Centers: matOf(c, d, to32(centers)), Alpha: float32(alpha)}
		dx := nanMatrix(n, d)
		got, err := cl.Loss(matOf(n, d, to32(x)), labels, &dx)
		require.NoError(t, err)
		checkLoss(t, tab, "center", at, got, L)
		checkGrad(t, tab, "center", at, "dx", dx.Data, g, d)
		require.NoError(t, cl.Update(matOf(n, d, to32(x)), labels))
		e, _, _ := gradErr(cl.Centers.Data, after)
		scale := 1.0
		for _, v := range after {
			scale = max(scale, math.Abs(v))
		}
		tab.grad("center-update", at, e/scale)
		assert.LessOrEqualf(t, e, centerRelTol*scale, "%s: centers after Update", at)
	}
	tab.log(t, "ref64")
}

// ---------------------------------------------------------------------------
// Layer 3: directional finite differences of the float32 API

// The API is float32, so the check works on exactly representable points:
// inputs p and the direction v lie on the 2^-12 grid (|p| < 4, |v| ≤ 1) and
// the step is h = 2^-7, so every p + j·h·v (j = ±1, ±2) is exact in float32
// (asserted). Then
//
//	R = (4·D(h) − D(2h))/3,  D(h) = (f(p+hv) − f(p−hv))/(2h)
//
// estimates ∇f·v with truncation error O(h⁴·f⁽⁵⁾) (≈ 4e-9·f⁽⁵⁾/30, tiny at
// the moderate scales used), while a forward error |f₃₂ − f| ≤ δ on each
// evaluation perturbs R by at most (4·δ/h + δ/(2h))/3 = 1.5·δ/h. δ is the
// per-loss bound documented at marginFwdErr etc. The API's own gradient
// carries float32 rounding, relative ≈ 1e-5 at most, and truncation needs a
// little room too, so
//
//	|R − Σ g·v| ≤ 1.5·δ/h + 1e-3·Σ|g·v|.
//
// The check is only meaningful when that bound is a small fraction of the
// signal, so it also requires tol ≤ 0.05·Σ|g·v|.
const dirStep = 0x1p-7

type dirProblem struct {
	inputs [][]float64 // differentiable inputs, each on the 2^-12 grid
	grads  [][]float32 // the API's gradients at inputs
	// f evaluates the API's loss; ok reports whether the perturbed inputs are
	// on the same smooth piece as the base point (nil: always).
	f      func(t *testing.T, in [][]float32) float32
	ok     func(in [][]float64) bool
	fwdErr float64
}

func dirCheck(t *testing.T, tab *errTable, rng *rand.Rand, kind, at string, pr dirProblem) {
	t.Helper()
	var v [][]float64
	pts := map[int][][]float32{}
	for try := 0; ; try++ {
		require.Less(t, try, 200, "%s: no direction keeps every row on its branch", at)
		v = make([][]float64, len(pr.inputs))
		for a, in := range pr.inputs {
			v[a] = make([]float64, len(in))
			for k := range in {
				v[a][k] = math.Round((2*rng.Float64()-1)*4096) / 4096
			}
		}
		good := true
		for _, j := range []int{-2, -1, 1, 2} {
			p64 := make([][]float64, len(pr.inputs))
			p32 := make([][]float32, len(pr.inputs))
			for a, in := range pr.inputs {
				p64[a] = make([]float64, len(in))
				for k := range in {
					p64[a][k] = in[k] + float64(j)*dirStep*v[a][k]
				}
				p32[a] = to32(p64[a])
				require.Equal(t, p64[a], to64(p32[a]), "perturbed point not exact in float32")
			}
			if pr.ok != nil && !pr.ok(p64) {
				good = false
				break
			}
			pts[j] = p32
		}
		if good {
			break
		}
	}
	fv := map[int]float64{}
	for j, p := range pts {
		fv[j] = float64(pr.f(t, p))
	}
	d1 := (fv[1] - fv[-1]) / (2 * dirStep)
	d2 := (fv[2] - fv[-2]) / (4 * dirStep)
	est := (4*d1 - d2) / 3
	var pred, mag float64
	for a := range pr.inputs {
		for k := range pr.inputs[a] {
			gv := float64(pr.grads[a][k]) * v[a][k]
			pred += gv
			mag += math.Abs(gv)
		}
	}
	tol := 1.5*pr.fwdErr/dirStep + 1e-3*mag
	err := math.Abs(est - pred)
	tab.grad(kind, at, err/tol)
	assert.LessOrEqualf(t, err, tol, "%s: directional derivative: finite difference %.9g, Σg·v %.9g (err %.3e, tol %.3e, Σ|g·v| %.3e)",
		at, est, pred, err, tol, mag)
	assert.LessOrEqualf(t, tol, 0.05*mag, "%s: tolerance %.3e too loose against Σ|g·v| = %.3e; the check would be vacuous", at, tol, mag)
}

func TestFDAPIMargin(t *testing.T) { forEachLevelAndPath(t, testFDAPIMargin) }

func testFDAPIMargin(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	tab := newErrTable()
	tab.gradLabel = "|FD − Σg·v|/tol"
	for _, sp := range allMarginSpecs() {
		if sp.Detach && sp.normalised() {
			continue // not a derivative by design; see the file comment
		}
		sp.Red = loss.Sum
		for _, shp := range [][3]int{{4, 5, 6}, {3, 2, 2}, {6, 9, 17}} {
			n, c, d := shp[0], shp[1], shp[2]
			at := fmt.Sprintf("%v %dx%dx%d", sp, n, c, d)
			t.Run(at, func(t *testing.T) {
				x, w, labels := drawMargin(t, rng, sp, n, c, d, 2e-2)
				ref := refMargin(sp, x, w, labels, n, c, d, nil)
				sig := branchSig(sp, ref)
				l := sp.api()
				dx, dw := nanMatrix(n, d), nanMatrix(c, d)
				_, err := l.Loss(matOf(n, d, to32(x)), matOf(c, d, to32(w)), labels, &dx, &dw)
				require.NoError(t, err)
				dirCheck(t, tab, rng, sp.Kind, at, dirProblem{
					inputs: [][]float64{x, w},
					grads:  [][]float32{dx.Data, dw.Data},
					f: func(t *testing.T, in [][]float32) float32 {
						v, err := l.Loss(matOf(n, d, in[0]), matOf(c, d, in[1]), labels, nil, nil)
						require.NoError(t, err)
						return v
					},
					ok: func(in [][]float64) bool {
						r := refMargin(sp, in[0], in[1], labels, n, c, d, nil)
						for i, b := range branchSig(sp, r) {
							if _, dist := sp.branch(r.t[i]); b != sig[i] || dist < 1e-3 {
								return false
							}
						}
						return true
					},
					fwdErr: marginFwdErr(sp, ref, n, c, d),
				})
			})
		}
	}
	tab.log(t, "fd32(api)")
}

func TestFDAPIFocalCenter(t *testing.T) { forEachLevel(t, testFDAPIFocalCenter) }

func testFDAPIFocalCenter(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	tab := newErrTable()
	tab.gradLabel = "|FD − Σg·v|/tol"
	for _, shp := range [][2]int{{4, 5}, {8, 3}} {
		n, c := shp[0], shp[1]
		for _, f := range focalSpecs() {
			f.Reduction = loss.Sum
			gamma := float64(f.Gamma)
			if f.Alpha < 0 {
				at := fmt.Sprintf("softmax γ=%g %dx%d", gamma, n, c)
				z := drawLogits(rng, n*c, 1.5)
				labels := drawLabels(rng, n, c)
				dz := nanMatrix(n, c)
				_, err := f.Softmax(matOf(n, c, to32(z)), labels, &dz)
				require.NoError(t, err)
				// δ: softmax over C terms plus the focal factor, per row
				// ≈ (C+N+8)·u·(1 + 2·max|z| + L_i)·(1+γ), slack 2.
				var s float64
				for i := range n {
					mz := 0.0
					for j := range c {
						mz = max(mz, math.Abs(z[i*c+j]))
					}
					li, _ := refFocalSoftmax(gamma, loss.Sum, z[i*c:(i+1)*c], labels[i:i+1], 1, c)
					s += (1 + 2*mz + li) * (1 + gamma)
				}
				dirCheck(t, tab, rng, "focal-softmax", at, dirProblem{
					inputs: [][]float64{z}, grads: [][]float32{dz.Data},
					f: func(t *testing.T, in [][]float32) float32 {
						v, err := f.Softmax(matOf(n, c, in[0]), labels, nil)
						require.NoError(t, err)
						return v
					},
					fwdErr: 2 * u32 * float64(c+n+8) * s,
				})
			}
			for _, soft := range []bool{false, true} {
				at := fmt.Sprintf("sigmoid γ=%g α=%g soft=%v %dx%d", gamma, f.Alpha, soft, n, c)
				z := drawLogits(rng, n*c, 1.5)
				tg := drawTargets(rng, n*c, soft)
				tm := matOf(n, c, to32(tg))
				dz := nanMatrix(n, c)
				_, err := f.Sigmoid(matOf(n, c, to32(z)), tm, &dz)
				require.NoError(t, err)
				// δ: per element, ce = softplus(z) − z·t has absolute error
				// ≈ u·(1 + |z|) and q = 1 − p_t ≈ u, which moves q^γ by
				// γ·q^(γ−1)·u; with ≈ 16 roundings per element (sigmoid,
				// log1p, pow, weights) and the sum over N·C elements:
				// (16 + N·C)·u·Σ_e α_t·(q^γ·(1 + |z|) + γ·ce·q^(γ−1)),
				// slack 2.
				var s float64
				for k, v := range z {
					p := 1 / (1 + math.Exp(-v))
					q := p + tg[k] - 2*p*tg[k]
					ce := max(v, 0) - v*tg[k] + math.Log1p(math.Exp(-math.Abs(v)))
					e := math.Pow(q, gamma) * (1 + math.Abs(v))
					if gamma > 0 {
						e += gamma * ce * math.Pow(q, gamma-1)
					}
					s += e
				}
				dirCheck(t, tab, rng, "focal-sigmoid", at, dirProblem{
					inputs: [][]float64{z}, grads: [][]float32{dz.Data},
					f: func(t *testing.T, in [][]float32) float32 {
						v, err := f.Sigmoid(matOf(n, c, in[0]), tm, nil)
						require.NoError(t, err)
						return v
					},
					fwdErr: 2 * u32 * float64(16+n*c) * s,
				})
			}
		}
	}
	for _, shp := range [][3]int{{5, 3, 4}, {12, 4, 17}} {
		n, c, d := shp[0], shp[1], shp[2]
		at := fmt.Sprintf("center %dx%dx%d", n, c, d)
		x := drawLogits(rng, n*d, 1.5)
		centers := drawLogits(rng, c*d, 1)
		labels := drawLabels(rng, n, c)
		cl := &loss.Center{Centers: matOf(c, d, to32(centers)), Alpha: 0.5}
		dx := nanMatrix(n, d)
		_, err := cl.Loss(matOf(n, d, to32(x)), labels, &dx)
		require.NoError(t, err)
		// δ: ‖x_i − c‖² over D terms, summed over N rows:
		// ≈ (D+N+8)·u·Σ_i (1 + (‖x_i‖ + ‖c_{y_i}‖)²)/(2N), slack 2.
		var s float64
		for i := range n {
			y := int(labels[i])
			a := math.Sqrt(dot(x[i*d:(i+1)*d], x[i*d:(i+1)*d])) + math.Sqrt(dot(centers[y*d:(y+1)*d], centers[y*d:(y+1)*d]))
			s += (1 + a*a) / (2 * float64(n))
		}
		dirCheck(t, tab, rng, "center", at, dirProblem{
			inputs: [][]float64{x}, grads: [][]float32{dx.Data},
			f: func(t *testing.T, in [][]float32) float32 {
				v, err := cl.Loss(matOf(n, d, in[0]), labels, nil)
				require.NoError(t, err)
				return v
			},
			fwdErr: 2 * u32 * float64(d+n+8) * s,
		})
	}
	tab.log(t, "fd32(api)")
}

// ---------------------------------------------------------------------------
// Edge cases

func requireFinite(t *testing.T, at, what string, v []float32) {
	t.Helper()
	for k, e := range v {
		if math.IsNaN(float64(e)) || math.IsInf(float64(e), 0) {
			require.Failf(t, "non-finite output", "%s: %s[%d] = %v", at, what, k, e)
		}
	}
}

// lossFinite runs sp's API on float32 copies of x and w with both
// gradients (pre-filled with NaN) and requires no error and finite outputs.
func lossFinite(t *testing.T, at string, sp marginSpec, x, w []float64, labels []int32, n, c, d int) (float32, loss.Matrix, loss.Matrix) {
	t.Helper()
	dx, dw := nanMatrix(n, d), nanMatrix(c, d)
	got, err := sp.api().Loss(matOf(n, d, to32(x)), matOf(c, d, to32(w)), labels, &dx, &dw)
	require.NoError(t, err)
	requireFinite(t, at, "loss", []float32{got})
	requireFinite(t, at, "dx", dx.Data)
	requireFinite(t, at, "dw", dw.Data)
	return got, dx, dw
}

// TestEdgeParallelAntiparallel puts x_i exactly parallel or antiparallel to
// W_{y_i} (t = ±1 up to rounding), for every margin variant. Loss and
// gradients must be finite, and the loss must match the reference within
// the conditioning of acos at ±1: float32 rounding moves t by up to a few ε,
// (a length-D dot product of normalised rows: ≤ (D+2)·ε), hence θ by up to
// √(2·(D+2)·ε) ≈ 1.3e-3 and each target logit by at most A·M·√(2(D+2)ε),
// A = s (‖x‖ or ‖x‖·‖W‖ for SphereFace, LargeMargin), M = max(m, m1, 1)
// bounding |dφ/dθ|.
func TestEdgeParallelAntiparallel(t *testing.T) { forEachLevelAndPath(t, testEdgeParallelAntiparallel) }

func testEdgeParallelAntiparallel(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const n, c, d = 6, 3, 5
	for _, sp := range allMarginSpecs() {
		at := sp.String()
		t.Run(at, func(t *testing.T) {
			w := drawLogits(rng, c*d, 1)
			labels := []int32{0, 1, 2, 0, 1, 2}
			// Scalings by powers of two keep x exactly ∥ W_y.
			factors := []float64{2, -0.5, 1, -1, 0.25, -4}
			x := make([]float64, n*d)
			for i := range n {
				y := int(labels[i])
				for k := range d {
					x[i*d+k] = factors[i] * w[y*d+k]
				}
			}
			ref := refMargin(sp, x, w, labels, n, c, d, nil)
			got, _, _ := lossFinite(t, at, sp, x, w, labels, n, c, d)
			require.GreaterOrEqual(t, got, float32(0), "cross-entropy is non-negative")
			mm := max(1, sp.M, sp.M1, float64(sp.Mi))
			var bound float64
			for i := range n {
				a := sp.S
				if !sp.normalised() {
					a = ref.nx[i] * max(1, ref.nw[labels[i]])
				}
				bound += redScale(sp.Red, n) * a * mm * math.Sqrt(2*float64(d+2)*eps32)
			}
			bound += 4 * eps32 * float64(d+c+n+8) * math.Abs(ref.loss)
			assert.InDeltaf(t, ref.loss, float64(got), bound, "%s: loss at t = ±1", at)
		})
	}
}

// TestEdgeLargeScale: s = 64 (and 128) with half the rows at t ≈ 1 (x = W_y)
// and half with x = W_j for a wrong class j (a logit of s·1 that is not the
// target). Nothing may overflow, and the results must match the reference
// to the golden tolerances (the t ≈ 1 rows contribute ≈ e^−40, so acos's
// conditioning at 1 does not matter).
func TestEdgeLargeScale(t *testing.T) { forEachLevelAndPath(t, testEdgeLargeScale) }

func testEdgeLargeScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	tab := newErrTable()
	const n, c, d = 8, 10, 16
	for _, s := range []float64{64, 128} {
		for _, sp := range []marginSpec{
			{Kind: "arcface", S: s, M: f32(0.5)},
			{Kind: "arcface", S: s, M: f32(0.5), Easy: true, Red: loss.Sum},
			{Kind: "arcface", S: s, M: f32(0.5), Detach: true},
			{Kind: "cosface", S: s, M: f32(0.35), Red: loss.Sum},
			{Kind: "cosface", S: s, M: f32(0.35), Detach: true},
			{Kind: "combined", S: s, M1: 1, M2: f32(0.3), M3: f32(0.2)},
			{Kind: "combined", S: s, M1: f32(0.9), M2: f32(0.4), M3: f32(0.15), Detach: true, Red: loss.Sum},
		} {
			at := sp.String()
			t.Run(at, func(t *testing.T) {
				w := drawLogits(rng, c*d, 1)
				labels := drawLabels(rng, n, c)
				x := make([]float64, n*d)
				for i := range n {
					src, f := int(labels[i]), 2.0
					if i%2 == 1 {
						src, f = (src+1+rng.IntN(c-1))%c, 0.5
					}
					for k := range d {
						x[i*d+k] = f * w[src*d+k]
					}
				}
				ref := refMargin(sp, x, w, labels, n, c, d, nil)
				got, dx, dw := lossFinite(t, at, sp, x, w, labels, n, c, d)
				checkLoss(t, tab, sp.Kind, at, got, ref.loss)
				checkGrad(t, tab, sp.Kind, at, "dx", dx.Data, ref.dx, d)
				checkGrad(t, tab, sp.Kind, at, "dw", dw.Data, ref.dw, d)
			})
		}
	}
	tab.log(t, "large-scale")
}

// TestEdgeZeroRow: a zero row of x (row 1) and of W (class 2, the label of
// row 3). Documented behaviour: cos θ = 0 for that row and no gradient
// through its normalisation. So the loss must match the reference (which
// uses the same convention) for every kind; the gradient rows of a
// normalised zero row must be exactly 0 (x and W for ArcFace, CosFace,
// CombinedMargin; W for SphereFace); everything else must match the
// reference, except the gradient of an unnormalised zero row (x for
// SphereFace, x and W for LargeMargin), where the loss is not differentiable
// and only finiteness is required.
func TestEdgeZeroRow(t *testing.T) { forEachLevelAndPath(t, testEdgeZeroRow) }

func testEdgeZeroRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	tab := newErrTable()
	const n, c, d = 5, 4, 6
	const zx, zw = 1, 2
	var unchecked []string // non-zero gradient rows of unnormalised zero rows
	for _, sp := range allMarginSpecs() {
		at := sp.String()
		t.Run(at, func(t *testing.T) {
			x := drawLogits(rng, n*d, 1)
			w := drawLogits(rng, c*d, 1)
			labels := []int32{0, 0, 1, zw, 3}
			for k := range d {
				x[zx*d+k] = 0
				w[zw*d+k] = 0
			}
			ref := refMargin(sp, x, w, labels, n, c, d, nil)
			got, dx, dw := lossFinite(t, at, sp, x, w, labels, n, c, d)
			checkLoss(t, tab, sp.Kind, at, got, ref.loss)
			xNormalised := sp.normalised()
			wNormalised := sp.Kind != "largemargin"
			zeroRow := make([]float32, d)
			if xNormalised {
				require.Equal(t, zeroRow, dx.Data[zx*d:(zx+1)*d], "dx of the zero row")
			} else {
				if !slices.Equal(zeroRow, dx.Data[zx*d:(zx+1)*d]) {
					unchecked = append(unchecked, fmt.Sprintf("%s dx=%v", at, dx.Data[zx*d:(zx+1)*d]))
				}
				for k := zx * d; k < (zx+1)*d; k++ {
					dx.Data[k], ref.dx[k] = 0, 0
				}
			}
			if wNormalised {
				require.Equal(t, zeroRow, dw.Data[zw*d:(zw+1)*d], "dw of the zero row")
			} else {
				if !slices.Equal(zeroRow, dw.Data[zw*d:(zw+1)*d]) {
					unchecked = append(unchecked, fmt.Sprintf("%s dw=%v", at, dw.Data[zw*d:(zw+1)*d]))
				}
				for k := zw * d; k < (zw+1)*d; k++ {
					dw.Data[k], ref.dw[k] = 0, 0
				}
			}
			checkGrad(t, tab, sp.Kind, at, "dx", dx.Data, ref.dx, d)
			checkGrad(t, tab, sp.Kind, at, "dw", dw.Data, ref.dw, d)
		})
	}
	tab.log(t, "zero-row")
	// Informational: what the API returns where the gradient is undefined.
	if len(unchecked) == 0 {
		t.Logf("zero-row: the unnormalised zero rows (x for SphereFace, x and W for LargeMargin) got all-zero gradients")
	} else {
		t.Logf("zero-row: unchecked non-zero gradients of unnormalised zero rows: %v", unchecked)
	}
}

// TestEdgeZeroRowLargeMarginNonTarget: LargeMargin normalises nothing, and a
// class j that is no row's label enters the loss only through the linear
// logits z_ij = W_j·x_i. So at W_j = 0 the loss is differentiable in W_j,
// with ∂L/∂W_j = Σ_i ∂L/∂z_ij·x_i = Σ_i r·p_ij·x_i (p_ij at z_ij = 0), which
// the directional difference below confirms; "no gradient through the
// normalisation" has no normalisation to apply to here.
func TestEdgeZeroRowLargeMarginNonTarget(t *testing.T) {
	forEachLevelAndPath(t, testEdgeZeroRowLargeMarginNonTarget)
}

func testEdgeZeroRowLargeMarginNonTarget(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	const n, c, d, zw = 5, 4, 6, 2
	for _, sp := range []marginSpec{
		{Kind: "largemargin", Mi: 1, Red: loss.Sum},
		{Kind: "largemargin", Mi: 3, Lambda: 1, Red: loss.Mean},
	} {
		at := sp.String()
		t.Run(at, func(t *testing.T) {
			x := drawLogits(rng, n*d, 1)
			w := drawLogits(rng, c*d, 1)
			labels := []int32{0, 1, 3, 0, 1} // class zw is no row's label
			for k := range d {
				w[zw*d+k] = 0
			}
			ref := refMargin(sp, x, w, labels, n, c, d, nil)
			want := make([]float64, d)
			r := redScale(sp.Red, n)
			for i := range n {
				z := ref.z[i*c : (i+1)*c]
				mx := slices.Max(z)
				sum := 0.0
				for _, v := range z {
					sum += math.Exp(v - mx)
				}
				p := math.Exp(z[zw]-mx) / sum
				for k := range d {
					want[k] += r * p * x[i*d+k]
				}
			}
			// The analytic value agrees with a float64 central difference
			// of the reference loss along W_j.
			for k := range d {
				fd := fd64(func(p []float64) float64 {
					return refMargin(sp, x, p, labels, n, c, d, nil).loss
				}, slices.Clone(w), zw*d+k, fd64Step)
				require.InDelta(t, want[k], fd, 1e-8, "reference check, coordinate %d", k)
			}
			dw := nanMatrix(c, d)
			_, err := sp.api().Loss(matOf(n, d, to32(x)), matOf(c, d, to32(w)), labels, nil, &dw)
			require.NoError(t, err)
			e, k, scale := gradErr(dw.Data[zw*d:(zw+1)*d], want)
			assert.LessOrEqualf(t, e, gradRelTol*scale, "%s: dw of the zero, non-target W row: got %v want %v (worst at %d)",
				at, dw.Data[zw*d:(zw+1)*d], want, k)
		})
	}
}

// TestEdgeTargetFarBelowMax: targets more than ~709 below the largest
// logit, where the ratio r = Σ_{j≠y} e^(z_j − z_y) is beyond float64. The
// loss is then ≈ max − z_y and the gradient a one-hot difference; both must
// be finite and match the reference. LargeMargin (unnormalised, logits of
// ±1e4 with x antiparallel to W_y) and focal softmax (logits ±1000).
func TestEdgeTargetFarBelowMax(t *testing.T) { forEachLevelAndPath(t, testEdgeTargetFarBelowMax) }

func testEdgeTargetFarBelowMax(t *testing.T) {
	tab := newErrTable()
	const n, c, d = 4, 3, 5
	rng := rand.New(rand.NewPCG(21, 22))
	w := drawLogits(rng, c*d, 1)
	for j := range c {
		var s float64
		for k := range d {
			s += w[j*d+k] * w[j*d+k]
		}
		for k := range d {
			w[j*d+k] = f32(w[j*d+k] * 100 / math.Sqrt(s))
		}
	}
	labels := []int32{0, 1, 2, 1}
	x := make([]float64, n*d)
	for i := range n {
		y, o := int(labels[i]), (int(labels[i])+1)%c
		for k := range d {
			// Mostly −W_y, a little W_o so that class o clearly wins.
			x[i*d+k] = f32(-w[y*d+k] + 0.25*w[o*d+k])
		}
	}
	for _, sp := range []marginSpec{
		{Kind: "largemargin", Mi: 2, Lambda: 0},
		{Kind: "largemargin", Mi: 4, Lambda: f32(0.5), Red: loss.Sum},
		{Kind: "sphereface", Mi: 3, Lambda: 0},
	} {
		at := sp.String()
		t.Run(at, func(t *testing.T) {
			xs := x
			if sp.Kind == "sphereface" {
				xs = make([]float64, len(x))
				for k := range x {
					xs[k] = f32(x[k] * 1e3)
				}
			}
			ref := refMargin(sp, xs, w, labels, n, c, d, nil)
			require.Greater(t, ref.loss, 800.0, "%s: the case must put targets > 709 below the max", at)
			got, dx, dw := lossFinite(t, at, sp, xs, w, labels, n, c, d)
			checkLoss(t, tab, sp.Kind, at, got, ref.loss)
			checkGrad(t, tab, sp.Kind, at, "dx", dx.Data, ref.dx, d)
			checkGrad(t, tab, sp.Kind, at, "dw", dw.Data, ref.dw, d)
		})
	}
	for _, f := range []loss.Focal{{Gamma: 0}, {Gamma: 2}, {Gamma: 0.5, Reduction: loss.Sum}} {
		at := fmt.Sprintf("focal-softmax γ=%g", f.Gamma)
		t.Run(at, func(t *testing.T) {
			z := []float64{1000, -1000, 3, -2000, 1500, 0, 7, 8, -900}
			lab := []int32{1, 0, 2}
			// p_y underflows float64 (e^−908 and below), so the generic
			// reference's 1/p breaks down; the limit is exact to far beyond
			// float32: q = 1, F = 1 − γ·p_y·log p_y = 1, L = lse − z_y and
			// ∂L/∂z_j = p_j − δ_jy.
			scale := redScale(f.Reduction, 3)
			var refL float64
			refG := make([]float64, 9)
			for i := range 3 {
				row := z[i*3 : i*3+3]
				mx := slices.Max(row)
				var sum float64
				for _, v := range row {
					sum += math.Exp(v - mx)
				}
				lse := mx + math.Log(sum)
				refL += scale * (lse - row[lab[i]])
				for j, v := range row {
					refG[i*3+j] = scale * math.Exp(v-lse)
				}
				refG[i*3+int(lab[i])] -= scale
			}
			g := nanMatrix(3, 3)
			got, err := f.Softmax(matOf(3, 3, to32(z)), lab, &g)
			require.NoError(t, err)
			requireFinite(t, at, "loss", []float32{got})
			requireFinite(t, at, "dlogits", g.Data)
			checkLoss(t, tab, "focal-softmax", at, got, refL)
			checkGrad(t, tab, "focal-softmax", at, "dlogits", g.Data, refG, 3)
		})
	}
	tab.log(t, "target-far-below-max")
}
