package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
	"github.com/marginloss/marginloss/loss"
)

// config holds the sizes and time budgets of a run.
type config struct {
	quick       bool
	kernelNs    []int         // row lengths of the memory-bound kernels
	n, d        int           // batch and embedding size of the heads and GEMMs
	classes     []int         // C of the heads
	batch       time.Duration // one timed batch of kernel calls
	repeats     int           // batches per kernel; the best counts
	headBudget  time.Duration // timed head calls stop after this much
	maxHeadRuns int
}

var defaultConfig = config{
	kernelNs: []int{512, 4096},
	n:        256, d: 512,
	classes:     []int{1000, 10000, 100000},
	batch:       40 * time.Millisecond,
	repeats:     3,
	headBudget:  300 * time.Millisecond,
	maxHeadRuns: 50,
}

var quickConfig = config{
	quick:    true,
	kernelNs: []int{256},
	n:        32, d: 64,
	classes:     []int{100, 1000},
	batch:       time.Millisecond,
	repeats:     2,
	headBudget:  2 * time.Millisecond,
	maxHeadRuns: 5,
}

// tileForBatch is the head's class tile for a batch of n rows (loss/head.go:
// min(max(tileFloats/n, minTile), maxTile) with tileFloats = 32Ki, minTile
// = 16, maxTile = 512), the per-tile GEMM shapes' class dimension.
func tileForBatch(n int) int { return min(max((32<<10)/n, 16), 512) }

// item is one measurement of the plan.
type item struct {
	name string
	run  func(r *Results) error
}

// progress prints "[i/n] name" lines to stderr, overwriting one line on a
// terminal.
type progress struct {
	w    io.Writer
	term bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.term = true
		}
	}
	return p
}

func (p *progress) step(i, n int, name string) {
	if p.term {
		fmt.Fprintf(p.w, "\r\033[K[%d/%d] %s ...", i, n, name)
	} else {
		fmt.Fprintf(p.w, "[%d/%d] %s\n", i, n, name)
	}
}

func (p *progress) done() {
	if p.term {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// measure runs every item of the plan whose name matches filter (all when
// filter is nil).
func measure(cfg config, filter *regexp.Regexp, prog *progress) (*Results, error) {
	res := &Results{
		Schema:  schemaName,
		Version: schemaVersion,
		Quick:   cfg.quick,
		Machine: describeMachine(),
		Kernels: []KernelRow{},
		Heads:   []HeadRow{},
	}
	var plan []item
	plan = append(plan, peakItems(cfg)...)
	plan = append(plan, kernelItems(cfg)...)
	plan = append(plan, bf16GemmItems(cfg)...)
	plan = append(plan, headPlanItems(cfg)...)
	var run []item
	for _, it := range plan {
		// The peak is always measured: frac_peak needs it.
		if filter == nil || filter.MatchString(it.name) || strings.HasPrefix(it.name, "peak/") {
			run = append(run, it)
		}
	}
	for i, it := range run {
		prog.step(i+1, len(run), it.name)
		if err := it.run(res); err != nil {
			prog.done()
			return nil, fmt.Errorf("%s: %v", it.name, err)
		}
	}
	prog.done()
	derive(res)
	return res, nil
}

// derive fills in each kernel row's speed-up over generic and fraction of
// the FMA peak.
func derive(r *Results) {
	type key struct{ family, name, size string }
	generic := map[key]float64{}
	for _, k := range r.Kernels {
		if k.Level == simd.Generic.String() {
			generic[key{k.Family, k.Name, k.Size}], _ = k.Throughput()
		}
	}
	for i := range r.Kernels {
		k := &r.Kernels[i]
		v, _ := k.Throughput()
		if g := generic[key{k.Family, k.Name, k.Size}]; g > 0 {
			k.Speedup = v / g
		}
		switch {
		case k.Family == "gemm-bf16" && k.Level == "avx512-pair":
			if r.BF16PeakGFLOPS > 0 {
				k.Frac = k.GFLOPS / r.BF16PeakGFLOPS
			}
		case k.Family == "gemm-bf16" && k.Level == "avx512-amx":
			if r.AMXPeakGFLOPS > 0 {
				k.Frac = k.GFLOPS / r.AMXPeakGFLOPS
			}
		case k.GFLOPS > 0 && r.FMAPeakGFLOPS > 0:
			k.Frac = k.GFLOPS / r.FMAPeakGFLOPS
		}
	}
}

// spread is the fastest, median and slowest of repeated timings.
type spread struct{ min, median, max float64 }

// spreadOf summarises v (non-empty); the median of an even count is the
// mean of the middle two.
func spreadOf(v []float64) spread {
	v = slices.Sorted(slices.Values(v))
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return spread{v[0], med, v[n-1]}
}

// bestNs returns the fastest time per call of fn, in ns; see timeNs.
func bestNs(cfg config, fn func()) float64 { return timeNs(cfg, fn).min }

// timeNs times fn per call, in ns: after a warm-up call it sizes a batch
// of calls to last about cfg.batch and times cfg.repeats batches; it
// returns the fastest, median and slowest batch.
func timeNs(cfg config, fn func()) spread {
	fn()
	calls := 1
	for {
		start := time.Now()
		for range calls {
			fn()
		}
		el := time.Since(start)
		if el >= cfg.batch/8 || calls >= 1<<30 {
			calls = max(1, int(float64(calls)*float64(cfg.batch)/float64(max(el, 1))))
			break
		}
		calls *= 8
	}
	runs := make([]float64, 0, cfg.repeats)
	for range max(cfg.repeats, 1) {
		start := time.Now()
		for range calls {
			fn()
		}
		runs = append(runs, float64(time.Since(start).Nanoseconds())/float64(calls))
	}
	return spreadOf(runs)
}

// fmaPeakFunc is asm's FMA peak probe, registered as "FMAPeakLoop": iters
// iterations of independent vector FMAs at level l, flopsPerIter flops
// each; ok is false when the CPU or build lacks l.
type fmaPeakFunc = func(l simd.Level, iters int) (flopsPerIter int, ok bool)

// peakItems time the FMA peak probe at every x86 level the CPU has.
func peakItems(cfg config) []item {
	probe, err := simd.Lookup[fmaPeakFunc]("FMAPeakLoop")
	if err != nil {
		return nil
	}
	var items []item
	for _, l := range simd.Usable() {
		if _, ok := probe(l, 1); !ok {
			continue
		}
		items = append(items, item{"peak/" + l.String(), func(r *Results) error {
			const iters = 1 << 14
			var flops int
			ns := bestNs(cfg, func() { flops, _ = probe(l, iters) })
			g := float64(flops) * iters / ns
			if r.FMAPeaks == nil {
				r.FMAPeaks = map[string]float64{}
			}
			r.FMAPeaks[l.String()] = g
			r.FMAPeakGFLOPS = max(r.FMAPeakGFLOPS, g)
			return nil
		}})
	}
	if amx, err := simd.Lookup[func(iters int) (int, bool)]("AMXPeakLoop"); err == nil {
		if _, ok := amx(1); ok {
			items = append(items, item{"peak/avx512-amx", func(r *Results) error {
				const iters = 1 << 12
				var flops int
				ns := bestNs(cfg, func() { flops, _ = amx(iters) })
				r.AMXPeakGFLOPS = float64(flops) * iters / ns
				return nil
			}})
		}
	}
	bf16, err := simd.Lookup[fmaPeakFunc]("BF16PeakLoop")
	if err != nil {
		return items
	}
	if _, ok := bf16(simd.AVX512, 1); ok {
		items = append(items, item{"peak/avx512-bf16", func(r *Results) error {
			const iters = 1 << 14
			var flops int
			ns := bestNs(cfg, func() { flops, _ = bf16(simd.AVX512, iters) })
			r.BF16PeakGFLOPS = float64(flops) * iters / ns
			return nil
		}})
	}
	return items
}

// bf16GemmItems time the bfloat16 GEMMs (asm.GemmNTBF16, GemmNNBF16,
// GemmTNBF16) at the head's per-tile shapes: at each usable level through
// its own bf16 driver, and at avx512 with each of its drivers forced
// (BF16ForceDriver: "avx512-amx", AMX tiles, where the CPU and OS have
// them; "avx512-pair", VDPBF16PS on pair packs; "avx512-round", the
// float32 kernel on rounded packs).
func bf16GemmItems(cfg config) []item {
	force, err := simd.Lookup[func(string) (func(), bool)]("BF16ForceDriver")
	if err != nil {
		return nil
	}
	rng := newFiller(10)
	n, d, ct := cfg.n, cfg.d, tileForBatch(cfg.n)
	x, w, g := rng.slice(n*d, 1), rng.slice(ct*d, 1), rng.slice(n*ct, 1)
	out := make([]float32, max(n*ct, n*d, ct*d))
	type gemm = func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	plain := func(f gemm, m, n, k int, a []float32, lda int, b []float32, ldb int) func() func() {
		return func() func() { return func() { f(m, n, k, 1, a, lda, b, ldb, 0, out, n) } }
	}
	ones := make([]float32, max(n, ct))
	for i := range ones {
		ones[i] = 1
	}
	// The head packs x̂ once per call and reuses it over every class tile:
	// "NT packed" and "TN packed" time that (the pack, under the level's
	// driver, outside the timed calls).
	var pa asm.PackedA
	var pb asm.PackedB
	shapes := []struct {
		name    string
		m, n, k int
		mk      func() func() // after the driver is set: the timed call
	}{
		{"NT", n, ct, d, plain(asm.GemmNTBF16, n, ct, d, x, d, w, d)},
		{"NT packed", n, ct, d, func() func() {
			pa.PackBF16(n, d, x, d)
			return func() { asm.GemmNTPackedScaled(ct, &pa, w, d, ones[:n], ones[:ct], out, ct) }
		}},
		{"NN", n, d, ct, plain(asm.GemmNNBF16, n, d, ct, g, ct, w, d)},
		{"TN", ct, d, n, plain(asm.GemmTNBF16, ct, d, n, g, ct, x, d)},
		{"TN packed", ct, d, n, func() func() {
			pb.PackBF16(n, d, x, d)
			return func() { asm.GemmTNPacked(ct, 1, g, ct, &pb, 0, out, d) }
		}},
	}
	var items []item
	for _, s := range shapes {
		size := fmt.Sprintf("m=%d n=%d k=%d", s.m, s.n, s.k)
		flops := 2 * float64(s.m*s.n*s.k)
		timeAt := func(level string, set func() (restore func(), ok bool)) item {
			return item{fmt.Sprintf("kernels/gemm-bf16/%s/%s/%s", s.name, size, level), func(r *Results) error {
				restore, ok := set()
				if !ok {
					return nil
				}
				defer restore()
				ns := bestNs(cfg, s.mk())
				r.Kernels = append(r.Kernels, KernelRow{Family: "gemm-bf16", Name: s.name, Level: level, Size: size, Ns: ns, GFLOPS: flops / ns})
				return nil
			}}
		}
		for _, l := range simd.Usable() {
			items = append(items, timeAt(l.String(), func() (func(), bool) {
				restore, err := simd.Force(l)
				return restore, err == nil
			}))
		}
		for _, name := range []string{"avx512-amx", "avx512-pair", "avx512-round"} {
			items = append(items, timeAt(name, func() (func(), bool) {
				if !simd.CPUSupports(simd.AVX512) {
					return nil, false
				}
				r1, err := simd.Force(simd.AVX512)
				if err != nil {
					return nil, false
				}
				r2, ok := force(name)
				if !ok {
					r1()
					return nil, false
				}
				return func() { r2(); r1() }, true
			}))
		}
	}
	return items
}

// kernelItems time each kernel at every level of its table, on one
// goroutine, calling the level's body directly.
func kernelItems(cfg config) []item {
	var items []item
	rng := newFiller(9)
	// GEMMs at the head's per-tile shapes.
	n, d, ct := cfg.n, cfg.d, tileForBatch(cfg.n)
	x, w, g := rng.slice(n*d, 1), rng.slice(ct*d, 1), rng.slice(n*ct, 1)
	out := make([]float32, max(n*ct, n*d, ct*d))
	for _, s := range []struct {
		name    string
		m, n, k int
		a       []float32
		lda     int
		b       []float32
		ldb     int
	}{
		{"NT", n, ct, d, x, d, w, d},  // logits Z = X̂·Ŵᵀ
		{"NN", n, d, ct, g, ct, w, d}, // dX̂ = G·Ŵ
		{"TN", ct, d, n, g, ct, x, d}, // dŴ = Gᵀ·X̂
	} {
		size := fmt.Sprintf("m=%d n=%d k=%d", s.m, s.n, s.k)
		flops := 2 * float64(s.m*s.n*s.k)
		items = append(items, levelItems(cfg, "gemm", "Gemm"+s.name, s.name, size, flops, 0,
			func(f func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)) {
				f(s.m, s.n, s.k, 1, s.a, s.lda, s.b, s.ldb, 0, out, s.n)
			})...)
	}
	for _, n := range cfg.kernelNs {
		x, y, dst := rng.slice(n, 1), rng.slice(n, 1), make([]float32, n)
		z := rng.slice(n, 4)
		t := rng.slice(n, 1.0/math.Sqrt(3)) // uniform in [−1, 1]
		size := fmt.Sprintf("n=%d", n)
		b := float64(4 * n) // one slice's bytes
		items = append(items,
			levelItems(cfg, "normalize", "SumSquares", "SumSquares", size, 0, b, func(f func([]float32) float32) {
				sinkF32ForReport += f(x)
			})...)
		items = append(items, levelItems(cfg, "normalize", "Scale", "Scale", size, 0, 2*b, func(f func(dst, x []float32, a float32)) {
			f(dst, x, 0.37)
		})...)
		items = append(items, levelItems(cfg, "normalize", "NormalizeBackward", "NormalizeBackward", size, 0, 3*b,
			func(f func(dx, dy, x []float32, inv, radial float32)) {
				f(dst, y, x, 0.05, 0.3)
			})...)
		items = append(items, levelItems(cfg, "exp", "Exp", "Exp", size, 0, 2*b, func(f func(dst, x []float32)) {
			f(dst, z)
		})...)
		items = append(items, levelItems(cfg, "lse", "MaxSumExp", "MaxSumExp", size, 0, b,
			func(f func(z []float32, m, s float32) (float32, float32)) {
				m, s := f(z, 1, 2)
				sinkF32ForReport += m + s
			})...)
		items = append(items, levelItems(cfg, "lse", "SoftmaxScaled", "SoftmaxScaled", size, 0, 2*b,
			func(f func(dst, z []float32, lse, scale float32)) {
				f(dst, z, 12, 30)
			})...)
		for _, g := range []struct {
			name string
			m    asm.Margin
		}{
			{"arc", asm.NewMargin(asm.MarginArc, 1, 0.5, 0, 0, 0)},
			{"combined", asm.NewMargin(asm.MarginCombined, 1, 0.3, 0.2, 0, 0)},
			{"psi", asm.NewMargin(asm.MarginPsi, 0, 0, 0, 4, 0)},
		} {
			// φ alone (the forward pass) and φ with φ′ (what the backward pass reads).
			items = append(items, levelItems(cfg, "margin", "MarginForward", g.name, size, 0, 2*b,
				func(f func(phi, dphi, t []float32, g *asm.Margin)) {
					f(dst, nil, t, &g.m)
				})...)
			items = append(items, levelItems(cfg, "margin", "MarginForward", g.name+"+dphi", size, 0, 3*b,
				func(f func(phi, dphi, t []float32, g *asm.Margin)) {
					f(dst, y, t, &g.m)
				})...)
		}
	}
	return items
}

// sinkF32ForReport keeps the results of the kernels that only return one.
var sinkF32ForReport float32

// levelItems are the items timing kernel table at each level it has here,
// reporting GFLOP/s when flops > 0 and GB/s of bytes otherwise.
func levelItems[F any](cfg config, family, table, name, size string, flops, bytes float64, call func(F)) []item {
	tab, err := simd.TableOf[F](table)
	if err != nil {
		return []item{{family + "/" + name, func(*Results) error { return err }}}
	}
	var items []item
	for _, l := range tab.Levels() {
		items = append(items, item{fmt.Sprintf("kernels/%s/%s/%s/%s", family, name, size, l), func(r *Results) error {
			f, ok := tab.At(l)
			if !ok {
				return fmt.Errorf("no body at %v", l)
			}
			t := timeNs(cfg, func() { call(f) })
			ns := t.min
			row := KernelRow{Family: family, Name: name, Level: l.String(), Size: size, Ns: ns,
				NsMin: t.min, NsMedian: t.median, NsMax: t.max}
			if flops > 0 {
				row.GFLOPS = flops / ns
			} else {
				row.GBPS = bytes / ns
			}
			r.Kernels = append(r.Kernels, row)
			return nil
		}})
	}
	return items
}

// filler is a small xorshift generator that fills large slices fast
// (the C = 100k class matrix has 51 million entries).
type filler struct{ s uint64 }

func newFiller(seed uint64) *filler { return &filler{s: seed*0x9E3779B97F4A7C15 | 1} }

func (f *filler) next() uint64 {
	f.s ^= f.s << 13
	f.s ^= f.s >> 7
	f.s ^= f.s << 17
	return f.s
}

// fill sets s to uniform values of standard deviation sd.
func (f *filler) fill(s []float32, sd float64) {
	a := float32(sd * math.Sqrt(3) * 2 / (1 << 24))
	c := float32(sd * math.Sqrt(3))
	for i := range s {
		s[i] = float32(f.next()>>40)*a - c
	}
}

func (f *filler) slice(n int, sd float64) []float32 {
	s := make([]float32, n)
	f.fill(s, sd)
	return s
}

// cmdHeadData is the inputs and gradient buffers of the heads at one C, made
// when an item first needs them.
type cmdHeadData struct {
	n, d, c         int
	x, dx           loss.Matrix
	w, dw           loss.Matrix
	logits, dlogits loss.Matrix
	centers         loss.Matrix
	labels          []int32
}

// cmdHeadEnv keeps the data of the C being measured and drops it for the next.
type cmdHeadEnv struct {
	cur *cmdHeadData
}

func (e *cmdHeadEnv) at(n, d, c int) *cmdHeadData {
	if e.cur != nil && e.cur.c == c {
		return e.cur
	}
	e.cur = nil
	runtime.GC()
	rng := newFiller(uint64(c))
	h := &cmdHeadData{n: n, d: d, c: c}
	h.x = loss.Matrix{Rows: n, Cols: d, Data: rng.slice(n*d, 1)}
	h.dx = loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
	h.labels = make([]int32, n)
	for i := range h.labels {
		h.labels[i] = int32(rng.next() % uint64(c))
	}
	e.cur = h
	return h
}

func (h *cmdHeadData) classes(rng *filler) {
	if h.w.Data == nil {
		h.w = loss.Matrix{Rows: h.c, Cols: h.d, Data: rng.slice(h.c*h.d, 1)}
		h.dw = loss.Matrix{Rows: h.c, Cols: h.d, Data: make([]float32, h.c*h.d)}
	}
}

// cmdHead is one loss of the report: call runs forward and backward on a
// head value that fresh made (so that the first call allocates the
// scratch), flops is per call (0: not reported).
type cmdHead struct {
	name  string
	fresh func(h *cmdHeadData) (call func() error)
	flops func(n, d, c int) float64
}

func cmdMarginHead(name string, mk func() *loss.MarginSoftmax) cmdHead {
	return cmdHead{
		name: name,
		fresh: func(h *cmdHeadData) func() error {
			h.classes(newFiller(uint64(h.c) + 1))
			head := mk()
			return func() error {
				_, err := head.Loss(h.x, h.w, h.labels, &h.dx, &h.dw)
				return err
			}
		},
		flops: func(n, d, c int) float64 { return 6 * float64(n) * float64(d) * float64(c) },
	}
}

// bf16Head is mk's head with Precision = BFloat16.
func bf16Head(mk func() *loss.MarginSoftmax) func() *loss.MarginSoftmax {
	return func() *loss.MarginSoftmax { h := mk(); h.Precision = loss.BFloat16; return h }
}

// cmdHeads are the losses of the report: every margin head at both
// precisions ("… bf16": Precision = BFloat16), focal and center loss.
var cmdHeads = []cmdHead{
	cmdMarginHead("ArcFace(64,0.5)", func() *loss.MarginSoftmax { return loss.ArcFace(64, 0.5) }),
	cmdMarginHead("CosFace(64,0.35)", func() *loss.MarginSoftmax { return loss.CosFace(64, 0.35) }),
	cmdMarginHead("CombinedMargin(64,1,0.3,0.2)", func() *loss.MarginSoftmax { return loss.CombinedMargin(64, 1, 0.3, 0.2) }),
	cmdMarginHead("SphereFace(4,0)", func() *loss.MarginSoftmax { return loss.SphereFace(4, 0) }),
	cmdMarginHead("LargeMargin(4,0)", func() *loss.MarginSoftmax { return loss.LargeMargin(4, 0) }),
	cmdMarginHead("AdaFace(64,0.4,0.333,0.01)", func() *loss.MarginSoftmax { return loss.AdaFace(64, 0.4, 0.333, 0.01) }),
	cmdMarginHead("MagFace(64,10,110,0.45,0.8,35)", func() *loss.MarginSoftmax { return loss.MagFace(64, 10, 110, 0.45, 0.8, 35) }),
	cmdMarginHead("ElasticArcFace(64,0.5,0.05)", func() *loss.MarginSoftmax { return loss.ElasticArcFace(64, 0.5, 0.05) }),
	cmdMarginHead("ElasticCosFace(64,0.35,0.05)", func() *loss.MarginSoftmax { return loss.ElasticCosFace(64, 0.35, 0.05) }),
	cmdMarginHead("CurricularFace(64,0.5,0.01)", func() *loss.MarginSoftmax { return loss.CurricularFace(64, 0.5, 0.01) }),
	cmdMarginHead("ArcFace(64,0.5) bf16", bf16Head(func() *loss.MarginSoftmax { return loss.ArcFace(64, 0.5) })),
	cmdMarginHead("CosFace(64,0.35) bf16", bf16Head(func() *loss.MarginSoftmax { return loss.CosFace(64, 0.35) })),
	cmdMarginHead("CombinedMargin(64,1,0.3,0.2) bf16", bf16Head(func() *loss.MarginSoftmax { return loss.CombinedMargin(64, 1, 0.3, 0.2) })),
	cmdMarginHead("SphereFace(4,0) bf16", bf16Head(func() *loss.MarginSoftmax { return loss.SphereFace(4, 0) })),
	cmdMarginHead("LargeMargin(4,0) bf16", bf16Head(func() *loss.MarginSoftmax { return loss.LargeMargin(4, 0) })),
	{
		name: "Focal(2)",
		fresh: func(h *cmdHeadData) func() error {
			if h.logits.Data == nil {
				rng := newFiller(uint64(h.c) + 2)
				h.logits = loss.Matrix{Rows: h.n, Cols: h.c, Data: rng.slice(h.n*h.c, 4)}
				h.dlogits = loss.Matrix{Rows: h.n, Cols: h.c, Data: make([]float32, h.n*h.c)}
			}
			f := loss.Focal{Gamma: 2}
			return func() error {
				_, err := f.Softmax(h.logits, h.labels, &h.dlogits)
				return err
			}
		},
	},
	{
		name: "Center(0.5)",
		fresh: func(h *cmdHeadData) func() error {
			h.classes(newFiller(uint64(h.c) + 1))
			if h.centers.Data == nil {
				h.centers = loss.Matrix{Rows: h.c, Cols: h.d, Data: make([]float32, h.c*h.d)}
			}
			copy(h.centers.Data, h.w.Data)
			c := &loss.Center{Centers: h.centers, Alpha: 0.5}
			return func() error {
				if _, err := c.Loss(h.x, h.labels, &h.dx); err != nil {
					return err
				}
				return c.Update(h.x, h.labels)
			}
		},
	},
}

// headPlanItems time every head at every C, on one core and on all of them.
func headPlanItems(cfg config) []item {
	var items []item
	env := &cmdHeadEnv{}
	threads := []int{1}
	if all := runtime.GOMAXPROCS(0); all > 1 {
		threads = append(threads, all)
	}
	for _, c := range cfg.classes {
		for _, hc := range cmdHeads {
			for _, t := range threads {
				name := fmt.Sprintf("heads/%s/C=%d/threads=%d", hc.name, c, t)
				items = append(items, item{name, func(r *Results) error {
					row, err := timeCmdHead(cfg, env.at(cfg.n, cfg.d, c), hc, t)
					if err != nil {
						return err
					}
					r.Heads = append(r.Heads, row)
					return nil
				}})
			}
		}
	}
	return items
}

// timeCmdHead measures one head on threads goroutines: the first call of a
// fresh head (its heap allocation is the extra memory), then calls until
// cfg.headBudget has passed.
func timeCmdHead(cfg config, h *cmdHeadData, hc cmdHead, threads int) (HeadRow, error) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(threads))
	call := hc.fresh(h)
	runtime.GC()
	runtime.GC() // twice: sync.Pool keeps a victim cache through one
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := call(); err != nil {
		return HeadRow{}, err
	}
	runtime.ReadMemStats(&after)
	row := HeadRow{
		Loss: hc.name, N: h.n, D: h.d, C: h.c, Threads: threads,
		ExtraMiB: float64(after.TotalAlloc-before.TotalAlloc) / (1 << 20),
	}
	var runs []float64 // seconds per call
	spent := time.Duration(0)
	for row.Calls < cfg.maxHeadRuns && (row.Calls == 0 || spent < cfg.headBudget) {
		start := time.Now()
		if err := call(); err != nil {
			return HeadRow{}, err
		}
		el := time.Since(start)
		spent += el
		runs = append(runs, el.Seconds())
		row.Calls++
	}
	t := spreadOf(runs)
	best := t.min
	row.Ms, row.MsMin, row.MsMedian, row.MsMax = best*1e3, t.min*1e3, t.median*1e3, t.max*1e3
	if hc.flops != nil {
		row.GFLOPS = hc.flops(h.n, h.d, h.c) / best / 1e9
	}
	return row, nil
}
