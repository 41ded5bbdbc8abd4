package main

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"strings"

	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
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
var classColors = [mnistmlp.NumClass]color.RGBA{
	{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
	{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
	{188, 189, 34, 255}, {23, 190, 207, 255},
}

// Figure layout, in pixels: a header with the title, then one panel per
// model side by side and a legend column on the right.
const (
	plotDPI  = 96
	panelW   = 560 // width of one panel (axes included)
	panelH   = 590 // height of one panel (its title and axes included)
	headerH  = 78
	legendW  = 150
	plotSpan = 1.32 // each axis shows [-plotSpan, plotSpan]

	// Opacity of one dot: low, so that where many test images land on the
	// same spot the colour builds up and density shows.
	dotAlpha2D    = 0.05
	dotAlphaNear  = 0.22 // 3-D, hemisphere facing the viewer
	dotAlphaFar   = 0.05 // 3-D, far hemisphere
	rayAlphaFar   = 0.45
	dotRadius2D   = 4 // pixels
	dotRadius3D   = 3
	thumbRadiusPx = 5
)

// px converts pixels to vg lengths at plotDPI.
func px(n float64) vg.Length { return vg.Length(n) * vg.Inch / plotDPI }

// sans is a Liberation Sans font of the given size in points.
func sans(size vg.Length, bold bool) font.Font {
	f := font.Font{Typeface: "Liberation", Variant: "Sans", Size: size}
	if bold {
		f.Weight = xfont.WeightBold // gonum/plot's fonts use x/image's weights
	}
	return f
}

func withAlpha(c color.RGBA, a float64) color.NRGBA {
	return color.NRGBA{c.R, c.G, c.B, uint8(255*a + 0.5)}
}

// plotSize returns the size in pixels of the figure writePlot draws for n
// panels.
func plotSize(n int) (w, h int) { return n*panelW + legendW, headerH + panelH }

// writePlot draws the panels side by side into a PNG file.
func writePlot(path string, panels []plotPanel) error {
	img, err := renderPlot(panels)
	if err != nil {
		return err
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

// renderPlot draws the figure: per panel the L2-normalised test embeddings
// as translucent dots (on the unit circle for D = 2, on the unit sphere seen
// obliquely for D = 3) and each class weight's direction as a ray ending in
// its digit, with the title above and a legend on the right.
func renderPlot(panels []plotPanel) (image.Image, error) {
	if len(panels) == 0 {
		return nil, errors.New("plot: nothing to draw")
	}
	D := panels[0].D
	plots := make([]*plot.Plot, len(panels))
	for k, p := range panels {
		if p.D != 2 && p.D != 3 {
			return nil, fmt.Errorf("plot: needs -embed-dim 2 or 3, have %d", p.D)
		}
		if p.D != D {
			return nil, fmt.Errorf("plot: panels of dimension %d and %d", D, p.D)
		}
		if len(p.Emb) != len(p.Labels)*p.D {
			return nil, fmt.Errorf("plot: %s: %d embedding values for %d labels of dimension %d", p.Title, len(p.Emb), len(p.Labels), p.D)
		}
		if len(p.W)%p.D != 0 {
			return nil, fmt.Errorf("plot: %s: %d class weight values, not a multiple of %d", p.Title, len(p.W), p.D)
		}
		var err error
		if plots[k], err = panelPlot(p); err != nil {
			return nil, fmt.Errorf("plot: %s: %w", p.Title, err)
		}
	}

	w, h := plotSize(len(panels))
	cv := vgimg.NewWith(vgimg.UseImage(image.NewRGBA(image.Rect(0, 0, w, h))), vgimg.UseDPI(plotDPI))
	dc := draw.New(cv)

	// Header: title and a line on how to read the figure.
	title := text.Style{Font: sans(15, true), XAlign: draw.XCenter, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
	sub := title
	sub.Font = sans(10.5, false)
	sub.Color = color.Gray{70}
	what, how := "unit circle", ""
	if D == 3 {
		what, how = "unit sphere", " Sphere seen obliquely: far hemisphere faded, far rays dashed."
	}
	cx := (dc.Min.X + dc.Max.X) / 2
	dc.FillText(title, vg.Point{X: cx, Y: dc.Max.Y - px(10)}, "MNIST test embeddings, L2-normalised, on the "+what)
	dc.FillText(sub, vg.Point{X: cx, Y: dc.Max.Y - px(36)},
		"Each dot is one test image, drawn translucent: the colour deepens where images crowd.")
	dc.FillText(sub, vg.Point{X: cx, Y: dc.Max.Y - px(54)}, "Each ray is a class weight direction."+how)

	// Panels, each cropped so that its data area is square (equal scales).
	area := draw.Crop(dc, 0, -px(legendW), 0, -px(headerH))
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadLeft: px(6), PadRight: px(14), PadX: px(20), PadBottom: px(6), PadTop: px(4)}
	for k, p := range plots {
		c := tiles.At(area, k, 0)
		da := p.DataCanvas(c)
		if d := da.Max.X - da.Min.X - (da.Max.Y - da.Min.Y); d > 0 {
			c = draw.Crop(c, d/2, -d/2, 0, 0)
		} else {
			c = draw.Crop(c, 0, 0, -d/2, d/2)
		}
		p.Draw(c)
	}

	// Legend column.
	leg := plot.NewLegend()
	leg.TextStyle.Font = sans(11, false)
	leg.Top, leg.Left = true, true
	leg.Padding = px(6)
	for c := 0; c < mnistmlp.NumClass; c++ {
		leg.Add(fmt.Sprintf("digit %d", c), dotThumb(classColors[c]))
	}
	leg.Add("class weight", lineThumb{draw.LineStyle{Color: color.Gray{60}, Width: px(2)}})
	lc := draw.Crop(dc, px(float64(len(panels)*panelW+12)), 0, 0, -px(headerH+40))
	leg.Draw(lc)
	return cv.Image(), nil // the canvas draws on a copy of the image it was given
}

// panelPlot builds the plot of one panel.
func panelPlot(p plotPanel) (*plot.Plot, error) {
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.Title.TextStyle.Font = sans(13, true)
	pl.Title.Padding = px(8)
	for _, a := range []*plot.Axis{&pl.X, &pl.Y} {
		a.Min, a.Max = -plotSpan, plotSpan
		a.Label.TextStyle.Font = sans(11, false)
		a.Tick.Label.Font = sans(9.5, false)
		a.Tick.Marker = plot.ConstantTicks(ticks(-1, 1, 0.5))
		a.Padding = 0
	}
	if p.D == 2 {
		pl.X.Label.Text = "embedding dim 1 (normalised)"
		pl.Y.Label.Text = "embedding dim 2 (normalised)"
	} else {
		pl.X.Label.Text = "view x (unit sphere, projected)"
		pl.Y.Label.Text = "view y"
	}
	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = color.Gray{235}, color.Gray{235}
	pl.Add(grid)

	proj := projector(p.D)
	// Reference circle: the unit circle, or the sphere's outline; for the
	// sphere also its equator, dashed on the far side.
	outline := make(plotter.XYs, 0, 361)
	for i := 0; i <= 360; i++ {
		a := 2 * math.Pi * float64(i) / 360
		outline = append(outline, plotter.XY{X: math.Cos(a), Y: math.Sin(a)})
	}
	pl.Add(polyline(outline, draw.LineStyle{Color: color.Gray{150}, Width: px(1.2)}))
	if p.D == 3 {
		var near, far plotter.XYs
		for i := 0; i <= 360; i++ {
			a := 2 * math.Pi * float64(i) / 360
			x, y, front := proj([]float64{math.Cos(a), math.Sin(a), 0})
			if front {
				near = append(near, plotter.XY{X: x, Y: y})
			} else {
				far = append(far, plotter.XY{X: x, Y: y})
			}
		}
		pl.Add(polyline(far, draw.LineStyle{Color: color.Gray{190}, Width: px(1), Dashes: []vg.Length{px(3), px(3)}}))
		pl.Add(polyline(near, draw.LineStyle{Color: color.Gray{190}, Width: px(1)}))
	}

	// Dots, far side first so that the near side stays on top.
	D := p.D
	var pts [2]plotter.XYs
	var cls [2][]int32
	v := make([]float64, D)
	for i, y := range p.Labels {
		if y < 0 || y >= mnistmlp.NumClass {
			return nil, fmt.Errorf("label %d of test image %d is not a digit", y, i)
		}
		for j := range v {
			v[j] = float64(p.Emb[i*D+j])
		}
		x, yy, front := proj(unit(v))
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(yy) || math.IsInf(yy, 0) {
			return nil, fmt.Errorf("embedding of test image %d is not finite", i)
		}
		side := 0
		if front {
			side = 1
		}
		pts[side] = append(pts[side], plotter.XY{X: x, Y: yy})
		cls[side] = append(cls[side], y)
	}
	rays := classRays(p, proj)
	for side := 0; side < 2; side++ {
		alpha, radius := dotAlpha2D, px(dotRadius2D)
		if D == 3 {
			alpha, radius = []float64{dotAlphaFar, dotAlphaNear}[side], px(dotRadius3D)
		}
		if len(pts[side]) > 0 {
			labels := cls[side]
			s := &plotter.Scatter{XYs: pts[side]}
			s.GlyphStyleFunc = func(i int) draw.GlyphStyle {
				return draw.GlyphStyle{Color: withAlpha(classColors[labels[i]], alpha), Radius: radius, Shape: draw.CircleGlyph{}}
			}
			pl.Add(s)
		}
		pl.Add(rays[side]...)
	}
	return pl, nil
}

// classRays returns the class weight directions as rays from the origin
// with the digit just beyond their end, split into those on the far side
// (index 0; faded and dashed) and the near side (index 1). For D = 2 all
// are near.
func classRays(p plotPanel, proj func([]float64) (x, y float64, front bool)) [2][]plot.Plotter {
	var out [2][]plot.Plotter
	D := p.D
	for c := 0; c*D < len(p.W); c++ {
		v := make([]float64, D)
		for j := range v {
			v[j] = float64(p.W[c*D+j])
		}
		x, y, front := proj(unit(v))
		if math.IsNaN(x) || math.IsNaN(y) || math.IsInf(x, 0) || math.IsInf(y, 0) {
			continue
		}
		col := classColors[c%mnistmlp.NumClass]
		r := &ray{X: x, Y: y, Label: fmt.Sprint(c),
			Line: draw.LineStyle{Color: col, Width: px(2)},
			Text: text.Style{Color: col, Font: sans(12, true), XAlign: draw.XCenter, YAlign: draw.YCenter, Handler: plot.DefaultTextHandler}}
		side := 1
		if !front {
			side = 0
			r.Line.Color = withAlpha(col, rayAlphaFar)
			r.Line.Dashes = []vg.Length{px(5), px(3)}
			r.Text.Color = withAlpha(col, 0.7)
		}
		out[side] = append(out[side], r)
	}
	return out
}

// ray is a plotter for one class weight direction: a line from the origin
// to 1.1·(X, Y) and the label just beyond, on a white halo so that it stays
// legible over dots of its own colour.
type ray struct {
	X, Y  float64
	Label string
	Line  draw.LineStyle
	Text  text.Style
}

func (r *ray) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	c.StrokeLine2(r.Line, tx(0), ty(0), tx(1.1*r.X), ty(1.1*r.Y))
	// The label sits 14 px beyond the end of the ray, along it; a ray seen
	// nearly end-on (3-D) gets its label beside the end instead.
	ex, ey := tx(1.1*r.X), ty(1.1*r.Y)
	dx, dy := ex-tx(0), ey-ty(0)
	n := vg.Length(math.Hypot(float64(dx), float64(dy)))
	if n < px(20) {
		dx, dy, n = 1, 1, vg.Length(math.Sqrt2)
	}
	pt := vg.Point{X: ex + dx/n*px(14), Y: ey + dy/n*px(14)}
	halo := r.Text
	halo.Color = color.White
	for _, o := range [][2]float64{{-1, -1}, {-1, 1}, {1, -1}, {1, 1}, {0, 1.4}, {0, -1.4}, {1.4, 0}, {-1.4, 0}} {
		c.FillText(halo, vg.Point{X: pt.X + px(o[0]), Y: pt.Y + px(o[1])}, r.Label)
	}
	c.FillText(r.Text, pt, r.Label)
}

// projector maps a unit vector to the plane of the panel and says whether
// it faces the viewer: the identity for D = 2, an oblique view of the
// sphere for D = 3.
func projector(D int) func(v []float64) (x, y float64, front bool) {
	if D == 2 {
		return func(v []float64) (float64, float64, bool) { return v[0], v[1], true }
	}
	yaw, pitch := 0.6, 0.45
	cyw, syw, cp, sp := math.Cos(yaw), math.Sin(yaw), math.Cos(pitch), math.Sin(pitch)
	return func(v []float64) (float64, float64, bool) {
		x := cyw*v[0] - syw*v[1]
		y := syw*v[0] + cyw*v[1]
		z := v[2]
		y2 := cp*y - sp*z
		z2 := sp*y + cp*z
		return x, z2, y2 < 0
	}
}

// polyline is a line through xys in the given style.
func polyline(xys plotter.XYs, ls draw.LineStyle) *plotter.Line {
	return &plotter.Line{XYs: xys, LineStyle: ls}
}

// ticks returns lo, lo+step, …, hi as ticks labelled with %g.
func ticks(lo, hi, step float64) []plot.Tick {
	var t []plot.Tick
	for i := 0; ; i++ {
		v := lo + float64(i)*step
		if v > hi+step/2 {
			return t
		}
		t = append(t, plot.Tick{Value: v, Label: fmt.Sprintf("%g", v)})
	}
}

// dotThumb is an opaque legend dot.
type dotThumb color.RGBA

func (d dotThumb) Thumbnail(c *draw.Canvas) {
	c.DrawGlyph(draw.GlyphStyle{Color: color.RGBA(d), Radius: px(thumbRadiusPx), Shape: draw.CircleGlyph{}}, c.Center())
}

// lineThumb is a legend line.
type lineThumb struct{ draw.LineStyle }

func (l lineThumb) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(l.LineStyle, c.Min.X, y, c.Max.X, y)
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

// panelTitle is a plot panel's title: the head with its scale and margins
// as the log names them ("ArcFace s=10 m=0.3"; the pre-training and
// annealing details are left to the log) and the test accuracy.
func panelTitle(desc string, acc float64) string {
	for _, cut := range []string{", after", " λ="} {
		if i := strings.Index(desc, cut); i >= 0 {
			desc = desc[:i]
		}
	}
	return fmt.Sprintf("%s  (test acc %.4f)", desc, acc)
}
