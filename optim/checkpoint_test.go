package optim_test

import (
	"bytes"
	"errors"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// roundTrip saves st under prefix into a File, writes its bytes, and parses
// them back, as a checkpoint on disk would go.
func roundTrip(t *testing.T, prefix string, st *optim.State) *checkpoint.File {
	t.Helper()
	var f checkpoint.File
	if err := f.Save(prefix, st); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	g, err := checkpoint.Parse(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// stateBytes is st's saved form: two States with the same bytes hold the
// same kind, form, sizes, buffers and step counts.
func stateBytes(t *testing.T, st *optim.State) []byte {
	t.Helper()
	var f checkpoint.File
	if err := f.Save("s.", st); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A training history to resume: each form steps a parameter k times, and
// the State saved after k steps, restored into a fresh State, must carry
// the next k steps to the bits of 2k uninterrupted ones.
type history struct {
	name string
	// step takes step i of the history on p with st.
	step func(t *testing.T, i int, p []float32, st *optim.State)
}

const histRows, histCols = 24, 16

func histGrad(i int) []float32 {
	return randSlice(rand.New(rand.NewSource(int64(100+i))), histRows*histCols, 0.2)
}

// histRowsAt lists a different, ascending set of rows on each call, some
// rows on most calls and some on few, so that the per-row counts differ.
func histRowsAt(i int) []int32 {
	var rows []int32
	for r := range int32(histRows) {
		if (int(r)+i)%3 != 0 || r%5 == 0 {
			rows = append(rows, r)
		}
	}
	return rows
}

func histories() []history {
	var hs []history
	opts := []struct {
		name string
		o    stepper
	}{
		{"sgd-momentum", optim.SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4}},
		{"sgd-dampening", optim.SGD{LR: 0.1, Momentum: 0.8, Dampening: 0.3}},
		{"sgd-nesterov", optim.SGD{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3}},
		{"sgd-plain", optim.SGD{LR: 0.1}},
		{"adamw", optim.AdamW{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}},
		{"adamw-beta2", optim.AdamW{LR: 1e-3, Beta1: 0.8, Beta2: 0.9999, Eps: 1e-6}},
	}
	for _, o := range opts {
		hs = append(hs,
			history{o.name + "/Step", func(t *testing.T, i int, p []float32, st *optim.State) {
				if err := o.o.Step(p, histGrad(i), st); err != nil {
					t.Fatal(err)
				}
			}},
			history{o.name + "/StepRows", func(t *testing.T, i int, p []float32, st *optim.State) {
				pm := loss.Matrix{Rows: histRows, Cols: histCols, Data: p}
				g := loss.Matrix{Rows: histRows, Cols: histCols, Data: histGrad(i)}
				if err := o.o.StepRows(pm, g, histRowsAt(i), st); err != nil {
					t.Fatal(err)
				}
			}})
	}
	// The heads' fused step, over every row (a Step State) and through
	// PartialFC (a StepRows State).
	fusedOf := func(o stepper, st *optim.State) loss.WeightStepper {
		switch o := o.(type) {
		case optim.SGD:
			return o.Fused(st)
		case optim.AdamW:
			return o.Fused(st)
		}
		panic("unknown optimizer")
	}
	batch := func(i int) (loss.Matrix, []int32) {
		r := rand.New(rand.NewSource(int64(200 + i)))
		const n = 12
		x := loss.Matrix{Rows: n, Cols: histCols, Data: randSlice(r, n*histCols, 1)}
		labels := make([]int32, n)
		for k := range labels {
			labels[k] = int32(r.Intn(histRows))
		}
		return x, labels
	}
	for _, o := range opts[:5] {
		hs = append(hs,
			history{o.name + "/FusedHead", func(t *testing.T, i int, p []float32, st *optim.State) {
				head := loss.ArcFace(16, 0.3)
				head.FusedStep = fusedOf(o.o, st)
				x, labels := batch(i)
				if _, err := head.Loss(x, loss.Matrix{Rows: histRows, Cols: histCols, Data: p}, labels, nil, nil); err != nil {
					t.Fatal(err)
				}
			}},
			history{o.name + "/FusedPartialFC", func(t *testing.T, i int, p []float32, st *optim.State) {
				head := loss.CosFace(16, 0.2)
				head.FusedStep = fusedOf(o.o, st)
				pfc := &loss.PartialFC{Head: head, SampleRate: 0.4, Seed: 3}
				pfc.SetCalls(uint64(i)) // the draw of call i, as a resumed PartialFC makes it
				x, labels := batch(i)
				if _, err := pfc.Loss(x, loss.Matrix{Rows: histRows, Cols: histCols, Data: p}, labels, nil, nil); err != nil {
					t.Fatal(err)
				}
			}})
	}
	return hs
}

// TestStateResume: k steps, save (through the file's bytes), restore into
// a fresh State, k more steps: the parameters and the whole State (its
// saved bytes: buffers, step counts, sizes) equal 2k uninterrupted steps
// bit for bit, and the half-way State really differs from the final one.
func TestStateResume(t *testing.T) {
	const k = 4
	p0 := randSlice(rand.New(rand.NewSource(9)), histRows*histCols, 1)
	for _, h := range histories() {
		t.Run(h.name, func(t *testing.T) {
			ref, half := slices.Clone(p0), slices.Clone(p0)
			var stRef, stHalf optim.State
			for i := range 2 * k {
				h.step(t, i, ref, &stRef)
				if i < k {
					h.step(t, i, half, &stHalf)
				}
			}
			f := roundTrip(t, "optim.w.", &stHalf)
			halfBytes := stateBytes(t, &stHalf)
			var resumed optim.State
			if err := f.Load("optim.w.", &resumed); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stateBytes(t, &resumed), halfBytes) {
				t.Fatal("the restored State saves other bytes than the saved one")
			}
			p := slices.Clone(half)
			for i := k; i < 2*k; i++ {
				h.step(t, i, p, &resumed)
			}
			sameBits(t, "parameters after the resume", p, ref)
			if !bytes.Equal(stateBytes(t, &resumed), stateBytes(t, &stRef)) {
				t.Error("the resumed State differs from the uninterrupted one")
			}
			// (SGD without momentum keeps no state: only its sizes.)
			if bytes.Equal(halfBytes, stateBytes(t, &stRef)) && !strings.HasPrefix(h.name, "sgd-plain/") {
				t.Error("k and 2k steps leave the same State: the test would pass trivially")
			}
		})
	}
}

// TestStateResumeNeverStepped: a zero State saves its header alone and
// loads back as a zero State, which any optimizer may then claim.
func TestStateResumeNeverStepped(t *testing.T) {
	var st optim.State
	f := roundTrip(t, "x.", &st)
	if got := f.Names(); !slices.Equal(got, []string{"x.state"}) {
		t.Fatalf("a zero State saves %v", got)
	}
	var a optim.State
	if err := f.Load("x.", &a); err != nil {
		t.Fatal(err)
	}
	p, g := []float32{1, 2}, []float32{0.5, 0.5}
	if err := testAdamW.Step(p, g, &a); err != nil {
		t.Fatalf("a loaded zero State is not claimable: %v", err)
	}
	// Sized by then: the zero checkpoint no longer fits it.
	if err := f.Load("x.", &a); !errors.Is(err, loss.ErrParam) {
		t.Fatalf("a never-stepped checkpoint into a stepped State: %v", err)
	}
}

// TestStateLoadErrors: malformed and mismatched checkpoints give an error
// wrapping the documented sentinel, and leave the State as it was.
func TestStateLoadErrors(t *testing.T) {
	p := randSlice(rand.New(rand.NewSource(10)), histRows*histCols, 1)
	pm := loss.Matrix{Rows: histRows, Cols: histCols, Data: p}
	var sgdRows, adamFlat optim.State
	for i := range 3 {
		g := loss.Matrix{Rows: histRows, Cols: histCols, Data: histGrad(i)}
		if err := testSGD.StepRows(pm, g, histRowsAt(i), &sgdRows); err != nil {
			t.Fatal(err)
		}
		if err := testAdamW.Step(p, g.Data, &adamFlat); err != nil {
			t.Fatal(err)
		}
	}
	good := map[string]*optim.State{"sgd": &sgdRows, "adamw": &adamFlat}
	type edit func(f *checkpoint.File)
	put := func(name string, v ...int64) edit {
		return func(f *checkpoint.File) { f.PutInt64(name, v, len(v)) }
	}
	cases := []struct {
		name, from string
		edit       edit
		want       error
	}{
		{"no header", "sgd", func(f *checkpoint.File) { f.Delete("o.state") }, checkpoint.ErrMissing},
		{"header dtype", "sgd", func(f *checkpoint.File) { f.PutFloat64("o.state", make([]float64, 5), 5) }, loss.ErrShape},
		{"header length", "sgd", put("o.state", 1, 1, 1), loss.ErrShape},
		{"format", "sgd", put("o.state", 2, 1, 1, histRows*histCols, histCols), checkpoint.ErrFormat},
		{"kind", "sgd", put("o.state", 1, 3, 1, histRows*histCols, histCols), checkpoint.ErrFormat},
		{"rowwise", "sgd", put("o.state", 1, 1, 2, histRows*histCols, histCols), checkpoint.ErrFormat},
		{"negative size", "adamw", put("o.state", 1, 2, 0, -4, 0), checkpoint.ErrFormat},
		{"ragged rows", "sgd", put("o.state", 1, 1, 1, histRows*histCols+1, histCols), checkpoint.ErrFormat},
		{"sized but never stepped", "adamw", put("o.state", 1, 0, 0, 4, 0), checkpoint.ErrFormat},
		{"more elements than the buffers", "adamw", put("o.state", 1, 2, 0, 2*histRows*histCols, 0), loss.ErrShape},
		{"no step count", "sgd", func(f *checkpoint.File) { f.Delete("o.step") }, checkpoint.ErrMissing},
		{"step counts per row, too few", "sgd", put("o.step", 1, 2, 3), loss.ErrShape},
		{"negative row count", "sgd", func(f *checkpoint.File) {
			c := make([]int64, histRows)
			c[3] = -1
			f.PutInt64("o.step", c, histRows)
		}, checkpoint.ErrFormat},
		{"Step's count not a scalar", "adamw", put("o.step", 3), loss.ErrShape},
		{"negative step", "adamw", func(f *checkpoint.File) { f.PutInt64("o.step", []int64{-1}) }, checkpoint.ErrFormat},
		{"no exp_avg_sq", "adamw", func(f *checkpoint.File) { f.Delete("o.exp_avg_sq") }, checkpoint.ErrMissing},
		{"exp_avg dtype", "adamw", func(f *checkpoint.File) {
			f.PutFloat64("o.exp_avg", make([]float64, histRows*histCols), histRows*histCols)
		}, loss.ErrShape},
		{"momentum buffer shape", "sgd", func(f *checkpoint.File) {
			f.PutFloat32("o.momentum_buffer", make([]float32, histRows*histCols), histCols, histRows)
		}, loss.ErrShape},
		{"steps but no momentum buffer", "sgd", func(f *checkpoint.File) { f.Delete("o.momentum_buffer") }, checkpoint.ErrMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := roundTrip(t, "o.", good[c.from])
			c.edit(f)
			// Into a State sized as the saved one and into a fresh one:
			// either stays as it was.
			for _, into := range []string{"sized", "fresh"} {
				var st optim.State
				if into == "sized" {
					if err := f.Load("o.", &st); err == nil {
						t.Fatal("the edited file loads into a fresh State")
					}
					if err := roundTrip(t, "o.", good[c.from]).Load("o.", &st); err != nil {
						t.Fatal(err)
					}
				}
				before := stateBytes(t, &st)
				err := f.Load("o.", &st)
				if !errors.Is(err, c.want) {
					t.Fatalf("into a %s State: %v, want an error wrapping %v", into, err, c.want)
				}
				if !bytes.Equal(stateBytes(t, &st), before) {
					t.Fatalf("into a %s State: the failed load changed it", into)
				}
			}
		})
	}

	// Mismatched with the receiver: another optimizer, form or size.
	flat := func(st *optim.State) error {
		return testSGD.Step(slices.Clone(p), make([]float32, len(p)), st)
	}
	mismatch := []struct {
		name string
		from *optim.State
		size func(st *optim.State) error
		want error
	}{
		{"another optimizer", &adamFlat, flat, loss.ErrParam},
		{"another form", &sgdRows, flat, loss.ErrShape},
		{"another size", &sgdRows, func(st *optim.State) error {
			q := loss.Matrix{Rows: histCols, Cols: histRows, Data: slices.Clone(p)}
			g := loss.Matrix{Rows: histCols, Cols: histRows, Data: make([]float32, len(p))}
			return testSGD.StepRows(q, g, []int32{1}, st)
		}, loss.ErrShape},
	}
	for _, m := range mismatch {
		var st optim.State
		if err := m.size(&st); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		before := stateBytes(t, &st)
		err := roundTrip(t, "o.", m.from).Load("o.", &st)
		if !errors.Is(err, m.want) {
			t.Errorf("%s: %v, want an error wrapping %v", m.name, err, m.want)
		}
		if !bytes.Equal(stateBytes(t, &st), before) {
			t.Errorf("%s: the failed load changed the State", m.name)
		}
	}
}
