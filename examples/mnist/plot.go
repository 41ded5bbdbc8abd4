package main

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// plotPanel is one trained model's test embeddings for the plot.
type plotPanel struct {
	Title  string
	Emb    []float32 // n×D, D = 2 or 3
	Labels []int32
	W      []float32 // C×D class weights (drawn as directions)
	D      int
}

// classColors is the tab10 palette.
var classColors = [numClass]color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

const (
	panelSize = 560 // square drawing area of one panel
	titleH    = 28
	legendH   = 26
)

// writePlot draws the panels side by side into a PNG file.
func writePlot(path string, panels []plotPanel) error {
	if len(panels) == 0 {
		return fmt.Errorf("plot: nothing to draw")
	}
	for _, p := range panels {
		if p.D != 2 && p.D != 3 {
			return fmt.Errorf("plot: needs -embed-dim 2 or 3, have %d", p.D)
		}
	}
	W := panelSize * len(panels)
	H := titleH + panelSize + legendH
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	for k, p := range panels {
		x0 := k * panelSize
		drawPanel(img, image.Rect(x0, titleH, x0+panelSize, titleH+panelSize), p)
		drawText(img, x0+(panelSize-7*len(p.Title))/2, titleH-9, p.Title, color.Black)
		if k > 0 {
			for y := 0; y < H; y++ {
				img.SetRGBA(x0, y, color.RGBA{200, 200, 200, 255})
			}
		}
	}
	// Legend: one coloured square and digit per class, centred.
	const item = 44
	lx := (W - numClass*item) / 2
	ly := titleH + panelSize + 6
	for c := 0; c < numClass; c++ {
		draw.Draw(img, image.Rect(lx+c*item, ly, lx+c*item+12, ly+12), &image.Uniform{classColors[c]}, image.Point{}, draw.Src)
		drawText(img, lx+c*item+16, ly+11, fmt.Sprint(c), color.Black)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("plot: %w", err)
	}
	return f.Close()
}

func drawText(img draw.Image, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// blend paints c with opacity a over pixel (x, y).
func blend(img *image.RGBA, x, y int, c color.RGBA, a float64) {
	if !(image.Point{x, y}.In(img.Rect)) {
		return
	}
	o := img.RGBAAt(x, y)
	mix := func(dst, src uint8) uint8 { return uint8(float64(dst)*(1-a) + float64(src)*a + 0.5) }
	img.SetRGBA(x, y, color.RGBA{mix(o.R, c.R), mix(o.G, c.G), mix(o.B, c.B), 255})
}

// dot2 paints a small soft disc of radius r at (fx, fy).
func dot2(img *image.RGBA, fx, fy, r float64, c color.RGBA, a float64) {
	for y := int(math.Floor(fy - r)); y <= int(math.Ceil(fy+r)); y++ {
		for x := int(math.Floor(fx - r)); x <= int(math.Ceil(fx+r)); x++ {
			d := math.Hypot(float64(x)+0.5-fx, float64(y)+0.5-fy)
			if cov := r + 0.5 - d; cov > 0 {
				blend(img, x, y, c, a*math.Min(cov, 1))
			}
		}
	}
}

// line paints a thin line from (x0,y0) to (x1,y1).
func line(img *image.RGBA, x0, y0, x1, y1 float64, c color.RGBA, a float64) {
	n := int(math.Hypot(x1-x0, y1-y0)) + 1
	for i := 0; i <= n; i++ {
		t := float64(i) / float64(n)
		blend(img, int(x0+t*(x1-x0)), int(y0+t*(y1-y0)), c, a)
	}
}

// unit returns v scaled to length 1 (v itself when it is 0).
func unit(v []float64) []float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	if s == 0 {
		return v
	}
	s = 1 / math.Sqrt(s)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x * s
	}
	return out
}

// jitter is a deterministic value in [0,1) for sample i.
func jitter(i int) float64 {
	x := uint64(i)*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E5
	x ^= x >> 31
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 29
	return float64(x>>11) / (1 << 53)
}

// drawPanel draws normalised embeddings: for D = 2 on the unit circle (with
// a small radial jitter so that density shows), for D = 3 on the unit sphere
// seen from an oblique angle (the far hemisphere faded). Class weight
// directions are drawn as rays.
func drawPanel(img *image.RGBA, r image.Rectangle, p plotPanel) {
	cx := float64(r.Min.X+r.Max.X) / 2
	cy := float64(r.Min.Y+r.Max.Y) / 2
	R := 0.40 * float64(r.Dx())
	gray := color.RGBA{160, 160, 160, 255}
	// Reference circle (the unit circle, or the sphere's outline).
	for i := 0; i < 2000; i++ {
		a := 2 * math.Pi * float64(i) / 2000
		blend(img, int(cx+R*math.Cos(a)), int(cy+R*math.Sin(a)), gray, 1)
	}
	// project maps a unit vector to the panel and says whether it faces the
	// viewer.
	var project func(v []float64) (x, y float64, front bool)
	if p.D == 2 {
		project = func(v []float64) (float64, float64, bool) { return cx + R*v[0], cy - R*v[1], true }
	} else {
		yaw, pitch := 0.6, 0.45
		cyw, syw, cp, sp := math.Cos(yaw), math.Sin(yaw), math.Cos(pitch), math.Sin(pitch)
		project = func(v []float64) (float64, float64, bool) {
			x := cyw*v[0] - syw*v[1]
			y := syw*v[0] + cyw*v[1]
			z := v[2]
			y2 := cp*y - sp*z
			z2 := sp*y + cp*z
			return cx + R*x, cy - R*z2, y2 < 0
		}
	}
	D := p.D
	n := len(p.Labels)
	// Far side first, then near side, so near points stay on top.
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < n; i++ {
			v := make([]float64, D)
			for j := range v {
				v[j] = float64(p.Emb[i*D+j])
			}
			v = unit(v)
			x, y, front := project(v)
			if front != (pass == 1) {
				continue
			}
			if D == 2 {
				// Radial jitter inside the circle: r ∈ [0.82, 1].
				s := 0.82 + 0.18*jitter(i)
				x, y = cx+(x-cx)*s, cy+(y-cy)*s
			}
			a := 0.35
			if !front {
				a = 0.08
			}
			dot2(img, x, y, 1.6, classColors[p.Labels[i]%numClass], a)
		}
	}
	// Class weight directions.
	for c := 0; c*D < len(p.W); c++ {
		v := make([]float64, D)
		for j := range v {
			v[j] = float64(p.W[c*D+j])
		}
		v = unit(v)
		x, y, front := project(v)
		a := 1.0
		if !front {
			a = 0.35
		}
		col := classColors[c%numClass]
		line(img, cx, cy, cx+(x-cx)*1.1, cy+(y-cy)*1.1, col, a)
		tx := min(max(int(cx+(x-cx)*1.16)-3, r.Min.X+2), r.Max.X-9)
		ty := min(max(int(cy+(y-cy)*1.16)+5, r.Min.Y+12), r.Max.Y-2)
		drawText(img, tx, ty, fmt.Sprint(c), col)
	}
}
