package asm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// ---------------------------------------------------------------------------
// modulate family: every level bitwise its generic twin, on every shape
// (lengths 0..2·16·4+1 and two large ones, offsets 0..15, guard pages), with
// values around the thresholds, on them, NaN and ±Inf.

// modSrc is logits of scale s around the thresholds: random values, exact
// threshold values and their neighbours, NaN and ±Inf.
func modSrc(r *rand.Rand, n int, s float32, special []float32) []float32 {
	z := make([]float32, n)
	for i := range z {
		z[i] = float32(r.Float64()*2.4-1.2) * s
		switch i % 23 {
		case 3:
			z[i] = special[(i/23)%len(special)]
		case 7:
			z[i] = math.Nextafter32(special[(i/23)%len(special)], float32(math.Inf(1)))
		case 11:
			z[i] = math.Nextafter32(special[(i/23)%len(special)], float32(math.Inf(-1)))
		case 17:
			z[i] = []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}[(i/23)%3]
		}
	}
	return z
}

func checkModulate(t *testing.T, what string, s shape, got, gotD, want, wantD []float32) {
	for k := range want {
		if math.Float32bits(got[k]) != math.Float32bits(want[k]) && !(want[k] != want[k] && got[k] != got[k]) {
			t.Fatalf("%s %v: z[%d] = %v (%#x), generic %v (%#x)", what, s, k, got[k], math.Float32bits(got[k]), want[k], math.Float32bits(want[k]))
		}
		if math.Float32bits(gotD[k]) != math.Float32bits(wantD[k]) {
			t.Fatalf("%s %v: dz[%d] = %v, generic %v", what, s, k, gotD[k], wantD[k])
		}
	}
}

func TestClampGradKernel(t *testing.T) {
	r := rand.New(rand.NewSource(41))
	const s = 64
	hi := float32(s * (1 - 1e-3))
	src := modSrc(r, shapeMaxLen+shapeOffsets, s, []float32{hi, -hi, 0})
	rig := newShapeRig(t, [][]float32{src}, 2)
	for _, l := range clampGradImpl.Levels() {
		f, _ := clampGradImpl.At(l)
		rig.run(t, func(sh shape, in, out [][]float32) {
			want, wantD := append([]float32(nil), in[0]...), make([]float32, sh.n)
			clampGradGeneric(want, wantD, -hi, hi)
			copy(out[0], in[0])
			f(out[0], out[1], -hi, hi)
			checkModulate(t, fmt.Sprintf("%v ClampGrad", l), sh, out[0], out[1], want, wantD)
		})
	}
}

func TestHardNegativesKernel(t *testing.T) {
	r := rand.New(rand.NewSource(42))
	const s = 64
	thr := float32(s * -0.37)
	src := modSrc(r, shapeMaxLen+shapeOffsets, s, []float32{thr, 0, s})
	rig := newShapeRig(t, [][]float32{src}, 2)
	for _, l := range hardNegativesImpl.Levels() {
		f, _ := hardNegativesImpl.At(l)
		rig.run(t, func(sh shape, in, out [][]float32) {
			tt, inv := float32(0.3)+float32(sh.pick(3))*0.25, float32(1.0/s)
			want, wantD := append([]float32(nil), in[0]...), make([]float32, sh.n)
			hardNegativesGeneric(want, wantD, thr, tt, inv)
			copy(out[0], in[0])
			f(out[0], out[1], thr, tt, inv)
			checkModulate(t, fmt.Sprintf("%v HardNegatives", l), sh, out[0], out[1], want, wantD)
		})
	}
}

func TestModulateWrappers(t *testing.T) {
	z := []float32{-2, -1, 0, 1, 2}
	dz := make([]float32, 5)
	ClampGrad(z, dz, -1, 1)
	for k, w := range []float32{-1, -1, 0, 1, 1} {
		if z[k] != w || dz[k] != []float32{0, 1, 1, 1, 0}[k] {
			t.Fatalf("ClampGrad: z %v dz %v", z, dz)
		}
	}
	z = []float32{0.5, 0.1, -0.5}
	HardNegatives(z, dz, 0, 0.25, 1)
	if z[0] != 0.5*(0.25+0.5) || dz[0] != 0.25+1 || z[2] != -0.5 || dz[2] != 1 {
		t.Fatalf("HardNegatives: z %v dz %v", z, dz)
	}
	for name, f := range map[string]func(){
		"short dz":  func() { ClampGrad(make([]float32, 3), make([]float32, 2), 0, 1) },
		"lo > hi":   func() { ClampGrad(nil, nil, 1, 0) },
		"NaN bound": func() { ClampGrad(nil, nil, float32(math.NaN()), 1) },
		"short dz2": func() { HardNegatives(make([]float32, 3), make([]float32, 2), 0, 0, 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
