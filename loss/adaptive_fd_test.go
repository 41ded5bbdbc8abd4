package loss_test

// Float64 finite differences for the adaptive heads: a forward-only float64
// reference of each head at the cosine level, written from ADAPTIVE.md's
// formulas (what the authors' autograd differentiates: AdaFace's ŝ and
// CurricularFace's T and mask are constants of the call, MagFace's margin
// and regulariser move with ‖x‖), is differentiated by central differences
// and compared with LossFromCosinesNorms's dcos and dnorms. Points near a
// branch (a clamp, a mask threshold, a fallback) are moved off it first.

import (
	"math"
	"math/rand"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// adaRef is one head's float64 reference; the call's constants (ŝ, T, the
// draws) are fixed at the unperturbed point.
type adaRef struct {
	kind                string
	s, m                float64
	h, alpha            float64 // AdaFace, CurricularFace
	la, ua, lm, um, lam float64 // MagFace
	eps                 float64 // label smoothing
	shat, draws         []float64
	tCur                float64 // CurricularFace's T of the call
	easy                bool
	n, c                int
	labels              []int32
}

func (r *adaRef) loss(cos, norms []float64) float64 {
	var total float64
	const e = 1e-3
	z := make([]float64, r.c)
	for i := 0; i < r.n; i++ {
		row := cos[i*r.c : (i+1)*r.c]
		y := int(r.labels[i])
		t := row[y]
		for j, u := range row {
			z[j] = r.s * u
			switch r.kind {
			case "adaface":
				z[j] = r.s * math.Max(-1+e, math.Min(1-e, u))
			case "curricular":
				phi := t*math.Cos(r.m) - math.Sqrt(1-t*t)*math.Sin(r.m)
				if u > phi {
					z[j] = r.s * u * (r.tCur + u)
				}
			}
		}
		var phi float64
		switch r.kind {
		case "adaface":
			c := math.Max(-1+e, math.Min(1-e, t))
			th := math.Max(e, math.Min(math.Pi-e, math.Acos(c)-r.m*r.shat[i]))
			phi = math.Cos(th) - r.m - r.m*r.shat[i]
		case "magface":
			a := math.Max(r.la, math.Min(r.ua, norms[i]))
			mi := (r.um-r.lm)/(r.ua-r.la)*(a-r.la) + r.lm
			phi = math.Cos(math.Acos(t) + mi)
			if r.easy && t <= 0 {
				phi = t
			}
			total += r.lam * (a/(r.ua*r.ua) + 1/a)
		case "elasticarc":
			phi = math.Cos(math.Acos(t) + r.draws[i])
		case "elasticcos":
			phi = t - r.draws[i]
		case "curricular":
			phi = math.Cos(math.Acos(t) + r.m)
			if t <= math.Cos(math.Pi-r.m) {
				phi = t - math.Sin(math.Pi-r.m)*r.m
			}
		}
		z[y] = r.s * phi
		mx := math.Inf(-1)
		for _, v := range z {
			mx = math.Max(mx, v)
		}
		var se, zs float64
		for _, v := range z {
			se += math.Exp(v - mx)
			zs += v
		}
		lse := mx + math.Log(se)
		total += lse - (1-r.eps)*z[y] - r.eps/float64(r.c)*zs
	}
	return total / float64(r.n)
}

func TestAdaptiveFiniteDifferences(t *testing.T) {
	forEachLevel(t, func(t *testing.T) {
		rng := rand.New(rand.NewSource(31))
		const n, c = 6, 5
		for _, kind := range []string{"adaface", "magface", "elasticarc", "elasticcos", "curricular"} {
			for _, eps := range []float64{0, 0.1} {
				ref := &adaRef{kind: kind, s: 16, n: n, c: c, eps: eps, labels: make([]int32, n)}
				var l *loss.MarginSoftmax
				switch kind {
				case "adaface":
					ref.m, ref.h, ref.alpha = 0.4, 0.8, 0.5
					l = loss.AdaFace(16, 0.4, 0.8, 0.5)
				case "magface":
					ref.la, ref.ua, ref.lm, ref.um, ref.lam, ref.easy = 10, 110, 0.45, 0.8, 35, true
					l = loss.MagFace(16, 10, 110, 0.45, 0.8, 35)
				case "elasticarc":
					l = loss.ElasticArcFace(16, 0.5, 0.05)
				case "elasticcos":
					l = loss.ElasticCosFace(16, 0.35, 0.05)
				case "curricular":
					ref.m, ref.alpha = 0.5, 0.3
					l = loss.CurricularFace(16, 0.5, 0.3)
				}
				l.LabelSmoothing = float32(eps)
				cos := make([]float32, n*c)
				norms := make([]float32, n)
				for i := 0; i < n; i++ {
					ref.labels[i] = int32(rng.Intn(c))
					for j := 0; j < c; j++ {
						cos[i*c+j] = float32(rng.Float64()*1.6 - 0.8)
					}
					norms[i] = float32(5 + 120*rng.Float64())
					if math.Abs(float64(norms[i])-10) < 1 || math.Abs(float64(norms[i])-110) < 1 {
						norms[i] += 3 // off MagFace's clamp
					}
				}
				if kind == "elasticarc" || kind == "elasticcos" {
					l.Margins = make([]float32, n)
					ref.draws = make([]float64, n)
					for i := range l.Margins {
						l.Margins[i] = float32(0.3 + 0.3*rng.Float64())
						ref.draws[i] = float64(l.Margins[i])
					}
				}
				st0 := l.State()
				if kind == "curricular" {
					// T of the call, and every cosine off its row's mask threshold
					var sum float64
					for i := 0; i < n; i++ {
						sum += float64(cos[i*c+int(ref.labels[i])])
					}
					ref.tCur = float64(float32(sum/n*ref.alpha + (1-ref.alpha)*float64(st0.T)))
					for i := 0; i < n; i++ {
						tt := float64(cos[i*c+int(ref.labels[i])])
						phi := tt*math.Cos(ref.m) - math.Sqrt(1-tt*tt)*math.Sin(ref.m)
						for j := 0; j < c; j++ {
							if j != int(ref.labels[i]) && math.Abs(float64(cos[i*c+j])-phi) < 1e-3 {
								cos[i*c+j] += 0.01
							}
						}
					}
				}
				if kind == "adaface" {
					var sum, ss float64
					for _, v := range norms {
						sum += math.Min(100, float64(v))
					}
					mean := sum / n
					for _, v := range norms {
						d := math.Min(100, float64(v)) - mean
						ss += d * d
					}
					mu := float64(float32(mean*ref.alpha + (1-ref.alpha)*float64(st0.BatchMean)))
					sg := float64(float32(math.Sqrt(ss/(n-1))*ref.alpha + (1-ref.alpha)*float64(st0.BatchStd)))
					ref.shat = make([]float64, n)
					for i, v := range norms {
						ref.shat[i] = math.Max(-1, math.Min(1, ref.h*(math.Min(100, float64(v))-mu)/(sg+1e-3)))
					}
				}
				dcos := loss.Matrix{Rows: n, Cols: c, Data: make([]float32, n*c)}
				dn := make([]float32, n)
				if _, err := l.LossFromCosinesNorms(loss.Matrix{Rows: n, Cols: c, Data: cos}, norms, ref.labels, &dcos, dn); err != nil {
					t.Fatal(kind, err)
				}
				if kind == "adaface" {
					got := l.AppendMargins(nil)
					for i := range got {
						if math.Abs(float64(got[i])-ref.shat[i]) > 1e-6 {
							t.Fatalf("adaface ŝ_%d = %v, reference %v", i, got[i], ref.shat[i])
						}
					}
				}
				c64, n64 := make([]float64, n*c), make([]float64, n)
				for i, v := range cos {
					c64[i] = float64(v)
				}
				for i, v := range norms {
					n64[i] = float64(v)
				}
				fd := func(p []float64, k int) float64 {
					const h = 1e-6
					old := p[k]
					p[k] = old + h
					up := ref.loss(c64, n64)
					p[k] = old - h
					dn := ref.loss(c64, n64)
					p[k] = old
					return (up - dn) / (2 * h)
				}
				want := make([]float64, 0, n*c+n)
				got := make([]float32, 0, n*c+n)
				for k := range c64 {
					want = append(want, fd(c64, k))
					got = append(got, dcos.Data[k])
				}
				for k := range n64 {
					want = append(want, fd(n64, k))
					got = append(got, dn[k])
				}
				checkAdaVec(t, kind+" FD", got, want)
			}
		}
	})
}
