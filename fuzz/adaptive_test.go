package fuzz

import (
	"math"
	"slices"
	"testing"

	"github.com/marginloss/marginloss/loss"
)

// FuzzAdaptive drives the adaptive heads (AdaFace, MagFace,
// ElasticArcFace, ElasticCosFace, CurricularFace) through Loss and
// LossFromCosinesNorms with arbitrary shapes, labels, parameters, options
// (sub-centers, label smoothing, Sum, EasyMargin, ElasticPlus, explicit
// Margins, BFloat16, Accumulate), states and float bit patterns (NaN and
// Inf included). It must never panic; an error must wrap a sentinel and
// leave the outputs, the state and AppendMargins as they were; a nil error
// must come with a finite loss, finite gradients, a finite state and finite
// margins.
func FuzzAdaptive(f *testing.F) {
	// kind, n, c, d, opts, opts2, s, p1, p2, p3, ...
	f.Add([]byte{0, 4, 5, 3, 0, 0, 0, 0, 128, 66, 205, 204, 204, 62})
	f.Add([]byte{1, 3, 2, 4, 1, 2, 0, 0, 128, 66})
	f.Add([]byte{2, 5, 4, 2, 18, 16, 0, 0, 128, 66, 0, 0, 0, 63, 205, 204, 76, 61})
	f.Add([]byte{3, 2, 3, 8, 130, 48, 0, 0, 128, 66, 0, 0, 0, 0, 0, 0, 128, 127})
	f.Add([]byte{4, 6, 6, 5, 65, 5, 0, 0, 128, 66, 0, 0, 0, 63, 0, 0, 192, 255})
	// MagFace(64, 10, 110, 0.45, 0.8, 35), K = 2, BFloat16, threshold fallback
	f.Add([]byte{1, 5, 4, 6, 129, 0, 0, 0, 128, 66, 0, 0, 32, 65, 0, 0, 220, 66, 102, 102, 230, 62, 205, 204, 76, 63, 0, 0, 12, 66})
	// CurricularFace(64, 0.5, 0.1), K = 3, smoothing, Sum, state from the bytes
	f.Add([]byte{4, 7, 3, 4, 14, 8, 0, 0, 128, 66, 0, 0, 0, 63, 205, 204, 204, 61, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 62, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &reader{byteReader{b: data}}
		kind := r.u8() % 5
		n, c, d := int(r.u8()%9), int(r.u8()%9), int(r.u8()%9)
		opts, opts2 := r.u8(), r.u8()
		s, p1, p2, p3 := r.float(), r.float(), r.float(), r.float()
		var h *loss.MarginSoftmax
		switch kind {
		case 0:
			h = loss.AdaFace(s, p1, p2, p3)
		case 1:
			h = loss.MagFace(s, p1, p2, p3, r.float(), r.float())
		case 2:
			h = loss.ElasticArcFace(s, p1, p2)
		case 3:
			h = loss.ElasticCosFace(s, p1, p2)
		case 4:
			h = loss.CurricularFace(s, p1, p2)
		}
		k := 1 + int(opts%3)
		h.SubCenters = k
		if opts&4 != 0 {
			h.LabelSmoothing = 0.1
		}
		if opts&8 != 0 {
			h.Reduction = loss.Sum
		}
		h.EasyMargin = opts&16 != 0 || kind == 1 && opts&32 != 0
		h.ElasticPlus = opts&64 != 0
		if opts&128 != 0 {
			h.Precision = loss.BFloat16
		}
		h.Accumulate = opts2&1 != 0
		h.Seed = uint64(opts2 >> 4)
		if opts2&2 != 0 { // explicit draws, of length n or off by one
			m := make([]float32, max(n+int(opts2>>2&3)-1, 0))
			for i := range m {
				m[i] = r.float()
			}
			h.Margins = m
		}
		if opts2&8 != 0 {
			_ = h.SetState(loss.AdaptiveState{BatchMean: r.float(), BatchStd: r.float(), T: r.float(), Calls: uint64(r.u8())})
		}
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(r.u8()%11) - 1
		}
		x, w := r.matrix(n, d), r.matrix(c*k, d)
		dx, dw := r.matrix(n, d), r.matrix(c*k, d) // accumulated into with Accumulate
		st0, m0 := h.State(), h.AppendMargins(nil)
		dx0, dw0 := slices.Clone(dx.Data), slices.Clone(dw.Data)
		l, err := h.Loss(x, w, labels, &dx, &dw)
		untouched := func(what string, outs ...[2][]float32) {
			t.Helper()
			for _, o := range outs {
				if !slices.Equal(bitsOf(o[0]), bitsOf(o[1])) {
					t.Fatalf("%v %s: an output changed on error %v", h, what, err)
				}
			}
			if h.State() != st0 || !slices.Equal(bitsOf(h.AppendMargins(nil)), bitsOf(m0)) {
				t.Fatalf("%v %s: the state or the margins changed on error %v: %+v → %+v", h, what, err, st0, h.State())
			}
		}
		finite := func(what string, outs ...[]float32) {
			t.Helper()
			st := h.State()
			if !finiteAll(append(outs, []float32{st.BatchMean, st.BatchStd, st.T}, h.AppendMargins(nil))...) {
				t.Fatalf("%v %s: nil error with a non-finite output or state: loss %v state %+v margins %v\nx %v\nw %v\nlabels %v\ndx %v\ndw %v",
					h, what, l, st, h.AppendMargins(nil), x, w, labels, dx, dw)
			}
		}
		if err != nil {
			if !known(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			untouched("Loss", [2][]float32{dx0, dx.Data}, [2][]float32{dw0, dw.Data})
		} else {
			finite("Loss", []float32{l}, dx.Data, dw.Data)
		}

		// The cosine entry on cosines and norms from the rest of the bytes.
		cos, norms := r.matrix(n, c*k), r.matrix(1, n).Data
		if opts2&4 != 0 {
			for i, v := range cos.Data { // mostly in range
				cos.Data[i] = float32(math.Tanh(float64(v)))
			}
			for i, v := range norms {
				norms[i] = float32(math.Abs(float64(v)))
			}
		}
		dcos, dn := r.matrix(n, c*k), r.matrix(1, n).Data
		st0, m0 = h.State(), h.AppendMargins(nil)
		dcos0, dn0 := slices.Clone(dcos.Data), slices.Clone(dn)
		l, err = h.LossFromCosinesNorms(cos, norms, labels, &dcos, dn)
		if err != nil {
			if !known(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			untouched("LossFromCosinesNorms", [2][]float32{dcos0, dcos.Data}, [2][]float32{dn0, dn})
			return
		}
		finite("LossFromCosinesNorms", []float32{l}, dcos.Data, dn)
	})
}
