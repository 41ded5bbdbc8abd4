package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// goldenFile builds the content of testdata/golden_checkpoint.safetensors
// from the formulas of testdata/checkpoint_golden.py's tensors().
func goldenFile(t *testing.T) *File {
	t.Helper()
	w := make([]float32, 12)
	for i := range w {
		w[i] = float32(i)*0.375 - 2
	}
	w[0] = float32(math.Copysign(0, -1))
	w[11] = math.Float32frombits(1) // the smallest subnormal
	f := &File{Metadata: map[string]string{"format": "marginloss", "note": "ü \"quoted\" \\ tab\t"}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.PutFloat32("w", w, 3, 4))
	must(f.PutUint64("calls", []uint64{1<<63 + 5}))
	must(f.PutInt32("labels", []int32{-3, 0, 7, math.MaxInt32, math.MinInt32}, 5))
	must(f.PutFloat64("moments", []float64{1.0 / 3, -2.5, 1e300, 5e-324}, 2, 2))
	must(f.PutInt64("step", []int64{-(1 << 40)}, 1))
	must(f.PutFloat32("empty", nil, 0, 3))
	return f
}

func goldenBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "golden_checkpoint.safetensors"))
	if err != nil {
		t.Fatalf("missing golden; regenerate with /usr/bin/python3 testdata/checkpoint_golden.py: %v", err)
	}
	return b
}

// TestWriteMatchesPython: the writer's bytes equal those numpy wrote from
// the format's specification.
func TestWriteMatchesPython(t *testing.T) {
	var buf bytes.Buffer
	n, err := goldenFile(t).WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d for %d bytes", n, buf.Len())
	}
	if want := goldenBytes(t); !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("bytes differ from the Python golden:\n got %q\nwant %q", buf.Bytes(), want)
	}
	if hl := binary.LittleEndian.Uint64(buf.Bytes()); (8+hl)%8 != 0 {
		t.Fatalf("header length %d: the buffer does not start 8-byte aligned", hl)
	}
}

// TestReadPython: the Python-written file decodes to the formulas' values,
// bit for bit.
func TestReadPython(t *testing.T) {
	f, err := Parse(goldenBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	want := goldenFile(t)
	if !slices.Equal(f.Names(), want.Names()) {
		t.Fatalf("names %v, want %v", f.Names(), want.Names())
	}
	for _, name := range want.Names() {
		gb, gi, _ := f.Raw(name)
		wb, wi, _ := want.Raw(name)
		if gi.DType != wi.DType || !slices.Equal(gi.Shape, wi.Shape) || !bytes.Equal(gb, wb) {
			t.Errorf("%s: %v %v %x, want %v %v %x", name, gi.DType, gi.Shape, gb, wi.DType, wi.Shape, wb)
		}
	}
	if f.Metadata["note"] != want.Metadata["note"] || len(f.Metadata) != 2 {
		t.Errorf("metadata %q", f.Metadata)
	}
	w := make([]float32, 12)
	if err := f.Float32("w", w, 3, 4); err != nil {
		t.Fatal(err)
	}
	if math.Float32bits(w[0]) != 0x80000000 || w[1] != -1.625 || math.Float32bits(w[11]) != 1 {
		t.Errorf("w = %v", w)
	}
	var calls [1]uint64
	if err := f.Uint64("calls", calls[:]); err != nil || calls[0] != 1<<63+5 {
		t.Errorf("calls = %d, %v", calls[0], err)
	}
	labels := make([]int32, 5)
	if err := f.Int32("labels", labels); err != nil || labels[4] != math.MinInt32 {
		t.Errorf("labels = %v, %v", labels, err)
	}
	m := make([]float64, 4)
	if err := f.Float64("moments", m, 2, 2); err != nil || m[0] != 1.0/3 || m[3] != 5e-324 {
		t.Errorf("moments = %v, %v", m, err)
	}
}

// TestPythonReadsGo: /usr/bin/python3 with numpy reads what Go wrote, per
// the specification (skipped where numpy is missing).
func TestPythonReadsGo(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import numpy").Run(); err != nil {
		t.Skipf("%s with numpy not available: %v", py, err)
	}
	path := filepath.Join(t.TempDir(), "go.safetensors")
	if err := goldenFile(t).WriteFile(path); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, filepath.Join("..", "testdata", "checkpoint_golden.py"), "--check", path).CombinedOutput()
	if err != nil {
		t.Fatalf("python check failed: %v\n%s", err, out)
	}
}

// TestRoundTrip: WriteFile then ReadFile gives back every tensor bit for
// bit, NaN payloads included, and the file is written atomically (no
// temporary left behind).
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ck.safetensors")
	f := goldenFile(t)
	nan := math.Float32frombits(0x7fc00123)
	if err := f.PutFloat32("nan", []float32{nan, float32(math.Inf(-1))}, 2); err != nil {
		t.Fatal(err)
	}
	if err := f.PutMatrix("W", loss.Matrix{Rows: 2, Cols: 3, Data: []float32{1, 2, 3, 4, 5, 6}}); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile(path); err != nil { // over an existing file
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want the checkpoint alone", len(entries))
	}
	g, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range f.Names() {
		a, ai, _ := f.Raw(name)
		b, bi, err := g.Raw(name)
		if err != nil || ai.DType != bi.DType || !slices.Equal(ai.Shape, bi.Shape) || !bytes.Equal(a, b) {
			t.Errorf("%s differs after the round trip", name)
		}
	}
	got := make([]float32, 2)
	if err := g.Float32("nan", got); err != nil || math.Float32bits(got[0]) != 0x7fc00123 {
		t.Errorf("NaN payload: %x, %v", math.Float32bits(got[0]), err)
	}
	m := loss.Matrix{Rows: 2, Cols: 3, Data: make([]float32, 6)}
	if err := g.Matrix("W", m); err != nil || m.Data[5] != 6 {
		t.Errorf("W = %v, %v", m.Data, err)
	}
	// Same content, same bytes.
	var b1, b2 bytes.Buffer
	f.WriteTo(&b1)
	g.WriteTo(&b2)
	if !bytes.Equal(b1.Bytes(), b2.Bytes()) {
		t.Error("rewriting a read file changes its bytes")
	}
}

func TestAccessErrors(t *testing.T) {
	f := goldenFile(t)
	dst := make([]float32, 12)
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"missing", f.Float32("nope", dst), ErrMissing},
		{"dtype", f.Float64("w", make([]float64, 12)), loss.ErrShape},
		{"count", f.Float32("w", dst[:11]), loss.ErrShape},
		{"shape", f.Float32("w", dst, 4, 3), loss.ErrShape},
		{"matrix shape", f.Matrix("w", loss.Matrix{Rows: 2, Cols: 6, Data: dst}), loss.ErrShape},
		{"put count", f.PutFloat32("x", dst, 5), loss.ErrShape},
		{"put negative", f.PutFloat32("x", nil, -1), loss.ErrShape},
		{"put empty name", f.PutUint64("", []uint64{1}), loss.ErrParam},
		{"put metadata name", f.PutUint64("__metadata__", []uint64{1}), loss.ErrParam},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, c.err, c.want)
		}
	}
	dst[0] = 42
	if f.Float32("w", dst, 4, 3); dst[0] != 42 {
		t.Error("a failed read wrote into dst")
	}
	if _, ok := f.Info("x"); ok {
		t.Error("a failed put stored a tensor")
	}
	f.Metadata["bad"] = "\xff"
	if _, err := f.WriteTo(&bytes.Buffer{}); !errors.Is(err, loss.ErrParam) {
		t.Errorf("non-UTF-8 metadata: %v", err)
	}
}

// TestParseRejects: every malformed file is an ErrFormat, never a panic.
func TestParseRejects(t *testing.T) {
	file := func(hdr string, buf int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
		return append(append(b, hdr...), make([]byte, buf)...)
	}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"short", []byte{1, 2, 3}},
		{"length beyond file", binary.LittleEndian.AppendUint64(nil, 100)},
		{"huge length", append(binary.LittleEndian.AppendUint64(nil, math.MaxUint64), '{', '}')},
		{"not an object", file(`[1]`, 0)},
		{"leading space", file(` {}`, 0)},
		{"bad json", file(`{"a":`, 0)},
		{"trailing garbage", file(`{} x`, 0)},
		{"duplicate", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2)},
		{"unknown dtype", file(`{"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}}`, 4)},
		{"missing dtype", file(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, 4)},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4)},
		{"overflowing shape", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4)},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4)},
		{"beyond buffer", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4)},
		{"hole", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2)},
		{"overlap", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3)},
		{"trailing bytes", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 2)},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, 0)},
		{"fractional offset", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1.5]}}`, 1)},
	} {
		if _, err := Parse(c.b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: err = %v, want ErrFormat", c.name, err)
		}
	}
	// Other dtypes of the format are kept as raw bytes.
	f, err := Parse(file(`{"h":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}    `, 4))
	if err != nil {
		t.Fatal(err)
	}
	if raw, info, _ := f.Raw("h"); info.DType != "BF16" || len(raw) != 4 {
		t.Errorf("BF16: %v %d bytes", info, len(raw))
	}
	if _, err := Read(strings.NewReader(string(file(`{}`, 0)))); err != nil {
		t.Errorf("an empty file: %v", err)
	}
}

// TestPartialFCState: the counter survives a save and a load into a fresh
// value, which then draws what the original draws.
func TestPartialFCState(t *testing.T) {
	newP := func() *loss.PartialFC { return &loss.PartialFC{Head: loss.CosFace(8, 0.3), SampleRate: 0.25, Seed: 9} }
	x := loss.Matrix{Rows: 1, Cols: 2, Data: []float32{1, 0.5}}
	w := loss.Matrix{Rows: 40, Cols: 2, Data: make([]float32, 80)}
	for i := range w.Data {
		w.Data[i] = float32(i%7) - 3
	}
	p := newP()
	for range 5 {
		if _, err := p.Loss(x, w, []int32{3}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	var f File
	if err := f.Save("pfc.", PartialFC(p)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	f.WriteTo(&buf)
	g, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	q := newP()
	if err := g.Load("pfc.", PartialFC(q)); err != nil {
		t.Fatal(err)
	}
	if q.Calls() != 5 {
		t.Fatalf("restored Calls = %d, want 5", q.Calls())
	}
	p.Loss(x, w, []int32{3}, nil, nil)
	q.Loss(x, w, []int32{3}, nil, nil)
	if !slices.Equal(p.Sampled(), q.Sampled()) {
		t.Fatalf("draws differ after the restore: %v vs %v", p.Sampled(), q.Sampled())
	}
	if err := g.Load("other.", PartialFC(q)); !errors.Is(err, ErrMissing) {
		t.Fatalf("load from a missing prefix: %v", err)
	}
}

// TestCenterState: the centres survive a save and a load; a load into
// centres of another shape fails and leaves them alone.
func TestCenterState(t *testing.T) {
	c := &loss.Center{Centers: loss.Matrix{Rows: 3, Cols: 2, Data: []float32{1, 2, 3, 4, 5, 6}}, Alpha: 0.5}
	var f File
	if err := f.Save("center.", Center(c)); err != nil {
		t.Fatal(err)
	}
	d := &loss.Center{Centers: loss.Matrix{Rows: 3, Cols: 2, Data: make([]float32, 6)}, Alpha: 0.5}
	if err := f.Load("center.", Center(d)); err != nil || !slices.Equal(d.Centers.Data, c.Centers.Data) {
		t.Fatalf("loaded %v, %v", d.Centers.Data, err)
	}
	e := &loss.Center{Centers: loss.Matrix{Rows: 2, Cols: 3, Data: []float32{9, 9, 9, 9, 9, 9}}}
	if err := f.Load("center.", Center(e)); !errors.Is(err, loss.ErrShape) || e.Centers.Data[0] != 9 {
		t.Fatalf("a 2×3 load: %v, %v", err, e.Centers.Data)
	}
}

// TestAdaptiveState: an adaptive head's state survives a save and a load,
// so that the next call of the restored head equals the next call of the
// original bit for bit (AdaFace's statistics, CurricularFace's T,
// ElasticFace's draws); a state SetState refuses leaves the head alone.
func TestAdaptiveState(t *testing.T) {
	x := loss.Matrix{Rows: 3, Cols: 2, Data: []float32{1, 0.5, -2, 1, 0.3, 3}}
	w := loss.Matrix{Rows: 4, Cols: 2, Data: []float32{1, 0, 0, 1, -1, 0.5, 0.2, -1}}
	labels := []int32{0, 2, 3}
	for name, mk := range map[string]func() *loss.MarginSoftmax{
		"adaface":    func() *loss.MarginSoftmax { return loss.AdaFace(64, 0.4, 0.333, 0.01) },
		"curricular": func() *loss.MarginSoftmax { return loss.CurricularFace(64, 0.5, 0.1) },
		"elasticarc": func() *loss.MarginSoftmax { h := loss.ElasticArcFace(64, 0.5, 0.05); h.Seed = 3; return h },
	} {
		p := mk()
		for range 4 {
			if _, err := p.Loss(x, w, labels, nil, nil); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		var f File
		if err := f.Save("head.", Adaptive(p)); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		f.WriteTo(&buf)
		g, err := Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		q := mk()
		if err := g.Load("head.", Adaptive(q)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.State() != q.State() {
			t.Fatalf("%s: restored %+v, saved %+v", name, q.State(), p.State())
		}
		dp, dq := loss.Matrix{Rows: 3, Cols: 2, Data: make([]float32, 6)}, loss.Matrix{Rows: 3, Cols: 2, Data: make([]float32, 6)}
		lp, errP := p.Loss(x, w, labels, &dp, nil)
		lq, errQ := q.Loss(x, w, labels, &dq, nil)
		if errP != nil || errQ != nil || math.Float32bits(lp) != math.Float32bits(lq) || !slices.Equal(dp.Data, dq.Data) {
			t.Fatalf("%s: next call differs after the restore: %v %v vs %v %v (%v, %v)", name, lp, dp.Data, lq, dq.Data, errP, errQ)
		}
	}
	// A state SetState refuses (BatchStd < 0) is an error, the head untouched.
	var f File
	if err := f.PutFloat32("bad.adaptive", []float32{20, -1, 0}, 3); err != nil {
		t.Fatal(err)
	}
	if err := f.PutUint64("bad.adaptive.calls", []uint64{0}); err != nil {
		t.Fatal(err)
	}
	h := loss.AdaFace(64, 0.4, 0.333, 0.01)
	before := h.State()
	if err := f.Load("bad.", Adaptive(h)); !errors.Is(err, loss.ErrParam) {
		t.Fatalf("refused state: %v", err)
	}
	if h.State() != before {
		t.Fatalf("state changed on error: %+v", h.State())
	}
	// A ShardedHead's own copy.
	sh := &loss.ShardedHead{Head: loss.CurricularFace(64, 0.5, 0.1), Classes: 4}
	if err := sh.SetState(loss.AdaptiveState{T: 0.25}); err != nil {
		t.Fatal(err)
	}
	var fs File
	if err := fs.Save("shard.", AdaptiveShard(sh)); err != nil {
		t.Fatal(err)
	}
	sh2 := &loss.ShardedHead{Head: loss.CurricularFace(64, 0.5, 0.1), Classes: 4}
	if err := fs.Load("shard.", AdaptiveShard(sh2)); err != nil || sh2.State().T != 0.25 {
		t.Fatalf("sharded state: %+v, %v", sh2.State(), err)
	}
}
