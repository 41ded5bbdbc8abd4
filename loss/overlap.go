package loss

import (
	"fmt"
	"unsafe"
)

// span is the memory of one argument, as an address range [lo, hi). An
// empty slice (or an absent output) has lo = hi and overlaps nothing.
type span struct {
	name   string
	lo, hi uintptr
	// inPlace names the one input this output may coincide with exactly
	// (same start, same length): the documented in-place form.
	inPlace string
}

func spanOf[T float32 | int32](name string, s []T) span {
	if len(s) == 0 {
		return span{name: name}
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	return span{name: name, lo: lo, hi: lo + uintptr(len(s))*unsafe.Sizeof(s[0])}
}

// gradSpan is the span of an optional gradient matrix.
func gradSpan(name string, g *Matrix, inPlace string) span {
	if g == nil {
		return span{name: name}
	}
	sp := spanOf(name, g.Data)
	sp.inPlace = inPlace
	return sp
}

func (a span) overlaps(b span) bool { return a.lo < a.hi && b.lo < b.hi && a.lo < b.hi && b.lo < a.hi }

// checkOverlap returns an error wrapping ErrOverlap when an output shares
// memory with another output, or with an input other than in the one exact
// in-place form the output allows.
func checkOverlap(outs, ins []span) error {
	for i, o := range outs {
		for _, p := range outs[:i] {
			if o.overlaps(p) {
				return fmt.Errorf("%w: %s and %s share memory", ErrOverlap, p.name, o.name)
			}
		}
		for _, in := range ins {
			if !o.overlaps(in) {
				continue
			}
			if o.inPlace == in.name && o.lo == in.lo && o.hi == in.hi {
				continue
			}
			how := "shares memory with"
			if o.inPlace == in.name {
				how = "partly overlaps (only the exact same slice is allowed)"
			}
			return fmt.Errorf("%w: output %s %s input %s", ErrOverlap, o.name, how, in.name)
		}
	}
	return nil
}
