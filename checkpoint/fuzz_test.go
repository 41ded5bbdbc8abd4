package checkpoint

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: no input panics; what parses writes back to bytes that parse
// to the same tensors.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "testdata", "golden_checkpoint.safetensors")); err == nil {
		f.Add(b)
	}
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 0, '{', '}'})
	f.Add([]byte("\x30\x00\x00\x00\x00\x00\x00\x00{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}\x01\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error is not ErrFormat: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if _, err := g.WriteTo(&buf); err != nil {
			return // metadata that is not UTF-8 is refused on write
		}
		h, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		for _, name := range g.Names() {
			x, xi, _ := g.Raw(name)
			y, yi, _ := h.Raw(name)
			if !bytes.Equal(x, y) || xi.DType != yi.DType || len(xi.Shape) != len(yi.Shape) {
				t.Fatalf("%q changed on the round trip", name)
			}
		}
	})
}
