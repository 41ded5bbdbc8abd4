package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// levelOrder sorts the levels of a plot's legend.
var levelOrder = []string{"generic", "neon", "avx2", "avx512", "openblas"}

func levelRank(l string) int {
	if i := slices.Index(levelOrder, l); i >= 0 {
		return i
	}
	return len(levelOrder)
}

// levelColors are the bar colours of the levels (Okabe–Ito, colour-blind
// safe); with several files, each file after the first gets a lighter or
// darker shade of them.
var levelColors = map[string]color.RGBA{
	"generic":  {0x99, 0x99, 0x99, 0xff}, // grey
	"neon":     {0x00, 0x72, 0xb2, 0xff}, // blue
	"avx2":     {0x00, 0x72, 0xb2, 0xff}, // blue
	"avx512":   {0xd5, 0x5e, 0x00, 0xff}, // vermilion
	"openblas": {0x00, 0x9e, 0x73, 0xff}, // green
}

// seriesColor is level's colour in the shade of file number file.
func seriesColor(level string, file int) color.RGBA {
	c, ok := levelColors[level]
	if !ok {
		c = color.RGBA{0xcc, 0x79, 0xa7, 0xff} // purple
	}
	// 0: as is; then lighter, darker, lighter still, ...
	mix := func(to uint8, f float64) color.RGBA {
		m := func(v uint8) uint8 { return uint8(float64(v) + (float64(to)-float64(v))*f) }
		return color.RGBA{m(c.R), m(c.G), m(c.B), 0xff}
	}
	switch file % 4 {
	case 1:
		return mix(0xff, 0.5)
	case 2:
		return mix(0, 0.4)
	case 3:
		return mix(0xff, 0.75)
	}
	return c
}

// plotSeries is one bar per kernel group: one level of one result file.
type plotSeries struct {
	file  int
	level string
	label string
	color color.Color
}

// plotGroup is one kernel at one size: a row of bars.
type plotGroup struct {
	family, name, size string
	unit               string
	values             []float64 // per series, 0 when absent
}

// plotResults draws the kernels' throughput of every result file as a
// grouped horizontal bar chart into path (PNG): one row of bars per kernel
// and size, one bar per file and level, the GEMMs (GFLOP/s, with each
// file's FMA peak as a dashed line) above the memory-bound kernels (GB/s).
func plotResults(path string, rs []*Results, labels []string, logScale bool) error {
	// Series: each file's levels, in level order.
	var series []plotSeries
	for i, r := range rs {
		var levels []string
		for _, k := range r.Kernels {
			if !slices.Contains(levels, k.Level) {
				levels = append(levels, k.Level)
			}
		}
		slices.SortStableFunc(levels, func(a, b string) int { return levelRank(a) - levelRank(b) })
		for _, l := range levels {
			label := l
			if len(rs) > 1 {
				label = labels[i] + ": " + l
			}
			series = append(series, plotSeries{file: i, level: l, label: label})
		}
	}
	if len(series) == 0 {
		return fmt.Errorf("-plot: no kernel rows to plot")
	}
	for i := range series {
		series[i].color = seriesColor(series[i].level, series[i].file)
	}
	// Groups in order of first appearance, split by unit.
	var groups []*plotGroup
	index := map[[3]string]*plotGroup{}
	for i, r := range rs {
		for _, k := range r.Kernels {
			key := [3]string{k.Family, k.Name, k.Size}
			g := index[key]
			if g == nil {
				_, unit := k.Throughput()
				g = &plotGroup{family: k.Family, name: k.Name, size: k.Size, unit: unit, values: make([]float64, len(series))}
				index[key] = g
				groups = append(groups, g)
			}
			for s, sr := range series {
				if sr.file == i && sr.level == k.Level {
					g.values[s], _ = k.Throughput()
				}
			}
		}
	}
	var flopGroups, byteGroups []*plotGroup
	for _, g := range groups {
		if g.unit == "GFLOP/s" {
			flopGroups = append(flopGroups, g)
		} else {
			byteGroups = append(byteGroups, g)
		}
	}

	var peaks []float64
	for _, r := range rs {
		peaks = append(peaks, r.FMAPeakGFLOPS)
	}
	title := "marginloss kernels, one core"
	if len(rs) == 1 {
		title += ": " + rs[0].Machine.CPU
		if rs[0].Quick {
			title += " (quick run)"
		}
	} else {
		title += ": " + strings.Join(labels, " vs ")
	}

	// Layout: the panels stacked on the left, their heights following
	// their rows of bars; the legend in a column on the right.
	const (
		width      = 11 * vg.Inch
		titleH     = 0.45 * vg.Inch
		panelExtra = 0.75 * vg.Inch // axis, its label and ticks
	)
	// The legend column is as wide as its longest entry needs (thumbnail,
	// padding and text at the legend's 10 pt), at least 2.4 in.
	legendW := 2.4 * vg.Inch
	{
		sty := draw.TextStyle{Font: font.From(plot.DefaultFont, 10), Handler: plot.DefaultTextHandler}
		for _, sr := range series {
			legendW = max(legendW, sty.Width(sr.label+": FMA peak")+vg.Points(14+3+3+12))
		}
	}
	barH := vg.Points(max(4, min(9, 140/float64(len(series)))))
	rowH := func(rows, bars int) vg.Length { return vg.Length(rows) * barH * (vg.Length(bars) + 1.2) }
	var panels []*plot.Plot
	var heights, labelW []vg.Length
	for _, pg := range []struct {
		groups []*plotGroup
		unit   string
		peaks  bool
	}{{flopGroups, "GFLOP/s", true}, {byteGroups, "GB/s", false}} {
		if len(pg.groups) == 0 {
			continue
		}
		slots := panelSlots(pg.groups, len(series))
		p, err := barPanel(pg.groups, series, slots, pg.unit, logScale, pg.peaks, peaks, labels)
		if err != nil {
			return err
		}
		panels = append(panels, p)
		heights = append(heights, rowH(len(pg.groups), len(slots))+panelExtra)
		var w vg.Length
		for _, t := range p.Y.Tick.Marker.Ticks(p.Y.Min, p.Y.Max) {
			w = max(w, p.Y.Tick.Label.Width(t.Label))
		}
		labelW = append(labelW, w)
	}
	height := titleH
	for _, h := range heights {
		height += h
	}
	img := vgimg.New(width, height)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())

	// Title.
	tsty := plot.New().Title.TextStyle
	tsty.Font = font.From(plot.DefaultFont, 15)
	tsty.XAlign, tsty.YAlign = draw.XCenter, draw.YCenter
	dc.FillText(tsty, vg.Point{X: (width - legendW) / 2, Y: height - titleH/2}, title)

	// Panels, top to bottom, their data areas aligned: each is indented
	// by how much shorter its row labels are than the longest.
	const margin = 0.1 * vg.Inch
	top := height - titleH
	for i, p := range panels {
		c := draw.Crop(dc, margin+slices.Max(labelW)-labelW[i], -legendW, top-heights[i], top-height)
		p.Draw(c)
		top -= heights[i]
	}

	// Legend.
	leg := plot.NewLegend()
	leg.TextStyle.Font = font.From(plot.DefaultFont, 10)
	leg.Top, leg.Left = true, true
	leg.ThumbnailWidth = vg.Points(14)
	leg.Padding = vg.Points(3)
	for _, s := range series {
		leg.Add(s.label, barThumb{s.color})
	}
	if len(flopGroups) > 0 {
		for i, pk := range peaks {
			if pk > 0 {
				name := "FMA peak"
				if len(rs) > 1 {
					name = labels[i] + ": FMA peak"
				}
				leg.Add(name, peakLine(i, 0, 1))
			}
		}
	}
	leg.Draw(draw.Crop(dc, width-legendW+vg.Points(6), 0, 0, -titleH-vg.Points(8)))

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// panelSlots are the series with a value in groups: each gets a slot in
// every row of their panel.
func panelSlots(groups []*plotGroup, nseries int) []int {
	var slots []int
	for s := range nseries {
		for _, g := range groups {
			if g.values[s] > 0 {
				slots = append(slots, s)
				break
			}
		}
	}
	return slots
}

// barPanel is one panel: groups as rows (the first on top), a bar per
// series of slots, the value printed at each bar's end.
func barPanel(groups []*plotGroup, series []plotSeries, slots []int, unit string, logScale, drawPeaks bool, peaks []float64, labels []string) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = unit + " (one core)"
	if logScale {
		p.X.Label.Text += ", log scale"
	}
	p.X.Label.TextStyle.Font.Size = 11
	p.Y.Tick.Label.Font.Size = 10
	p.X.Tick.Label.Font.Size = 10
	p.Add(plotter.NewGrid())
	n := len(groups)
	lo, hi := math.Inf(1), 0.0
	for _, g := range groups {
		for _, v := range g.values {
			if v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if drawPeaks {
		for _, pk := range peaks {
			if pk > 0 {
				lo, hi = min(lo, pk), max(hi, pk)
			}
		}
	}
	if hi == 0 {
		lo, hi = 0.1, 1
	}
	if logScale {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
		p.X.Min, p.X.Max = lo/2, hi*2.5 // room for the value labels
	} else {
		p.X.Min, p.X.Max = 0, hi*1.15
	}
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	var ticks []plot.Tick
	for i, g := range groups {
		ticks = append(ticks, plot.Tick{Value: float64(n - 1 - i), Label: fmt.Sprintf("%s %s %s", g.family, g.name, g.size)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Tick.Length = 0
	step := 0.84 / float64(max(1, len(slots)))
	for j, s := range slots {
		vals := make([]float64, n)
		for i, g := range groups {
			vals[n-1-i] = g.values[s]
		}
		p.Add(&hbars{values: vals, offset: 0.42 - step*(float64(j)+0.5), width: step * 0.9, color: series[s].color})
	}
	if drawPeaks {
		for i, pk := range peaks {
			if pk > 0 {
				p.Add(peakLine(i, pk, float64(n)))
			}
		}
	}
	return p, nil
}

// hbars draws one series of horizontal bars, bar i centred at y = i +
// offset, from the axis minimum to its value, with the value at its end.
type hbars struct {
	values        []float64
	offset, width float64
	color         color.Color
}

func (b *hbars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	sty := p.X.Tick.Label
	sty.Font = font.From(plot.DefaultFont, vg.Length(max(5, min(8, float64(trY(b.width)-trY(0))*1.2))))
	sty.XAlign, sty.YAlign = draw.XLeft, draw.YCenter
	x0 := trX(p.X.Min)
	for i, v := range b.values {
		if !(v > 0) {
			continue
		}
		y := float64(i) + b.offset
		y0, y1 := trY(y-b.width/2), trY(y+b.width/2)
		x1 := trX(min(v, p.X.Max))
		c.FillPolygon(b.color, []vg.Point{{X: x0, Y: y0}, {X: x1, Y: y0}, {X: x1, Y: y1}, {X: x0, Y: y1}})
		c.FillText(sty, vg.Point{X: x1 + vg.Points(2), Y: trY(y)}, fmtNum(v))
	}
}

func (b *hbars) Thumbnail(c *draw.Canvas) { barThumb{b.color}.Thumbnail(c) }

// barThumb is a bar series' legend entry.
type barThumb struct{ color color.Color }

func (t barThumb) Thumbnail(c *draw.Canvas) {
	r := c.Rectangle
	c.FillPolygon(t.color, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}})
}

// peakLine is a dashed vertical line at x = peak over the panel's rows,
// styled per file.
func peakLine(file int, peak, rows float64) *plotter.Line {
	l, _ := plotter.NewLine(plotter.XYs{{X: peak, Y: -0.5}, {X: peak, Y: rows - 0.5}})
	l.LineStyle.Width = vg.Points(1.5)
	l.LineStyle.Color = color.RGBA{0x20, 0x20, 0x20, 0xff}
	l.LineStyle.Dashes = [][]vg.Length{{vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)}, {vg.Points(8), vg.Points(2), vg.Points(2), vg.Points(2)}}[file%3]
	return l
}

// logTicks labels 1, 2 and 5 times the powers of ten on a log axis.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for m := 1; m < 10; m++ {
			v := float64(m) * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = fmt.Sprintf("%g", v)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
