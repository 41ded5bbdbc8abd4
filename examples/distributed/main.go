// Command distributed trains examples/mnist's MLP with ArcFace on several
// processes, laid out as arcface_torch's partial-FC training: data parallel
// backbone, class-sharded head.
//
//   - Every rank holds the same backbone and embeds its share of each global
//     batch (rank r takes rows split(B, size, r)).
//   - The embeddings and labels are all-gathered, so every rank sees the
//     whole global batch.
//   - The class matrix W is sharded: rank r holds the classes
//     split(10, size, r) (0–4 and 5–9 on two ranks). Its ShardedHead
//     computes per-row statistics over its classes; MPI_Allreduce with MAX,
//     Rescale and MPI_Allreduce with SUM make them global; Backward gives
//     the loss, this shard's dW (which stays on the rank) and a partial dx
//     that is all-reduced with SUM.
//   - Each rank backpropagates its rows of dx through the backbone, the
//     backbone gradients are all-reduced with SUM and every rank takes the
//     same SGD step, so the backbones stay bitwise identical.
//
// After training, the test set is scored as examples/mnist scores it: the
// accuracy of the nearest class weight and verification by insightface's
// protocol (package eval: accuracy ± std over 10 folds, VAL at FAR 1e-3) on
// the same disjoint test pairs (mnistmlp.VerificationPairs).
//
// Before training, one step is checked against the unsharded
// loss.MarginSoftmax on rank 0. The last two lines printed are
//
//	sharded vs single process: loss rel diff A, dx max rel diff B, dw max rel diff C
//	test accuracy: 0.XXXX
//
// Run it with Open MPI (see README.md):
//
//	go build -o /tmp/dist . && mpirun -np 2 --oversubscribe /tmp/dist
//
// or, without MPI, as N ranks in one process: /tmp/dist -local 2.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/marginloss/marginloss/eval"
	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
	"github.com/marginloss/marginloss/loss"
)

func parseFlags(args []string, stderr io.Writer) (config, int, error) {
	c := defaultConfig()
	fs := flag.NewFlagSet("distributed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Epochs, "epochs", c.Epochs, "training epochs")
	fs.IntVar(&c.Batch, "batch", c.Batch, "global mini-batch size (the ranks share its rows)")
	fs.Float64Var(&c.LR, "lr", c.LR, "peak learning rate (linear warm-up, then cosine decay to 0)")
	fs.Float64Var(&c.Momentum, "momentum", c.Momentum, "SGD momentum")
	fs.Float64Var(&c.WeightDecay, "wd", c.WeightDecay, "weight decay (on weights, not biases)")
	fs.Float64Var(&c.Warmup, "warmup", c.Warmup, "learning-rate warm-up in epochs")
	fs.Float64Var(&c.Clip, "clip", c.Clip, "clip the global gradient norm to this (0 = off)")
	fs.IntVar(&c.Hidden, "hidden", c.Hidden, "hidden layer width")
	fs.IntVar(&c.EmbedDim, "embed-dim", c.EmbedDim, "embedding dimension")
	fs.Float64Var(&c.S, "s", c.S, "ArcFace scale")
	fs.Float64Var(&c.M, "m", c.M, "ArcFace margin (radians)")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "random seed (the same on every rank)")
	fs.IntVar(&c.TrainSize, "train-size", 0, "use only the first N training images (0 = all 60000)")
	fs.IntVar(&c.TestSize, "test-size", 0, "use only the first N test images (0 = all 10000)")
	fs.StringVar(&c.DataDir, "data", "", "folder with the four MNIST .gz files (default: the GoMNIST module's data/ in the module cache)")
	fs.StringVar(&c.Stats, "stats", c.Stats, "how the head's statistics are combined: allreduce (MAX, Rescale, SUM) or allgather (MergeShardStats)")
	fs.BoolVar(&c.EvalEach, "eval-each", false, "evaluate on the test set after every epoch")
	local := fs.Int("local", 0, "run this many ranks as goroutines of one process instead of MPI ranks (0 = MPI)")
	if err := fs.Parse(args); err != nil {
		return c, 0, err
	}
	switch {
	case fs.NArg() > 0:
		return c, 0, fmt.Errorf("unexpected arguments: %q", fs.Args())
	case c.Epochs <= 0 || c.Batch <= 0 || c.Hidden <= 0 || c.EmbedDim <= 0:
		return c, 0, errors.New("-epochs, -batch, -hidden and -embed-dim must be positive")
	case !(c.LR > 0):
		return c, 0, errors.New("-lr must be positive")
	case *local < 0:
		return c, 0, errors.New("-local must be ≥ 0")
	case c.Stats != "allreduce" && c.Stats != "allgather":
		return c, 0, fmt.Errorf("-stats: want allreduce or allgather, not %q", c.Stats)
	}
	if err := loss.ArcFace(float32(c.S), float32(c.M)).Validate(); err != nil {
		return c, 0, err
	}
	return c, *local, nil
}

func main() {
	cfg, local, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		os.Exit(2)
	}
	if local > 0 {
		if err := runLocal(cfg, local, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "distributed:", err)
			os.Exit(1)
		}
		return
	}
	comm, finalize, err := initMPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		os.Exit(1)
	}
	shareCores()
	if err := run(comm, cfg, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "distributed: rank %d: %v\n", comm.Rank(), err)
		if comm.Size() > 1 {
			abortMPI(1) // the other ranks may be waiting in a collective
		}
		os.Exit(1)
	}
	if err := finalize(); err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		os.Exit(1)
	}
}

// shareCores gives each of the ranks on this host an equal share of its
// cores, unless GOMAXPROCS is set. mpirun binds each rank to a core when
// there are enough of them (Go then sees one CPU anyway); without a binding
// (--bind-to none, or more ranks than cores) every rank would run
// GOMAXPROCS = all cores worth of threads against the others' and against
// MPI's busy-polling waits, which is several times slower (measured on 2
// cores: 12 s instead of 1.2 s per epoch).
func shareCores() {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	local, err := strconv.Atoi(os.Getenv("OMPI_COMM_WORLD_LOCAL_SIZE"))
	if err != nil || local <= 1 {
		return
	}
	runtime.GOMAXPROCS(max(1, runtime.NumCPU()/local))
}

// runLocal runs n ranks as goroutines of this process.
func runLocal(cfg config, n int, out io.Writer) error {
	comms := newLocalGroup(n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Go(func() { errs[r] = run(c, cfg, out) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run is one rank's program: load, train, report (rank 0 prints).
func run(c Comm, cfg config, out io.Writer) error {
	if c.Rank() != 0 {
		out = io.Discard
	}
	dir := cfg.DataDir
	if dir == "" {
		var err error
		if dir, err = mnistmlp.LocateMNIST(); err != nil {
			return err
		}
	}
	t0 := time.Now()
	trainSet, test, err := mnistmlp.LoadMNIST(dir)
	if err != nil {
		return err
	}
	trainSet, test = trainSet.Subset(cfg.TrainSize), test.Subset(cfg.TestSize)
	transport := "MPI"
	if _, ok := c.(localComm); ok {
		transport = "in-process"
	}
	fmt.Fprintf(out, "MNIST: %d training and %d test images (%.1fs)\n", trainSet.N, test.N, time.Since(t0).Seconds())
	fmt.Fprintf(out, "%d %s ranks, classes %s, global batch %d, ArcFace s=%g m=%g, MLP %d→%d→%d, %d epochs, GOMAXPROCS %d, %s kernels, stats %s\n",
		c.Size(), transport, shardDesc(c.Size()), cfg.Batch, cfg.S, cfg.M, mnistmlp.ImageSize, cfg.Hidden, cfg.EmbedDim,
		cfg.Epochs, runtime.GOMAXPROCS(0), loss.Backend(), cfg.Stats)
	res, err := train(c, cfg, trainSet, test, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "training %.1fs\n", res.TrainTime.Seconds())
	fmt.Fprintf(out, "backbone weights identical on all %d ranks: %v\n", c.Size(), res.Identical)
	if res.VerifyErr != nil {
		fmt.Fprintf(out, "verification n/a (%v)\n", res.VerifyErr)
	} else {
		v := res.Verify
		fmt.Fprintf(out, "verification %.4f ± %.4f, VAL %.4f ± %.4f @ FAR %.0e (%d folds, disjoint test pairs)\n",
			v.Accuracy, v.AccuracyStd, v.VAL, v.VALStd, eval.DefaultFARTarget, eval.DefaultFolds)
	}
	fmt.Fprintf(out, "sharded vs single process: loss rel diff %.3g, dx max rel diff %.3g, dw max rel diff %.3g\n",
		res.Check.Loss, res.Check.DX, res.Check.DW)
	fmt.Fprintf(out, "test accuracy: %.4f\n", res.Accuracy)
	return nil
}
