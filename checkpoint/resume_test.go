package checkpoint_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// A small training loop: PartialFC (ArcFace, half the classes per step)
// over class weights W, stepped by momentum SGD inside the head's backward
// pass (the fused step: each sampled row lazily, with its own buffer and
// step count), on batches that depend only on the step index. Its whole
// state is W, W's optim.State, the PartialFC counter and the step.
const (
	resumeC, resumeD, resumeN = 64, 8, 16
	resumeSteps               = 6 // k: the run is 2k steps
)

var resumeOpt = optim.SGD{LR: 0.5, Momentum: 0.9, WeightDecay: 5e-4}

type resumeRun struct {
	w    loss.Matrix
	st   optim.State
	pfc  *loss.PartialFC
	step uint64
}

func newResumeRun() *resumeRun {
	r := rand.New(rand.NewPCG(1, 2))
	w := loss.Matrix{Rows: resumeC, Cols: resumeD, Data: make([]float32, resumeC*resumeD)}
	for i := range w.Data {
		w.Data[i] = float32(r.NormFloat64())
	}
	return &resumeRun{w: w, pfc: &loss.PartialFC{Head: loss.ArcFace(16, 0.3), SampleRate: 0.5, Seed: 11}}
}

func (run *resumeRun) train(t *testing.T, steps int) {
	run.pfc.Head.FusedStep = resumeOpt.Fused(&run.st)
	for range steps {
		r := rand.New(rand.NewPCG(run.step, 99))
		x := loss.Matrix{Rows: resumeN, Cols: resumeD, Data: make([]float32, resumeN*resumeD)}
		for i := range x.Data {
			x.Data[i] = float32(r.NormFloat64())
		}
		labels := make([]int32, resumeN)
		for i := range labels {
			labels[i] = int32(r.IntN(resumeC))
		}
		if _, err := run.pfc.Loss(x, run.w, labels, nil, nil); err != nil {
			t.Fatal(err)
		}
		run.step++
	}
}

func (run *resumeRun) save(path string) error {
	var f checkpoint.File
	if err := f.PutMatrix("w", run.w); err != nil {
		return err
	}
	if err := f.PutUint64("step", []uint64{run.step}); err != nil {
		return err
	}
	if err := f.Save("optim.w.", &run.st); err != nil {
		return err
	}
	if err := f.Save("partialfc.", checkpoint.PartialFC(run.pfc)); err != nil {
		return err
	}
	return f.WriteFile(path)
}

func (run *resumeRun) load(path string) error {
	f, err := checkpoint.ReadFile(path)
	if err != nil {
		return err
	}
	var step [1]uint64
	if err := f.Uint64("step", step[:]); err != nil {
		return err
	}
	if err := f.Matrix("w", run.w); err != nil {
		return err
	}
	if err := f.Load("optim.w.", &run.st); err != nil {
		return err
	}
	if err := f.Load("partialfc.", checkpoint.PartialFC(run.pfc)); err != nil {
		return err
	}
	run.step = step[0]
	return nil
}

// sameState reports whether two optim.States save the same bytes (kind,
// sizes, buffers, step counts).
func sameState(t *testing.T, a, b *optim.State) bool {
	t.Helper()
	var fa, fb checkpoint.File
	var ba, bb bytes.Buffer
	if err := errors.Join(fa.Save("s.", a), fb.Save("s.", b)); err != nil {
		t.Fatal(err)
	}
	fa.WriteTo(&ba)
	fb.WriteTo(&bb)
	return bytes.Equal(ba.Bytes(), bb.Bytes())
}

// TestResumeBitwise: k steps, a checkpoint, k more steps in a fresh process
// restored from it, equal 2k uninterrupted steps bit for bit: W and its
// optimizer state. The child is
// this test binary again (CHECKPOINT_RESUME_CHILD names the checkpoint).
func TestResumeBitwise(t *testing.T) {
	if path := os.Getenv("CHECKPOINT_RESUME_CHILD"); path != "" {
		run := newResumeRun()
		for i := range run.w.Data {
			run.w.Data[i] = 0 // everything must come from the file
		}
		if err := run.load(path); err != nil {
			t.Fatal(err)
		}
		run.train(t, resumeSteps)
		if err := run.save(path + ".out"); err != nil {
			t.Fatal(err)
		}
		return
	}
	ref := newResumeRun()
	ref.train(t, 2*resumeSteps)

	half := newResumeRun()
	half.train(t, resumeSteps)
	path := filepath.Join(t.TempDir(), "half.safetensors")
	if err := half.save(path); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestResumeBitwise$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "CHECKPOINT_RESUME_CHILD="+path)
	if out, err := cmd.CombinedOutput(); errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("cannot re-execute the test binary here (user-mode emulation without binfmt): %v", err)
	} else if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	resumed := newResumeRun()
	if err := resumed.load(path + ".out"); err != nil {
		t.Fatal(err)
	}
	if resumed.step != 2*resumeSteps || resumed.pfc.Calls() != 2*resumeSteps {
		t.Fatalf("resumed at step %d, %d draws; want %d", resumed.step, resumed.pfc.Calls(), 2*resumeSteps)
	}
	for i := range ref.w.Data {
		if math.Float32bits(ref.w.Data[i]) != math.Float32bits(resumed.w.Data[i]) {
			t.Fatalf("W[%d] = %v after the resume, %v uninterrupted", i, resumed.w.Data[i], ref.w.Data[i])
		}
	}
	if !sameState(t, &resumed.st, &ref.st) {
		t.Fatal("W's optimizer state after the resume differs from the uninterrupted one")
	}
	if sameState(t, &half.st, &ref.st) {
		t.Fatal("k and 2k steps leave the same optimizer state")
	}
	// The half-way state really differs (the test would pass trivially if
	// the steps did nothing).
	for i := range half.w.Data {
		if half.w.Data[i] != ref.w.Data[i] {
			return
		}
	}
	t.Fatal("k and 2k steps give the same W: the training does nothing")
}
