package main

// These tests need no MPI: the ranks run as goroutines over localGroup
// (also with CGO_ENABLED=0 or -tags nompi). TestMPIRun runs the program
// under mpirun when the binary has MPI and mpirun is on PATH.

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
)

func TestSplit(t *testing.T) {
	for n := 0; n <= 40; n++ {
		for parts := 1; parts <= 12; parts++ {
			next := 0
			for i := range parts {
				lo, hi := split(n, parts, i)
				if lo != next || hi < lo {
					t.Fatalf("split(%d, %d, %d) = [%d,%d), want it to start at %d", n, parts, i, lo, hi, next)
				}
				want := n / parts
				if i < n%parts {
					want++
				}
				if hi-lo != want {
					t.Fatalf("split(%d, %d, %d) has %d items, want %d", n, parts, i, hi-lo, want)
				}
				next = hi
			}
			if next != n {
				t.Fatalf("split(%d, %d, ·) covers [0,%d)", n, parts, next)
			}
		}
	}
	for _, c := range []struct {
		size int
		want string
	}{{1, "0-9"}, {2, "0-4|5-9"}, {3, "0-3|4-6|7-9"}, {4, "0-2|3-5|6-7|8-9"}} {
		if got := shardDesc(c.size); got != c.want {
			t.Errorf("shardDesc(%d) = %s, want %s", c.size, got, c.want)
		}
	}
}

// onRanks runs fn on each rank of an in-process group of size ranks.
func onRanks(size int, fn func(c Comm) error) []error {
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r, c := range newLocalGroup(size) {
		wg.Go(func() { errs[r] = fn(c) })
	}
	wg.Wait()
	return errs
}

func TestLocalComm(t *testing.T) {
	for size := 1; size <= 4; size++ {
		got := make([][]float32, size)
		errs := onRanks(size, func(c Comm) error {
			r := float32(c.Rank())
			sum := []float32{r, -r, 1}
			mx := []float32{r, -r, 1}
			if err := c.AllreduceSum(sum); err != nil {
				return err
			}
			if err := c.AllreduceMax(mx); err != nil {
				return err
			}
			all := make([]float32, 2*c.Size())
			if err := c.Allgather([]float32{r, 10 * r}, all); err != nil {
				return err
			}
			got[c.Rank()] = append(append(sum, mx...), all...)
			return nil
		})
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		s := float32(size * (size - 1) / 2)
		want := []float32{s, -s, float32(size), float32(size - 1), 0, 1}
		for r := range size {
			want = append(want, float32(r), float32(10*r))
		}
		for r, g := range got {
			if !slices.Equal(g, want) {
				t.Errorf("%d ranks: rank %d got %v, want %v", size, r, g, want)
			}
		}
	}
	// Lengths that differ between ranks are an error on every rank, not a
	// hang.
	errs := onRanks(3, func(c Comm) error { return c.AllreduceSum(make([]float32, 2+c.Rank()%2)) })
	for r, err := range errs {
		if err == nil {
			t.Errorf("rank %d: no error for mismatched lengths", r)
		}
	}
	errs = onRanks(2, func(c Comm) error { return c.Allgather(make([]float32, 2), make([]float32, 3)) })
	for r, err := range errs {
		if err == nil {
			t.Errorf("rank %d: no error for a short Allgather buffer", r)
		}
	}
}

func TestAllgatherRows(t *testing.T) {
	const cols = 3
	for size := 1; size <= 5; size++ {
		for _, n := range []int{0, 1, size - 1, size, 7, 10, 128} {
			if n < 0 {
				continue
			}
			errs := onRanks(size, func(c Comm) error {
				lo, hi := split(n, size, c.Rank())
				local := make([]float32, 0, (hi-lo)*cols)
				for i := lo; i < hi; i++ {
					for j := range cols {
						local = append(local, float32(i*cols+j))
					}
				}
				out := make([]float32, n*cols)
				if _, err := allgatherRows(c, local, n, cols, out, nil); err != nil {
					return err
				}
				for i, v := range out {
					if v != float32(i) {
						t.Errorf("%d ranks, n=%d: rank %d got %v at %d", size, n, c.Rank(), v, i)
						break
					}
				}
				return nil
			})
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// synthetic returns n images of 10 classes: each shows about 50 of its
// class's 80 pixels and 20 random ones, so that a small MLP learns them.
func synthetic(n int, seed uint64) *mnistmlp.Dataset {
	rng := rand.New(rand.NewPCG(seed, 7))
	proto := make([][]uint16, mnistmlp.NumClass)
	for c := range proto {
		for _, p := range rand.New(rand.NewPCG(uint64(c), 99)).Perm(mnistmlp.ImageSize)[:80] {
			proto[c] = append(proto[c], uint16(p))
		}
	}
	d := &mnistmlp.Dataset{N: n, Ptr: []int{0}}
	for range n {
		y := rng.IntN(mnistmlp.NumClass)
		set := map[uint16]bool{}
		for _, p := range proto[y] {
			if rng.Float64() < 0.6 {
				set[p] = true
			}
		}
		for range 20 {
			set[uint16(rng.IntN(mnistmlp.ImageSize))] = true
		}
		idx := make([]uint16, 0, len(set))
		for p := range set {
			idx = append(idx, p)
		}
		slices.Sort(idx)
		for _, p := range idx {
			d.Idx = append(d.Idx, p)
			d.Val = append(d.Val, 0.3+0.7*float32(rng.Float64()))
		}
		d.Ptr = append(d.Ptr, len(d.Idx))
		d.Labels = append(d.Labels, int32(y))
	}
	return d
}

func smallConfig() config {
	c := defaultConfig()
	c.Epochs, c.Batch, c.Hidden, c.EmbedDim = 2, 64, 64, 32
	return c
}

// TestShardedMatchesSingle trains on 1–5 in-process ranks with both ways
// of combining the statistics: the check step must agree with the
// unsharded loss, the backbones must stay identical, and the runs must
// agree with one another up to the order of float32 sums.
func TestShardedMatchesSingle(t *testing.T) {
	trainSet, test := synthetic(1000, 1), synthetic(300, 2)
	var ref result
	for _, stats := range []string{"allreduce", "allgather"} {
		for size := 1; size <= 5; size++ {
			cfg := smallConfig()
			cfg.Stats = stats
			res := make([]result, size)
			errs := onRanks(size, func(c Comm) error {
				r, err := train(c, cfg, trainSet, test, nil)
				res[c.Rank()] = r
				return err
			})
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("%s, %d ranks: %v", stats, size, err)
			}
			r := res[0]
			if ch := r.Check; !(ch.Loss <= 1e-5 && ch.DX <= 1e-5 && ch.DW <= 1e-5) {
				t.Errorf("%s, %d ranks: check step differs from the single-process loss: %+v", stats, size, ch)
			}
			if !r.Identical {
				t.Errorf("%s, %d ranks: backbones differ between ranks", stats, size)
			}
			for k, o := range res[1:] {
				if o.Accuracy != r.Accuracy || !slices.Equal(o.Losses, r.Losses) || o.Check != r.Check ||
					o.Verify.Accuracy != r.Verify.Accuracy || o.Verify.VAL != r.Verify.VAL || o.Verify.FAR != r.Verify.FAR {
					t.Errorf("%s, %d ranks: rank %d reports %+v, rank 0 %+v", stats, size, k+1, o, r)
				}
			}
			if size == 1 && stats == "allreduce" {
				ref = r
				if r.Accuracy < 0.9 {
					t.Errorf("1 rank: test accuracy %.4f on the synthetic set, want ≥ 0.9", r.Accuracy)
				}
				if r.VerifyErr != nil || r.Verify.Accuracy < 0.8 {
					t.Errorf("1 rank: verification %.4f (%v) on the synthetic set, want ≥ 0.8", r.Verify.Accuracy, r.VerifyErr)
				}
				continue
			}
			for ep, v := range r.Losses {
				if d := math.Abs(float64(v-ref.Losses[ep])) / float64(ref.Losses[ep]); d > 1e-3 {
					t.Errorf("%s, %d ranks: epoch %d loss %v, 1 rank %v", stats, size, ep+1, v, ref.Losses[ep])
				}
			}
			if math.Abs(r.Accuracy-ref.Accuracy) > 0.02 {
				t.Errorf("%s, %d ranks: accuracy %.4f, 1 rank %.4f", stats, size, r.Accuracy, ref.Accuracy)
			}
		}
	}
}

func TestTooManyRanks(t *testing.T) {
	errs := onRanks(mnistmlp.NumClass+1, func(c Comm) error {
		_, err := train(c, smallConfig(), synthetic(100, 1), synthetic(10, 2), nil)
		return err
	})
	for r, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "at least one class") {
			t.Errorf("rank %d: err = %v, want the one-class-per-rank error", r, err)
		}
	}
}

func TestFlags(t *testing.T) {
	var buf bytes.Buffer
	cfg, local, err := parseFlags([]string{"-epochs", "3", "-local", "2", "-stats", "allgather"}, &buf)
	if err != nil || cfg.Epochs != 3 || local != 2 || cfg.Stats != "allgather" {
		t.Fatalf("parseFlags: %+v, %d, %v", cfg, local, err)
	}
	for _, args := range [][]string{{"-epochs", "0"}, {"-stats", "bcast"}, {"-m", "2"}, {"-local", "-1"}, {"x"}} {
		if _, _, err := parseFlags(args, &buf); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
}

var lastLines = regexp.MustCompile(`sharded vs single process: loss rel diff (\S+), dx max rel diff (\S+), dw max rel diff (\S+)\ntest accuracy: (0\.\d{4})\n$`)

// checkOutput checks the program's last two lines: diffs ≤ 1e-5 and the
// accuracy at least minAcc.
func checkOutput(t *testing.T, out string, minAcc float64) {
	t.Helper()
	if !regexp.MustCompile(`\nverification [01]\.\d{4} ± \d\.\d{4}, VAL [01]\.\d{4} ± \d\.\d{4} @ FAR 1e-03 `).MatchString(out) {
		t.Errorf("no verification line:\n%s", out)
	}
	m := lastLines.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output does not end with the diff and accuracy lines:\n%s", out)
	}
	for _, s := range m[1:4] {
		if v, err := strconv.ParseFloat(s, 64); err != nil || !(v <= 1e-5) {
			t.Errorf("diff %s > 1e-5:\n%s", s, out)
		}
	}
	if acc, _ := strconv.ParseFloat(m[4], 64); acc < minAcc {
		t.Errorf("test accuracy %s < %g:\n%s", m[4], minAcc, out)
	}
}

// TestMNISTLocal trains briefly on MNIST with two in-process ranks.
func TestMNISTLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("loads MNIST")
	}
	cfg := defaultConfig()
	cfg.Epochs, cfg.TrainSize, cfg.TestSize = 1, 10000, 2000
	var out bytes.Buffer
	if err := runLocal(cfg, 2, &out); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, out.String(), 0.85)
	if !strings.Contains(out.String(), "backbone weights identical on all 2 ranks: true") {
		t.Errorf("backbones differ:\n%s", out.String())
	}
}

// TestMPIRun runs the program under mpirun -np 2 on a small subset.
func TestMPIRun(t *testing.T) {
	if testing.Short() || !mpiAvailable {
		t.Skip("needs MPI (a cgo build) and not -short")
	}
	mpirun, err := exec.LookPath("mpirun")
	if err != nil {
		t.Skip("mpirun is not on PATH")
	}
	goTool, err := mnistmlp.FindGoTool()
	if err != nil {
		t.Skip(err)
	}
	bin := filepath.Join(t.TempDir(), "dist")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(mpirun, "-np", "2", "--oversubscribe", bin, "-epochs", "1", "-train-size", "10000", "-test-size", "2000")
	cmd.Env = append(os.Environ(), "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	checkOutput(t, string(out), 0.85)
	if !strings.Contains(string(out), "2 MPI ranks") {
		t.Errorf("not two MPI ranks:\n%s", out)
	}
}
