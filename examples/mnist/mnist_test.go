package main

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
)

var (
	mnistOnce             sync.Once
	mnistTrain, mnistTest *mnistmlp.Dataset
	mnistErr              error
)

// loadReal loads MNIST from the GoMNIST module once per test binary.
func loadReal(t *testing.T) (*mnistmlp.Dataset, *mnistmlp.Dataset) {
	t.Helper()
	mnistOnce.Do(func() {
		dir, err := mnistmlp.LocateMNIST()
		if err != nil {
			mnistErr = err
			return
		}
		mnistTrain, mnistTest, mnistErr = mnistmlp.LoadMNIST(dir)
	})
	if mnistErr != nil {
		t.Fatalf("loading MNIST: %v", mnistErr)
	}
	return mnistTrain, mnistTest
}

// TestShortRun trains every head for one epoch on 2000 images and checks
// that the loss falls and the test accuracy is far above chance (0.1).
func TestShortRun(t *testing.T) {
	train, test := loadReal(t)
	train, test = train.Subset(2000), test.Subset(1000)
	heads := append([]string(nil), lossNames...)
	heads = append(heads, "arcface+center")
	for _, name := range heads {
		t.Run(name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.Epochs, cfg.Batch, cfg.EvalEach = 1, 32, false
			if l, ok := strings.CutSuffix(name, "+center"); ok {
				name = l
				cfg.Head.Center = 0.01
			}
			var log bytes.Buffer
			r, err := trainOne(cfg, name, train, test, &log, &log)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			ls := r.Losses
			if len(ls) != 2000/32+1 {
				t.Fatalf("%d iterations", len(ls))
			}
			first, last := mean(ls[:8]), mean(ls[len(ls)-8:])
			t.Logf("loss %.3f → %.3f, accuracy %.4f, %s", first, last, r.Eval.Accuracy, r.Eval.verifyDesc())
			if !(last < 0.8*first) {
				t.Errorf("loss did not fall: first batches %.4f, last batches %.4f", first, last)
			}
			if r.Eval.Accuracy < 0.5 {
				t.Errorf("test accuracy %.4f, want ≥ 0.5 (chance is 0.1)", r.Eval.Accuracy)
			}
			if r.Eval.Err != nil || r.Eval.Verify.Accuracy < 0.6 {
				t.Errorf("verification %.4f (%v), want ≥ 0.6 (chance is 0.5)", r.Eval.Verify.Accuracy, r.Eval.Err)
			}
		})
	}
}

func mean(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	return s / float64(len(v))
}

// TestRunOutput checks the command's output format and the plot: two heads
// with 2-D embeddings, a tiny run, and a PNG with two panels.
func TestRunOutput(t *testing.T) {
	loadReal(t) // fail early with a clear message when the data is missing
	plot := filepath.Join(t.TempDir(), "out.png")
	var out, prog bytes.Buffer
	cfg, err := parseFlags([]string{"-loss", "softmax,arcface", "-embed-dim", "2", "-epochs", "1",
		"-train-size", "1000", "-test-size", "500", "-plot", plot}, &prog)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(cfg, &out, &prog); err != nil {
		t.Fatalf("%v\n%s", err, prog.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if last := lines[len(lines)-1]; !regexp.MustCompile(`^test accuracy: [01]\.\d{4}$`).MatchString(last) {
		t.Errorf("last line %q", last)
	}
	if !strings.Contains(prog.String(), "samples/s") || !strings.Contains(prog.String(), "left") {
		t.Errorf("no progress lines in %q", prog.String())
	}
	f, err := os.Open(plot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if w, h := plotSize(2); img.Bounds() != image.Rect(0, 0, w, h) {
		t.Errorf("plot is %v, want %d×%d", img.Bounds(), w, h)
	}
}

// synthPanel returns n embeddings of dimension d, clustered around the class
// weight directions of the given classes (labels cycle through them).
func synthPanel(title string, n, d int, classes []int32) plotPanel {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(d)))
	p := plotPanel{Title: title, D: d, W: make([]float32, mnistmlp.NumClass*d)}
	for i := range p.W {
		p.W[i] = float32(rng.NormFloat64())
	}
	for i := 0; i < n; i++ {
		y := classes[i%len(classes)]
		p.Labels = append(p.Labels, y)
		for j := 0; j < d; j++ {
			p.Emb = append(p.Emb, p.W[int(y)*d+j]+0.3*float32(rng.NormFloat64()))
		}
	}
	return p
}

// decodePlot writes panels with writePlot and decodes the PNG.
func decodePlot(t *testing.T, panels []plotPanel) (image.Image, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.png")
	if err := writePlot(path, panels); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the PNG does not decode: %v", err)
	}
	if w, h := plotSize(len(panels)); img.Bounds() != image.Rect(0, 0, w, h) {
		t.Errorf("plot is %v, want %d×%d", img.Bounds(), w, h)
	}
	return img, nil
}

// colourShare returns the number of pixels of img within a small distance
// of c, and the share that are not white.
func colourShare(img image.Image, c color.RGBA) (near int, inked float64) {
	b := img.Bounds()
	var nNear, nInk int
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			r, g, bl = r>>8, g>>8, bl>>8
			if r < 250 || g < 250 || bl < 250 {
				nInk++
			}
			d := func(a uint32, b uint8) int { return max(int(a)-int(b), int(b)-int(a)) }
			if d(r, c.R) < 12 && d(g, c.G) < 12 && d(bl, c.B) < 12 {
				nNear++
			}
		}
	}
	return nNear, float64(nInk) / float64(b.Dx()*b.Dy())
}

func TestPlot(t *testing.T) {
	all := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	for _, tc := range []struct {
		name   string
		panels []plotPanel
	}{
		{"2-D, two panels", []plotPanel{synthPanel("a  (test acc 0.9000)", 3000, 2, all), synthPanel("b", 500, 2, all)}},
		{"3-D", []plotPanel{synthPanel("sphere", 2000, 3, all)}},
		{"3-D, three panels", []plotPanel{synthPanel("x", 50, 3, all), synthPanel("y", 50, 3, all), synthPanel("z", 50, 3, all)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := decodePlot(t, tc.panels)
			if err != nil {
				t.Fatal(err)
			}
			// Every class shows its colour (its legend dot at least), and
			// the figure is neither blank nor solid.
			for c, col := range classColors {
				if near, _ := colourShare(img, col); near < 40 {
					t.Errorf("class %d: colour %v on only %d pixels", c, col, near)
				}
			}
			if _, ink := colourShare(img, color.RGBA{}); ink < 0.02 || ink > 0.5 {
				t.Errorf("%.3f of the pixels are not white", ink)
			}
		})
	}
}

// TestPlotEdgeCases checks that odd inputs give an error or a valid image,
// never a panic.
func TestPlotEdgeCases(t *testing.T) {
	one := synthPanel("one class", 200, 2, []int32{7})
	one.W = one.W[7*2 : 8*2] // a head with a single class weight
	zero := synthPanel("zero vectors", 20, 3, []int32{1, 2})
	for i := range zero.Emb[:9] {
		zero.Emb[i] = 0 // three embeddings at the origin
	}
	copy(zero.W[3:6], []float32{0, 0, 0})
	copy(zero.W[6:9], []float32{0, 0, 1}) // seen almost end-on
	tiny := synthPanel("single point", 1, 2, []int32{3})
	tiny.W = nil
	nan := synthPanel("nan", 10, 2, []int32{0})
	nan.Emb[5] = float32(math.NaN())
	badLabel := synthPanel("bad label", 10, 2, []int32{0})
	badLabel.Labels[4] = 10
	short := synthPanel("short", 10, 2, []int32{0})
	short.Emb = short.Emb[:19]
	ragged := synthPanel("ragged W", 10, 3, []int32{0})
	ragged.W = ragged.W[:4]
	for _, tc := range []struct {
		name    string
		panels  []plotPanel
		wantErr string // "" = a valid image
	}{
		{"no panels", nil, "nothing to draw"},
		{"empty panel", []plotPanel{{Title: "empty", D: 2}}, ""},
		{"empty 3-D panel", []plotPanel{{Title: "empty", D: 3}}, ""},
		{"single class", []plotPanel{one}, ""},
		{"single point, no weights", []plotPanel{tiny}, ""},
		{"zero vectors", []plotPanel{zero}, ""},
		{"dimension 4", []plotPanel{{Title: "4-D", D: 4}}, "embed-dim 2 or 3"},
		{"dimension 0", []plotPanel{{Title: "0-D"}}, "embed-dim 2 or 3"},
		{"mixed dimensions", []plotPanel{{D: 2}, {D: 3}}, "dimension 2 and 3"},
		{"NaN embedding", []plotPanel{nan}, "not finite"},
		{"label out of range", []plotPanel{badLabel}, "not a digit"},
		{"embeddings and labels disagree", []plotPanel{short}, "embedding values"},
		{"ragged weights", []plotPanel{ragged}, "class weight values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodePlot(t, tc.panels)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v, want an image", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
	if err := writePlot(filepath.Join(t.TempDir(), "no", "such", "dir.png"), []plotPanel{one}); err == nil {
		t.Errorf("writing into a missing folder: no error")
	}
}

func TestFlags(t *testing.T) {
	var sink bytes.Buffer
	bad := [][]string{
		{"-loss", "nosuch"},
		{"-epochs", "0"},
		{"-plot", "x.png"}, // needs -embed-dim 2 or 3
		{"-hidden", "256,x"},
		{"extra"},
		{"-m", "2"}, // ArcFace margin ≥ π/2: rejected by Validate, before any data loads
		{"-loss", "sphereface", "-mi", "9"},
		{"-center", "0.1", "-center-alpha", "2"},
	}
	for _, args := range bad {
		_, err := parseFlags(args, &sink)
		if err == nil {
			t.Errorf("%q: no error", args)
			continue
		}
		if strings.Count(err.Error(), "loss:") > 1 {
			t.Errorf("%q: message stutters: %v", args, err)
		}
	}
	cfg, err := parseFlags([]string{"-loss", "Softmax, arcface", "-hidden", "300,100", "-embed-dim", "3"}, &sink)
	if err != nil || len(cfg.Losses) != 2 || cfg.Losses[0] != "softmax" || len(cfg.Hidden) != 2 || cfg.EmbedDim != 3 {
		t.Fatalf("%+v %v", cfg, err)
	}
	// -clip defaults to 5 at -embed-dim ≤ 3 and to off above; set, it wins.
	for _, c := range []struct {
		args []string
		want float64
	}{
		{nil, 0},
		{[]string{"-embed-dim", "3"}, 5},
		{[]string{"-embed-dim", "2"}, 5},
		{[]string{"-embed-dim", "4"}, 0},
		{[]string{"-clip", "7"}, 7},
		{[]string{"-embed-dim", "2", "-clip", "0"}, 0},
	} {
		cfg, err := parseFlags(c.args, &sink)
		if err != nil || cfg.clip() != c.want {
			t.Errorf("%q: clip %v (%v), want %v", c.args, cfg.clip(), err, c.want)
		}
	}
	if _, err := parseFlags([]string{"-clip", "-1"}, &sink); err == nil {
		t.Errorf("-clip -1: no error")
	}
}

// TestDeterministic checks that training gives bitwise the same losses for
// any GOMAXPROCS, and that the dense first layer agrees closely.
func TestDeterministic(t *testing.T) {
	train, test := loadReal(t)
	train, test = train.Subset(600), test.Subset(200)
	cfg := defaultConfig()
	cfg.Epochs, cfg.Batch, cfg.EvalEach, cfg.Head.Center = 1, 50, false, 0.01
	runWith := func(procs int, dense bool) []float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		cfg.DenseInput = dense
		r, err := trainOne(cfg, "arcface", train, test, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return r.Losses
	}
	a, b, c, d := runWith(1, false), runWith(3, false), runWith(2, true), runWith(1, true)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("iteration %d: loss %v with GOMAXPROCS=1, %v with 3", i, a[i], b[i])
		}
		if c[i] != d[i] {
			t.Fatalf("dense input, iteration %d: loss %v with GOMAXPROCS=2, %v with 1", i, c[i], d[i])
		}
		if math.Abs(float64(a[i]-c[i])) > 1e-3*(1+math.Abs(float64(a[i]))) {
			t.Errorf("iteration %d: sparse input %v, dense input %v", i, a[i], c[i])
		}
	}
}

func TestVerification(t *testing.T) {
	// Embeddings that are exactly their class direction verify perfectly;
	// random ones score near chance.
	const n, d = 2000, 16
	rng := rand.New(rand.NewPCG(5, 6))
	labels := make([]int32, n)
	dirs := make([]float32, mnistmlp.NumClass*d)
	for i := range dirs {
		dirs[i] = float32(rng.NormFloat64())
	}
	perfect := make([]float32, n*d)
	random := make([]float32, n*d)
	for i := range labels {
		labels[i] = int32(rng.IntN(mnistmlp.NumClass))
		copy(perfect[i*d:], dirs[int(labels[i])*d:int(labels[i]+1)*d])
		for j := 0; j < d; j++ {
			random[i*d+j] = float32(rng.NormFloat64())
		}
	}
	r := evaluate(perfect, labels, dirs, d)
	if r.Err != nil || r.Accuracy != 1 || r.Verify.Accuracy != 1 || r.Verify.VAL != 1 || r.Verify.FAR != 0 {
		t.Errorf("perfect embeddings: %+v", r)
	}
	r = evaluate(random, labels, dirs, d)
	if r.Err != nil || r.Accuracy > 0.2 || r.Verify.Accuracy > 0.56 || r.Verify.VAL > 0.05 {
		t.Errorf("random embeddings: accuracy %v, %s", r.Accuracy, r.verifyDesc())
	}
	if r := evaluate(random[:10*d], labels[:10], dirs, d); r.Err == nil {
		t.Errorf("10 images (2 pairs) for 10 folds: no error")
	}
}

// TestVerificationPairs: disjoint pairs, half of each kind, interleaved,
// and the same every time.
func TestVerificationPairs(t *testing.T) {
	_, test := loadReal(t)
	ia, ib, same := mnistmlp.VerificationPairs(test.Labels)
	if len(same) != test.N/2 {
		t.Errorf("%d pairs from %d images, want %d", len(same), test.N, test.N/2)
	}
	used := make([]bool, test.N)
	for k := range same {
		for _, i := range []int{ia[k], ib[k]} {
			if used[i] {
				t.Fatalf("image %d is in two pairs", i)
			}
			used[i] = true
		}
		if want := k%2 == 0; same[k] != want || (test.Labels[ia[k]] == test.Labels[ib[k]]) != want {
			t.Fatalf("pair %d (%d, %d): same = %v, labels %d and %d", k, ia[k], ib[k], same[k], test.Labels[ia[k]], test.Labels[ib[k]])
		}
	}
	ja, jb, _ := mnistmlp.VerificationPairs(test.Labels)
	if !slices.Equal(ia, ja) || !slices.Equal(ib, jb) {
		t.Error("the pairs differ between calls")
	}
}

// TestResume: the command pair, -epochs 1 -save f then -epochs 2
// -resume f, prints the test accuracy line of -epochs 2 (the learning-rate
// schedule spans 8 epochs whatever -epochs stops at) and ends with the same
// W and test embeddings, bit for bit: with centre loss (its centres are
// part of the state) and W stepped inside the head's backward pass, and
// with focal (W stepped by optim.SGD.Step after the head).
func TestResume(t *testing.T) {
	train, test := loadReal(t)
	ck := filepath.Join(t.TempDir(), "ck.safetensors")
	common := []string{"-train-size", "600", "-test-size", "400", "-batch", "50", "-center", "0.01", "-eval-each=false"}
	cfgOf := func(args ...string) config {
		t.Helper()
		cfg, err := parseFlags(append(slices.Clone(common), args...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	lastLine := func(cfg config) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(cfg, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return lines[len(lines)-1]
	}
	full := lastLine(cfgOf("-epochs", "2"))
	lastLine(cfgOf("-epochs", "1", "-save", ck))
	if got := lastLine(cfgOf("-epochs", "2", "-resume", ck)); got != full {
		t.Errorf("resumed: %q, uninterrupted: %q", got, full)
	}

	// What the checkpoint holds: W and the optimizer state of every
	// parameter, under names Python can find.
	f, err := checkpoint.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	names := f.Names()
	for _, want := range []string{"w", "optim.w.momentum_buffer", "optim.w.step", "optim.w.state",
		"backbone.0.w", "optim.backbone.0.momentum_buffer", "optim.backbone.3.step", "center", "order", "rng.pcg", "progress"} {
		if !slices.Contains(names, want) {
			t.Errorf("the checkpoint has no %q: %v", want, names)
		}
	}
	if info, _ := f.Info("w"); !slices.Equal(info.Shape, []int{mnistmlp.NumClass, 128}) {
		t.Errorf("w has shape %v", info.Shape)
	}

	train, test = train.Subset(600), test.Subset(400)
	for _, name := range []string{"arcface", "focal"} {
		ref, err := trainOne(cfgOf("-epochs", "2"), name, train, test, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		half, err := trainOne(cfgOf("-epochs", "1", "-save", ck), name, train, test, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(half.W, ref.W) {
			t.Fatalf("%s: one epoch and two give the same W: the comparison below proves nothing", name)
		}
		got, err := trainOne(cfgOf("-epochs", "2", "-resume", ck), name, train, test, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Losses) != len(ref.Losses)/2 {
			t.Errorf("%s: the resumed run took %d steps, want %d", name, len(got.Losses), len(ref.Losses)/2)
		}
		for what, pair := range map[string][2][]float32{"W": {ref.W, got.W}, "test embeddings": {ref.Emb, got.Emb}, "second-epoch losses": {ref.Losses[len(ref.Losses)/2:], got.Losses}} {
			if !slices.EqualFunc(pair[0], pair[1], func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
				t.Errorf("%s: %s differ after the resume", name, what)
			}
		}
	}
	// Another configuration is refused; another schedule length names the
	// flag that fixes it.
	if _, err := trainOne(cfgOf("-epochs", "2", "-lr", "0.05", "-resume", ck), "focal", train, test, io.Discard, io.Discard); err == nil {
		t.Error("-resume with another -lr: no error")
	}
	if _, err := trainOne(cfgOf("-epochs", "1", "-lr-epochs", "10", "-save", ck), "arcface", train, test, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if _, err := trainOne(cfgOf("-epochs", "2", "-resume", ck), "arcface", train, test, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "-lr-epochs 10") {
		t.Errorf("-resume of a 10-epoch schedule with the default one: %v, want an error naming -lr-epochs 10", err)
	}
	if _, err := parseFlags([]string{"-loss", "arcface,cosface", "-save", ck}, io.Discard); err == nil {
		t.Error("-save with two losses: no error")
	}
}

// TestPrecisionBF16: -precision bf16 trains the head in float32, then in
// bfloat16 from the same seed, prints both accuracies and times and their
// difference, and ends with the bfloat16 run's accuracy; a bad value is an
// error.
func TestPrecisionBF16(t *testing.T) {
	loadReal(t)
	var out, prog bytes.Buffer
	cfg, err := parseFlags([]string{"-precision", "bf16", "-epochs", "1", "-train-size", "2000", "-test-size", "500"}, &prog)
	if err != nil {
		t.Fatal(err)
	}
	if err := run(cfg, &out, &prog); err != nil {
		t.Fatalf("%v\n%s", err, prog.String())
	}
	s := out.String()
	f32 := regexp.MustCompile(`(?m)^arcface: test accuracy (0\.\d{4}),.*training [0-9.]+s$`).FindStringSubmatch(s)
	b16 := regexp.MustCompile(`(?m)^arcface bf16: test accuracy (0\.\d{4}),.*training [0-9.]+s \(bf16 dot instructions: (true|false)\)$`).FindStringSubmatch(s)
	diff := regexp.MustCompile(`(?m)^arcface: bfloat16 − float32 test accuracy [+-]0\.\d{4}, training time [0-9.]+s vs [0-9.]+s \([0-9.]+×\)$`).FindString(s)
	if f32 == nil || b16 == nil || diff == "" {
		t.Fatalf("missing float32, bf16 or comparison line in:\n%s", s)
	}
	if !strings.Contains(s, "bfloat16 GEMMs") {
		t.Errorf("the bf16 run's description does not say bfloat16 GEMMs:\n%s", s)
	}
	if !strings.HasSuffix(strings.TrimSpace(s), "test accuracy: "+b16[1]) {
		t.Errorf("last line is not the bf16 accuracy %s:\n%s", b16[1], s)
	}
	for _, a := range []string{f32[1], b16[1]} {
		if v, _ := strconv.ParseFloat(a, 64); v < 0.25 { // chance is 0.1
			t.Errorf("accuracy %s after one epoch on 2000 images", a)
		}
	}
	if _, err := parseFlags([]string{"-precision", "fp8"}, &prog); err == nil {
		t.Error("-precision fp8 accepted")
	}
}

// TestLREpochs: the schedule spans 8 epochs unless -lr-epochs says
// otherwise, or -epochs when longer; an -epochs past an explicit
// -lr-epochs is refused.
func TestLREpochs(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{nil, 8}, {[]string{"-epochs", "1"}, 8}, {[]string{"-epochs", "12"}, 12},
		{[]string{"-epochs", "2", "-lr-epochs", "3"}, 3}, {[]string{"-epochs", "3", "-lr-epochs", "3"}, 3},
	} {
		cfg, err := parseFlags(c.args, io.Discard)
		if err != nil || cfg.lrEpochs() != c.want {
			t.Errorf("%q: %d epochs of schedule (%v), want %d", c.args, cfg.lrEpochs(), err, c.want)
		}
	}
	if _, err := parseFlags([]string{"-epochs", "4", "-lr-epochs", "3"}, io.Discard); err == nil {
		t.Error("-epochs 4 -lr-epochs 3: no error")
	}
}
