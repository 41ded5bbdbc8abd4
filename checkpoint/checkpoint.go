// Package checkpoint saves and restores what a training run needs to
// continue bitwise identically (the class weights W, an optimiser's state,
// PartialFC's draw counter, an adaptive head's statistics) as named tensors
// in the safetensors format, so that Python reads W directly
// (safetensors.numpy.load_file, or numpy and the JSON header).
//
// The format (github.com/huggingface/safetensors, "Format"): an 8-byte
// little-endian unsigned header length N; N bytes of UTF-8 JSON that
// start with '{' and may end in spaces, mapping each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the byte
// buffer that follows, end exclusive) plus an optional "__metadata__"
// object of string values; then the byte buffer: each tensor's elements,
// little-endian, row-major. The buffer must be covered by the tensors
// exactly, without holes or overlaps.
//
// The few lines the format needs are written here rather than taken from a
// module: the one Go module on the proxy (github.com/nlpodyssey/safetensors)
// has no tagged release, and a checkpoint wants a strict reader (duplicate
// names, holes, overlaps, overflowing shapes and oversized headers are all
// errors) and a deterministic writer (names sorted, keys sorted, the header
// padded with spaces so the buffer starts 8-byte aligned, as the reference
// implementation pads it), so that the same state gives the same bytes.
//
// Types whose state is not exported (optim.State, adaptive heads)
// implement State and are saved with File.Save under a name prefix.
package checkpoint

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/marginloss/marginloss/loss"
)

// Errors. Mismatches between a stored tensor and the caller's buffer wrap
// loss.ErrShape; a bad name or an unknown dtype wraps loss.ErrParam.
var (
	// ErrFormat: the bytes are not a valid safetensors file.
	ErrFormat = errors.New("checkpoint: not a valid safetensors file")
	// ErrMissing: the file holds no tensor of that name.
	ErrMissing = errors.New("checkpoint: no such tensor")
)

// MaxHeader is the largest header Read accepts (the reference
// implementation's limit).
const MaxHeader = 100 << 20

// DType is a tensor's element type, spelled as safetensors spells it.
type DType string

// The element types File stores and decodes. Read also accepts files that
// hold the format's other types (F16, BF16, I8, U8, I16, U16, U32, BOOL,
// …); their tensors are kept as raw bytes (Raw).
const (
	F32 DType = "F32"
	F64 DType = "F64"
	I32 DType = "I32"
	I64 DType = "I64"
	U64 DType = "U64"
)

// dtypeSize is the element size of every dtype of the format.
var dtypeSize = map[DType]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// Info describes a stored tensor.
type Info struct {
	DType DType
	Shape []int
}

type tensor struct {
	Info
	data []byte // little-endian elements
}

// File is a set of named tensors and string metadata, in memory. The zero
// value is an empty file ready for Put calls. A File is not safe for
// concurrent use.
type File struct {
	// Metadata is the header's "__metadata__": free-form strings (a run's
	// flags, the library version, …).
	Metadata map[string]string
	tensors  map[string]tensor
}

// Names returns the tensor names, sorted.
func (f *File) Names() []string {
	names := make([]string, 0, len(f.tensors))
	for n := range f.tensors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Info returns the dtype and shape of the named tensor.
func (f *File) Info(name string) (Info, bool) {
	t, ok := f.tensors[name]
	if !ok {
		return Info{}, false
	}
	return Info{t.DType, slices.Clone(t.Shape)}, true
}

// Raw returns a copy of the named tensor's bytes (little-endian elements).
func (f *File) Raw(name string) ([]byte, Info, error) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, Info{}, fmt.Errorf("%w: %q", ErrMissing, name)
	}
	return slices.Clone(t.data), Info{t.DType, slices.Clone(t.Shape)}, nil
}

// Delete removes the named tensor, if present.
func (f *File) Delete(name string) { delete(f.tensors, name) }

// elements returns the product of shape, or an error if a dimension is
// negative or the product overflows.
func elements(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension in shape %v", loss.ErrShape, shape)
		}
		if d != 0 && n > math.MaxInt/8/d {
			return 0, fmt.Errorf("%w: shape %v is too large", loss.ErrShape, shape)
		}
		n *= d
	}
	return n, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty tensor name", loss.ErrParam)
	case name == "__metadata__":
		return fmt.Errorf("%w: %q is the header's metadata key", loss.ErrParam, name)
	case !utf8Valid(name):
		return fmt.Errorf("%w: tensor name %q is not UTF-8", loss.ErrParam, name)
	}
	return nil
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// put stores n elements of size sz, encoded by enc, under name.
func (f *File) put(name string, dt DType, n int, shape []int, enc func([]byte)) error {
	if err := checkName(name); err != nil {
		return err
	}
	want, err := elements(shape)
	if err != nil {
		return err
	}
	if want != n {
		return fmt.Errorf("%w: %q: %d values for shape %v (%d elements)", loss.ErrShape, name, n, shape, want)
	}
	buf := make([]byte, n*dtypeSize[dt])
	enc(buf)
	if f.tensors == nil {
		f.tensors = make(map[string]tensor)
	}
	f.tensors[name] = tensor{Info{dt, slices.Clone(shape)}, buf}
	return nil
}

// PutFloat32 stores a copy of data as an F32 tensor of the given shape (no
// shape: a scalar, one value), replacing any tensor of that name.
func (f *File) PutFloat32(name string, data []float32, shape ...int) error {
	return f.put(name, F32, len(data), shape, func(b []byte) {
		for i, v := range data {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
	})
}

// PutFloat64 stores a copy of data as an F64 tensor; see PutFloat32.
func (f *File) PutFloat64(name string, data []float64, shape ...int) error {
	return f.put(name, F64, len(data), shape, func(b []byte) {
		for i, v := range data {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
		}
	})
}

// PutInt32 stores a copy of data as an I32 tensor; see PutFloat32.
func (f *File) PutInt32(name string, data []int32, shape ...int) error {
	return f.put(name, I32, len(data), shape, func(b []byte) {
		for i, v := range data {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
		}
	})
}

// PutInt64 stores a copy of data as an I64 tensor; see PutFloat32.
func (f *File) PutInt64(name string, data []int64, shape ...int) error {
	return f.put(name, I64, len(data), shape, func(b []byte) {
		for i, v := range data {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
	})
}

// PutUint64 stores a copy of data as a U64 tensor; see PutFloat32.
func (f *File) PutUint64(name string, data []uint64, shape ...int) error {
	return f.put(name, U64, len(data), shape, func(b []byte) {
		for i, v := range data {
			binary.LittleEndian.PutUint64(b[8*i:], v)
		}
	})
}

// get finds name, checks its dtype and (when shape is given) its shape,
// and that it holds n elements.
func (f *File) get(name string, dt DType, n int, shape []int) ([]byte, error) {
	t, ok := f.tensors[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrMissing, name)
	}
	if t.DType != dt {
		return nil, fmt.Errorf("%w: %q is %s, not %s", loss.ErrShape, name, t.DType, dt)
	}
	if shape != nil && !slices.Equal(shape, t.Shape) {
		return nil, fmt.Errorf("%w: %q has shape %v, want %v", loss.ErrShape, name, t.Shape, shape)
	}
	if got := len(t.data) / dtypeSize[dt]; got != n {
		return nil, fmt.Errorf("%w: %q holds %d values (shape %v), the destination %d", loss.ErrShape, name, got, t.Shape, n)
	}
	return t.data, nil
}

// Float32 decodes the named F32 tensor into dst, which must have exactly
// its number of elements. If shape is given it must equal the stored shape
// too. dst is untouched on error.
func (f *File) Float32(name string, dst []float32, shape ...int) error {
	b, err := f.get(name, F32, len(dst), shapeArg(shape))
	if err != nil {
		return err
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return nil
}

// Float64 decodes the named F64 tensor into dst; see Float32.
func (f *File) Float64(name string, dst []float64, shape ...int) error {
	b, err := f.get(name, F64, len(dst), shapeArg(shape))
	if err != nil {
		return err
	}
	for i := range dst {
		dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return nil
}

// Int32 decodes the named I32 tensor into dst; see Float32.
func (f *File) Int32(name string, dst []int32, shape ...int) error {
	b, err := f.get(name, I32, len(dst), shapeArg(shape))
	if err != nil {
		return err
	}
	for i := range dst {
		dst[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return nil
}

// Int64 decodes the named I64 tensor into dst; see Float32.
func (f *File) Int64(name string, dst []int64, shape ...int) error {
	b, err := f.get(name, I64, len(dst), shapeArg(shape))
	if err != nil {
		return err
	}
	for i := range dst {
		dst[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return nil
}

// Uint64 decodes the named U64 tensor into dst; see Float32.
func (f *File) Uint64(name string, dst []uint64, shape ...int) error {
	b, err := f.get(name, U64, len(dst), shapeArg(shape))
	if err != nil {
		return err
	}
	for i := range dst {
		dst[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return nil
}

// shapeArg keeps "no shape given" (nil: only the element count is
// checked) apart from an explicit scalar shape, which callers cannot write
// with a variadic; a scalar is checked by its one element.
func shapeArg(shape []int) []int {
	if len(shape) == 0 {
		return nil
	}
	return shape
}

// PutMatrix stores m as an F32 tensor of shape [Rows, Cols].
func (f *File) PutMatrix(name string, m loss.Matrix) error {
	if m.Rows < 0 || m.Cols < 0 || len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("%w: %q: a %d×%d matrix with %d values", loss.ErrShape, name, m.Rows, m.Cols, len(m.Data))
	}
	return f.PutFloat32(name, m.Data, m.Rows, m.Cols)
}

// Matrix decodes the named [Rows, Cols] F32 tensor into m.Data; the shape
// must equal m's. m is untouched on error.
func (f *File) Matrix(name string, m loss.Matrix) error {
	if m.Rows < 0 || m.Cols < 0 || len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("%w: %q: a %d×%d matrix with %d values", loss.ErrShape, name, m.Rows, m.Cols, len(m.Data))
	}
	return f.Float32(name, m.Data, m.Rows, m.Cols)
}

// Writer is what a State saves itself into; *File implements it.
type Writer interface {
	PutFloat32(name string, data []float32, shape ...int) error
	PutFloat64(name string, data []float64, shape ...int) error
	PutInt32(name string, data []int32, shape ...int) error
	PutInt64(name string, data []int64, shape ...int) error
	PutUint64(name string, data []uint64, shape ...int) error
}

// Reader is what a State restores itself from; *File implements it.
type Reader interface {
	Info(name string) (Info, bool)
	Float32(name string, dst []float32, shape ...int) error
	Float64(name string, dst []float64, shape ...int) error
	Int32(name string, dst []int32, shape ...int) error
	Int64(name string, dst []int64, shape ...int) error
	Uint64(name string, dst []uint64, shape ...int) error
}

// State is implemented by a value whose state a checkpoint must carry but
// whose fields are not exported: an optimiser's per-parameter state
// (optim.State: moments, step count), an adaptive head's running
// statistics. SaveState writes its tensors under names that start with
// prefix; LoadState reads them back, validating every tensor (dtype,
// shape, and that the saved configuration matches the receiver's) before
// changing anything, so that a failed load leaves the value as it was.
// Restoring into a value configured like the saved one must make it
// continue bitwise as the saved one would have.
type State interface {
	SaveState(w Writer, prefix string) error
	LoadState(r Reader, prefix string) error
}

// Save stores s's state under prefix (e.g. "optim.w.").
func (f *File) Save(prefix string, s State) error { return s.SaveState(f, prefix) }

// Load restores s's state from the tensors under prefix.
func (f *File) Load(prefix string, s State) error { return s.LoadState(f, prefix) }

// PartialFC returns p's draw counter as a State: one U64 scalar,
// prefix+"calls".
func PartialFC(p *loss.PartialFC) State { return pfcState{p} }

type pfcState struct{ p *loss.PartialFC }

// SaveState writes the draw counter.
func (s pfcState) SaveState(w Writer, prefix string) error {
	return w.PutUint64(prefix+"calls", []uint64{s.p.Calls()})
}

// LoadState restores the draw counter with SetCalls.
func (s pfcState) LoadState(r Reader, prefix string) error {
	var c [1]uint64
	if err := r.Uint64(prefix+"calls", c[:]); err != nil {
		return err
	}
	s.p.SetCalls(c[0])
	return nil
}

// Center returns the centres of c (updated by Center.Update, not by a
// gradient) as a State: one F32 tensor prefix+"centers" of shape [C, D].
// Loading checks the shape against c.Centers.
func Center(c *loss.Center) State { return centerState{c} }

type centerState struct{ c *loss.Center }

// SaveState writes the centres.
func (s centerState) SaveState(w Writer, prefix string) error {
	m := s.c.Centers
	if m.Rows < 0 || m.Cols < 0 || len(m.Data) != m.Rows*m.Cols {
		return fmt.Errorf("%w: Center.Centers is %d×%d with %d values", loss.ErrShape, m.Rows, m.Cols, len(m.Data))
	}
	return w.PutFloat32(prefix+"centers", m.Data, m.Rows, m.Cols)
}

// LoadState reads the centres into c.Centers (untouched on error).
func (s centerState) LoadState(r Reader, prefix string) error {
	m := s.c.Centers
	buf := make([]float32, len(m.Data))
	if err := r.Float32(prefix+"centers", buf, m.Rows, m.Cols); err != nil {
		return err
	}
	copy(m.Data, buf)
	return nil
}

// Adaptive returns the adaptive-margin state of a head (AdaFace's norm
// statistics, CurricularFace's T, ElasticFace's drawing-call count; see
// loss.AdaptiveState) as a State: prefix+"adaptive" (F32 [3]: BatchMean,
// BatchStd, T) and prefix+"adaptive.calls" (U64 scalar). Loading goes
// through SetState, so a state it refuses leaves the head untouched. For a
// ShardedHead, which keeps its own copy, use AdaptiveShard.
func Adaptive(l *loss.MarginSoftmax) State { return adaptiveState{get: l.State, set: l.SetState} }

// AdaptiveShard is Adaptive for a ShardedHead's own copy of the state.
func AdaptiveShard(h *loss.ShardedHead) State {
	return adaptiveState{get: h.State, set: h.SetState}
}

type adaptiveState struct {
	get func() loss.AdaptiveState
	set func(loss.AdaptiveState) error
}

// SaveState writes the state.
func (s adaptiveState) SaveState(w Writer, prefix string) error {
	st := s.get()
	if err := w.PutFloat32(prefix+"adaptive", []float32{st.BatchMean, st.BatchStd, st.T}, 3); err != nil {
		return err
	}
	return w.PutUint64(prefix+"adaptive.calls", []uint64{st.Calls})
}

// LoadState reads the state and sets it (untouched on error).
func (s adaptiveState) LoadState(r Reader, prefix string) error {
	var v [3]float32
	var c [1]uint64
	if err := r.Float32(prefix+"adaptive", v[:], 3); err != nil {
		return err
	}
	if err := r.Uint64(prefix+"adaptive.calls", c[:]); err != nil {
		return err
	}
	return s.set(loss.AdaptiveState{BatchMean: v[0], BatchStd: v[1], T: v[2], Calls: c[0]})
}

// header entry, its keys in sorted order so that the bytes are canonical.
type entry struct {
	DataOffsets [2]int `json:"data_offsets"`
	DType       DType  `json:"dtype"`
	Shape       []int  `json:"shape"`
}

// WriteTo writes the file in the safetensors format: tensors in name
// order, header keys sorted, the header padded with spaces to a multiple
// of 8 bytes. The same content always gives the same bytes. Metadata that
// is not UTF-8 is an error wrapping loss.ErrParam, and nothing is written.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	for k, v := range f.Metadata {
		if k == "" || !utf8Valid(k) || !utf8Valid(v) {
			return 0, fmt.Errorf("%w: metadata %q: %q: keys must be non-empty, keys and values UTF-8", loss.ErrParam, k, v)
		}
	}
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	first := true
	key := func(k string) {
		if !first {
			hdr.WriteByte(',')
		}
		first = false
		writeJSONString(&hdr, k)
		hdr.WriteByte(':')
	}
	names := f.Names()
	if len(f.Metadata) > 0 {
		// "__metadata__" sorts among the names by its bytes, as Python's
		// json.dumps(sort_keys=True) places it.
		names = append(names, "__metadata__")
		slices.Sort(names)
	}
	off := 0
	for _, n := range names {
		key(n)
		if n == "__metadata__" {
			hdr.WriteByte('{')
			mk := make([]string, 0, len(f.Metadata))
			for k := range f.Metadata {
				mk = append(mk, k)
			}
			slices.Sort(mk)
			for i, k := range mk {
				if i > 0 {
					hdr.WriteByte(',')
				}
				writeJSONString(&hdr, k)
				hdr.WriteByte(':')
				writeJSONString(&hdr, f.Metadata[k])
			}
			hdr.WriteByte('}')
			continue
		}
		t := f.tensors[n]
		hdr.WriteString(`{"data_offsets":[`)
		hdr.WriteString(strconv.Itoa(off))
		hdr.WriteByte(',')
		off += len(t.data)
		hdr.WriteString(strconv.Itoa(off))
		hdr.WriteString(`],"dtype":`)
		writeJSONString(&hdr, string(t.DType))
		hdr.WriteString(`,"shape":[`)
		for i, d := range t.Shape {
			if i > 0 {
				hdr.WriteByte(',')
			}
			hdr.WriteString(strconv.Itoa(d))
		}
		hdr.WriteString("]}")
	}
	hdr.WriteByte('}')
	for (8+hdr.Len())%8 != 0 {
		hdr.WriteByte(' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
	var total int64
	for _, b := range [][]byte{lenBuf[:], hdr.Bytes()} {
		k, err := w.Write(b)
		total += int64(k)
		if err != nil {
			return total, err
		}
	}
	for _, n := range f.Names() {
		k, err := w.Write(f.tensors[n].data)
		total += int64(k)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// writeJSONString writes s as a JSON string, escaping only what JSON
// requires (", \ and control characters), as Python's json.dumps with
// ensure_ascii=False does.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// WriteFile writes f to path atomically: to a temporary file in the same
// directory, synced, then renamed over path, so that a crash leaves either
// the old checkpoint or the new one.
func (f *File) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := f.WriteTo(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ReadFile reads a safetensors file; see Parse.
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Read reads a whole safetensors file from r; see Parse.
func Read(r io.Reader) (*File, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse decodes a safetensors file. It accepts every dtype of the format
// and rejects, with an error wrapping ErrFormat: a header longer than
// MaxHeader or than the file, a header that is not a JSON object starting
// with '{', duplicate names, an unknown dtype, a negative or overflowing
// shape, offsets that disagree with the shape's byte size, and a byte
// buffer that the tensors do not cover exactly (a hole, an overlap or
// trailing bytes). The File copies what it keeps from b.
func Parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the 8-byte header length", ErrFormat, len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > MaxHeader || n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: header length %d for a %d-byte file (at most %d)", ErrFormat, n, len(b), MaxHeader)
	}
	hdr, buf := b[8:8+n], b[8+n:]
	if len(hdr) == 0 || hdr[0] != '{' {
		return nil, fmt.Errorf("%w: the header does not start with '{'", ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: the header is not a JSON object", ErrFormat)
	}
	f := &File{tensors: make(map[string]tensor)}
	type span struct {
		lo, hi int
		name   string
	}
	var spans []span
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: header key %v", ErrFormat, tok)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: %q appears twice in the header", ErrFormat, name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var md map[string]string
			if err := dec.Decode(&md); err != nil {
				return nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			f.Metadata = md
			continue
		}
		var e struct {
			DType       *DType  `json:"dtype"`
			Shape       []int64 `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := dec.Decode(&e); err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		if e.DType == nil || e.Shape == nil || len(e.DataOffsets) != 2 {
			return nil, fmt.Errorf("%w: tensor %q needs dtype, shape and two data_offsets", ErrFormat, name)
		}
		size, ok := dtypeSize[*e.DType]
		if !ok {
			return nil, fmt.Errorf("%w: tensor %q has unknown dtype %q", ErrFormat, name, *e.DType)
		}
		shape := make([]int, len(e.Shape))
		for i, d := range e.Shape {
			if d < 0 || uint64(d) > math.MaxInt {
				return nil, fmt.Errorf("%w: tensor %q has shape %v", ErrFormat, name, e.Shape)
			}
			shape[i] = int(d)
		}
		count, err := elements(shape)
		if err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
		}
		lo, hi := e.DataOffsets[0], e.DataOffsets[1]
		if lo < 0 || hi < lo || hi > int64(len(buf)) || hi-lo != int64(count)*int64(size) {
			return nil, fmt.Errorf("%w: tensor %q (%s %v: %d bytes) has data_offsets [%d, %d] in a %d-byte buffer",
				ErrFormat, name, *e.DType, shape, count*size, lo, hi, len(buf))
		}
		spans = append(spans, span{int(lo), int(hi), name})
		f.tensors[name] = tensor{Info{*e.DType, shape}, slices.Clone(buf[lo:hi])}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if rest := bytes.TrimRight(hdr[dec.InputOffset():], " "); len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the header's JSON object are not spaces", ErrFormat, len(rest))
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.lo != b.lo {
			return a.lo - b.lo
		}
		return a.hi - b.hi
	})
	end := 0
	for _, s := range spans {
		if s.lo != end {
			return nil, fmt.Errorf("%w: tensor %q starts at byte %d of the buffer, after byte %d: a hole or an overlap", ErrFormat, s.name, s.lo, end)
		}
		end = s.hi
	}
	if end != len(buf) {
		return nil, fmt.Errorf("%w: the tensors cover %d of the buffer's %d bytes", ErrFormat, end, len(buf))
	}
	return f, nil
}
