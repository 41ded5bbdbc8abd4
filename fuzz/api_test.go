package fuzz

import (
	"errors"
	"math"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// reader is the public-API targets' byteReader: past the end of the bytes
// every float is 0.5.
type reader struct{ byteReader }

func (r *reader) float() float32 {
	if v, ok := r.next32(); ok {
		return v
	}
	return 0.5
}

func (r *reader) matrix(rows, cols int) loss.Matrix {
	m := loss.Matrix{Rows: rows, Cols: cols, Data: make([]float32, rows*cols)}
	for i := range m.Data {
		m.Data[i] = r.float()
	}
	return m
}

func finiteAll(vs ...[]float32) bool {
	for _, v := range vs {
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return false
			}
		}
	}
	return true
}

var knownErrs = []error{loss.ErrShape, loss.ErrLabel, loss.ErrNonFinite, loss.ErrParam}

func known(err error) bool {
	for _, e := range knownErrs {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzMarginSoftmax drives every margin loss with arbitrary shapes, labels,
// parameters and float bit patterns (NaN and Inf included). It must never
// panic; an error must wrap a sentinel; on success, finite inputs give a
// finite loss and finite gradients.
func FuzzMarginSoftmax(f *testing.F) {
	f.Add([]byte{0, 3, 4, 2, 1, 0, 0, 0, 0, 0, 128, 63})
	f.Add([]byte{4, 1, 1, 1, 0, 8, 0, 0, 0, 0})
	f.Add([]byte{2, 7, 2, 5, 3, 1, 0, 0, 128, 127, 0, 0, 192, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{byteReader{b: data}}
		kind := r.u8() % 5
		n, c, d := int(r.u8()%9), int(r.u8()%9), int(r.u8()%9)
		p1, p2 := r.float(), r.float()
		opts := r.u8()
		var h *loss.MarginSoftmax
		switch kind {
		case 0:
			h = loss.ArcFace(p1, p2)
		case 1:
			h = loss.CosFace(p1, p2)
		case 2:
			m2, m3 := r.float(), r.float()
			h = loss.CombinedMargin(p1, p2, m2, m3)
		case 3:
			h = loss.SphereFace(int(opts%10), p2)
		case 4:
			h = loss.LargeMargin(int(opts%10), p2)
		}
		h.EasyMargin, h.DetachMargin = opts&16 != 0, opts&32 != 0
		h.Reduction = loss.Reduction(opts >> 6 % 3)
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(r.u8()%11) - 1
		}
		x, w := r.matrix(n, d), r.matrix(c, d)
		dx, dw := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}, loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
		l, err := h.Loss(x, w, labels, &dx, &dw)
		if err != nil {
			if !known(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		// The contract: a nil error always comes with a finite loss and
		// finite gradients, whatever the (finite or not) inputs were.
		if !finiteAll([]float32{l}, dx.Data, dw.Data) {
			t.Fatalf("%v: nil error with a non-finite output: loss %v\nx %v\nw %v\nlabels %v\ndx %v\ndw %v", h, l, x, w, labels, dx, dw)
		}
	})
}

// FuzzFocalCenter drives Focal and Center the same way.
func FuzzFocalCenter(f *testing.F) {
	f.Add([]byte{3, 4, 0, 0, 0, 64, 0, 0, 128, 62})
	f.Add([]byte{1, 1, 0, 0, 192, 127, 0, 0, 128, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{byteReader{b: data}}
		n, c := int(r.u8()%9), int(r.u8()%9)
		gamma, alpha := r.float(), r.float()
		logits, targets := r.matrix(n, c), r.matrix(n, c)
		for i, v := range targets.Data {
			targets.Data[i] = float32(math.Abs(math.Mod(float64(v), 1.5)))
		}
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(r.u8()%11) - 1
		}
		g := loss.Matrix{Rows: n, Cols: c, Data: make([]float32, n*c)}
		fl := loss.Focal{Gamma: gamma, Alpha: alpha, Reduction: loss.Reduction(r.u8() % 3)}
		for _, call := range []func() (float32, error){
			func() (float32, error) { return fl.Softmax(logits, labels, &g) },
			func() (float32, error) { return fl.Sigmoid(logits, targets, &g) },
		} {
			l, err := call()
			if err != nil {
				if !known(err) {
					t.Fatalf("error wraps no sentinel: %v", err)
				}
				continue
			}
			if !finiteAll([]float32{l}, g.Data) {
				t.Fatalf("focal γ=%v α=%v: non-finite output %v", gamma, alpha, l)
			}
		}
		ct := &loss.Center{Centers: r.matrix(c, 2), Alpha: alpha}
		x := r.matrix(n, 2)
		dx := loss.Matrix{Rows: n, Cols: 2, Data: make([]float32, n*2)}
		if _, err := ct.Loss(x, labels, &dx); err != nil && !known(err) {
			t.Fatalf("center: error wraps no sentinel: %v", err)
		}
		if err := ct.Update(x, labels); err != nil && !known(err) {
			t.Fatalf("center update: error wraps no sentinel: %v", err)
		}
	})
}
