package eval

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// FuzzVerification: any input gives a result or an error wrapping one of
// loss's sentinels, never a panic; a result's rates are in [0, 1] and the
// ROC is non-decreasing in the threshold.
func FuzzVerification(f *testing.F) {
	f.Add([]byte{6, 2, 2, 0x55, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24}, uint8(2), 1e-3)
	f.Add([]byte{20, 1, 1, 0xaa, 0xf0, 0, 0, 0x80, 0x7f, 0, 0, 0x80, 0xff, 0, 0, 0xc0, 0x7f}, uint8(0), 0.5)
	f.Add([]byte{3, 3, 0, 0}, uint8(1), -1.0)
	f.Fuzz(func(t *testing.T, raw []byte, folds uint8, far float64) {
		if len(raw) < 4 {
			return
		}
		n, d := int(raw[0]%40), int(raw[1]%5)
		raw = raw[4:]
		same := make([]bool, n)
		for i := range same {
			same[i] = i < len(raw) && raw[i]&1 == 1
		}
		vals := make([]float32, 2*n*d)
		for i := range vals {
			if 4*i+4 <= len(raw) {
				vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			} else {
				vals[i] = float32(i%7) - 3
			}
		}
		a := loss.Matrix{Rows: n, Cols: d, Data: vals[:n*d]}
		b := loss.Matrix{Rows: n, Cols: d, Data: vals[n*d:]}
		r, err := Verification(a, b, same, VerifyOptions{Folds: int(folds % 12), FARTarget: far})
		if err != nil {
			if !errors.Is(err, loss.ErrParam) && !errors.Is(err, loss.ErrShape) && !errors.Is(err, loss.ErrNonFinite) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		in01 := func(v float64) bool { return v >= 0 && v <= 1 }
		if !in01(r.Accuracy) || !in01(r.VAL) || !in01(r.FAR) || !(r.AccuracyStd >= 0) || !(r.VALStd >= 0) {
			t.Fatalf("out of range: %+v", r)
		}
		for i := range r.TPR {
			if !in01(r.TPR[i]) || !in01(r.FPR[i]) || (i > 0 && (r.TPR[i] < r.TPR[i-1] || r.FPR[i] < r.FPR[i-1])) {
				t.Fatalf("ROC at %d: TPR %v FPR %v", i, r.TPR[max(i-1, 0):i+1], r.FPR[max(i-1, 0):i+1])
			}
		}
	})
}
