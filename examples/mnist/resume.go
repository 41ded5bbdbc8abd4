package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// trainState is everything a run needs to continue bitwise: every
// parameter with its optimizer state (optim.State: momentum buffers and
// step counts), the centre-loss centres, the random source and the sample
// order (each epoch shuffles the previous epoch's order), the iteration
// (learning rate, λ annealing, the softmax pre-training) and the epoch.
type trainState struct {
	params []*mnistmlp.Param // the backbone's
	states []optim.State     // the backbone's, one per param
	w      []float32         // the head's class weights W, C×D
	wState *optim.State      // W's (stepped inside the head's backward pass)
	c, d   int
	center *loss.Center // nil without -center
	src    *rand.PCG
	order  []int
	iter   int
	epoch  int // epochs done
}

// resumeKey is the configuration a checkpoint is only valid for: every
// flag that changes the training, except -epochs (a resumed run goes on up
// to the new -epochs) and the ones that only change what is printed.
func resumeKey(cfg config, name string) string {
	c := cfg
	c.Epochs, c.Losses, c.DataDir, c.Plot, c.EvalEach, c.CPUProfile, c.TestSize, c.Save, c.Resume = 0, nil, "", "", false, "", 0, "", ""
	c.LREpochs = cfg.lrEpochs()
	return fmt.Sprintf("loss=%s %+v", name, c)
}

// saveCheckpoint writes st to path in the safetensors format: the class
// weights as "w" (C×D, which Python reads with numpy or safetensors) and
// their optimizer state under "optim.w.", the backbone's as "backbone.N.w"
// and "optim.backbone.N.", then "center", "order", "rng.pcg" and
// "progress" (iteration, epochs done).
func saveCheckpoint(path string, cfg config, name string, st trainState) error {
	f := checkpoint.File{Metadata: map[string]string{
		"format":    "marginloss examples/mnist checkpoint 2",
		"config":    resumeKey(cfg, name),
		"lr_epochs": strconv.Itoa(cfg.lrEpochs()),
	}}
	if err := f.PutFloat32("w", st.w, st.c, st.d); err != nil {
		return err
	}
	if err := f.Save("optim.w.", st.wState); err != nil {
		return err
	}
	for i, p := range st.params {
		if err := f.PutFloat32(st.paramName(i), p.W, len(p.W)); err != nil {
			return err
		}
		if err := f.Save(st.stateName(i), &st.states[i]); err != nil {
			return err
		}
	}
	if st.center != nil {
		if err := f.PutMatrix("center", st.center.Centers); err != nil {
			return err
		}
	}
	b, err := st.src.MarshalBinary() // "pcg:" and the two 64-bit words, big-endian
	if err != nil {
		return err
	}
	pcg := []uint64{binary.BigEndian.Uint64(b[4:]), binary.BigEndian.Uint64(b[12:])}
	if err := f.PutUint64("rng.pcg", pcg, 2); err != nil {
		return err
	}
	order := make([]int32, len(st.order))
	for i, v := range st.order {
		order[i] = int32(v)
	}
	if err := f.PutInt32("order", order, len(order)); err != nil {
		return err
	}
	if err := f.PutUint64("progress", []uint64{uint64(st.iter), uint64(st.epoch)}, 2); err != nil {
		return err
	}
	return f.WriteFile(path)
}

// loadCheckpoint restores st from path, after checking that it was written
// by a run of the same configuration; st is untouched on error.
func loadCheckpoint(path string, cfg config, name string, st *trainState) error {
	f, err := checkpoint.ReadFile(path)
	if err != nil {
		return err
	}
	if got, want := f.Metadata["config"], resumeKey(cfg, name); got != want {
		if saved := f.Metadata["lr_epochs"]; saved != strconv.Itoa(cfg.lrEpochs()) {
			return fmt.Errorf("%s: its learning-rate schedule spans %s epochs, this run's %d: resume with -lr-epochs %s (and -epochs up to it)", path, saved, cfg.lrEpochs(), saved)
		}
		return fmt.Errorf("%s was saved by another configuration:\n  saved: %s\n  now:   %s", path, got, want)
	}
	// Everything is read into fresh values first, so that st is untouched
	// on error.
	w := make([]float32, len(st.w))
	if err := f.Float32("w", w, st.c, st.d); err != nil {
		return err
	}
	var wState optim.State
	if err := f.Load("optim.w.", &wState); err != nil {
		return err
	}
	pw := make([][]float32, len(st.params))
	states := make([]optim.State, len(st.params))
	for i, p := range st.params {
		pw[i] = make([]float32, len(p.W))
		if err := f.Float32(st.paramName(i), pw[i], len(p.W)); err != nil {
			return err
		}
		if err := f.Load(st.stateName(i), &states[i]); err != nil {
			return err
		}
	}
	var centers []float32
	if st.center != nil {
		centers = make([]float32, len(st.center.Centers.Data))
		m := st.center.Centers
		m.Data = centers
		if err := f.Matrix("center", m); err != nil {
			return err
		}
	}
	order := make([]int32, len(st.order))
	if err := f.Int32("order", order, len(order)); err != nil {
		return err
	}
	for _, v := range order {
		if v < 0 || int(v) >= len(order) {
			return fmt.Errorf("%s: sample order holds %d of %d", path, v, len(order))
		}
	}
	var pcg, prog [2]uint64
	if err := f.Uint64("rng.pcg", pcg[:], 2); err != nil {
		return err
	}
	if err := f.Uint64("progress", prog[:], 2); err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte("pcg:"), pcg[0]), pcg[1])
	if err := st.src.UnmarshalBinary(b); err != nil {
		return err
	}
	copy(st.w, w)
	*st.wState = wState
	for i, p := range st.params {
		copy(p.W, pw[i])
		st.states[i] = states[i]
	}
	if st.center != nil {
		copy(st.center.Centers.Data, centers)
	}
	for i, v := range order {
		st.order[i] = int(v)
	}
	st.iter, st.epoch = int(prog[0]), int(prog[1])
	return nil
}

// stateName is the tensor-name prefix of parameter i's optimizer state.
func (st trainState) stateName(i int) string { return fmt.Sprintf("optim.backbone.%d.", i) }

// paramName is the tensor name of the backbone's parameter i.
func (st trainState) paramName(i int) string { return fmt.Sprintf("backbone.%d.w", i) }
