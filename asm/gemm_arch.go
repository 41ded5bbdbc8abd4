package asm

import "unsafe"

// The Go twins of the routines a level supplies to the GEMM driver
// (gemmArch). Each doc comment is the routine's contract, which the
// assembly bodies meet too. newGemmArch fills in the packs, merge and
// prefetch a level leaves nil from these; the kernel twin serves tests,
// and a new level's first port. The driver has checked that every operand
// spans what the routine reads or writes, so the twins view their
// pointers as slices of exactly that length.

// gemmKernelGeneric returns the MR×NR micro-kernel (mrMax = MR):
//
//	for i := 0; i < mr; i++ {
//		for j := 0; j < NR; j++ {
//			var s float32
//			for p := 0; p < kc; p++ {
//				s += a[p*MR+i] * b[p*NR+j]
//			}
//			if beta == 0 {
//				c[i*ldc+j] = alpha * s
//			} else {
//				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
//			}
//		}
//	}
//
// with 1 ≤ mr ≤ MR and kc ≥ 0: a is a packed sliver (rows mr..MR−1 of each
// step are never read), b a packed panel, and C is only written when β = ±0.
func gemmKernelGeneric(mrMax, nr int) gemmKernelFunc {
	return func(mr, kc int, a, b, c *float32, ldc int, alpha, beta float32) {
		as := unsafe.Slice(a, kc*mrMax)
		bs := unsafe.Slice(b, kc*nr)
		cs := unsafe.Slice(c, (mr-1)*ldc+nr)
		for i := 0; i < mr; i++ {
			ci := cs[i*ldc : i*ldc+nr]
			for j := range ci {
				var s float32
				for p := 0; p < kc; p++ {
					s += as[p*mrMax+i] * bs[p*nr+j]
				}
				if beta == 0 {
					ci[j] = alpha * s
				} else {
					ci[j] = alpha*s + beta*ci[j]
				}
			}
		}
	}
}

// gemmMergeGeneric returns the NR-wide merge, the kernel's store on its own:
//
//	for i := 0; i < mr; i++ {
//		for j := 0; j < NR; j++ {
//			if beta == 0 {
//				c[i*ldc+j] = alpha * t[i*NR+j]
//			} else {
//				c[i*ldc+j] = alpha*t[i*NR+j] + beta*c[i*ldc+j]
//			}
//		}
//	}
func gemmMergeGeneric(nr int) gemmMergeFunc {
	return func(mr int, t, c *float32, ldc int, alpha, beta float32) {
		mergeRows(mr, nr, unsafe.Slice(t, mr*nr), nr, unsafe.Slice(c, (mr-1)*ldc+nr), ldc, alpha, beta)
	}
}

// gemmScaleGeneric returns the NR-wide scaling store, the fused epilogue of
// GemmNTPackedScaled: the raw tile T times the row scales rs and the column
// scales cs, added to C first when β ≠ 0 (β is 0 or 1, the last of several
// depth passes adding to what the earlier ones left in C):
//
//	for i := 0; i < mr; i++ {
//		for j := 0; j < NR; j++ {
//			v := t[i*NR+j]
//			if beta != 0 {
//				v += c[i*ldc+j]
//			}
//			c[i*ldc+j] = rs[i] * (cs[j] * v)
//		}
//	}
func gemmScaleGeneric(nr int) gemmScaleFunc {
	return func(mr int, t, c *float32, ldc int, rs, cs *float32, beta float32) {
		scaleRows(mr, nr, unsafe.Slice(t, mr*nr), nr, unsafe.Slice(c, (mr-1)*ldc+nr), ldc,
			unsafe.Slice(rs, mr), unsafe.Slice(cs, nr), beta)
	}
}

// scaleRows is gemmScaleGeneric on an mr×nr tile of row stride ldt.
func scaleRows(mr, nr int, t []float32, ldt int, c []float32, ldc int, rs, cs []float32, beta float32) {
	cs = cs[:nr]
	for i := 0; i < mr; i++ {
		ti := t[i*ldt : i*ldt+nr]
		ci := c[i*ldc : i*ldc+nr]
		r := rs[i]
		if beta == 0 {
			for j, v := range ti {
				ci[j] = r * (cs[j] * v)
			}
			continue
		}
		for j, v := range ti {
			ci[j] = r * (cs[j] * (v + ci[j]))
		}
	}
}

// gemmPackTGeneric returns the transposing pack of w rows:
//
//	for i := 0; i < w; i++ {
//		for p := 0; p < 8*kc8; p++ {
//			dst[p*ldd+i] = src[i*lds+p]
//		}
//	}
func gemmPackTGeneric(w int) gemmPackTFunc {
	return func(dst *float32, ldd int, src *float32, lds int, kc8 int) {
		kc := 8 * kc8
		if kc == 0 {
			return
		}
		d := unsafe.Slice(dst, (kc-1)*ldd+w)
		s := unsafe.Slice(src, (w-1)*lds+kc)
		for i := 0; i < w; i++ {
			for p, v := range s[i*lds : i*lds+kc] {
				d[p*ldd+i] = v
			}
		}
	}
}

// gemmPackCGeneric returns the copying pack of w columns:
//
//	for p := 0; p < kc; p++ {
//		for j := 0; j < w; j++ {
//			dst[p*ldd+j] = src[p*lds+j]
//		}
//	}
func gemmPackCGeneric(w int) gemmPackCFunc {
	return func(dst *float32, ldd int, src *float32, lds int, kc int) {
		if kc == 0 {
			return
		}
		d := unsafe.Slice(dst, (kc-1)*ldd+w)
		s := unsafe.Slice(src, (kc-1)*lds+w)
		for p := 0; p < kc; p++ {
			copy(d[p*ldd:p*ldd+w], s[p*lds:p*lds+w])
		}
	}
}

// gemmPrefetchGeneric does nothing: a prefetch is only a hint.
func gemmPrefetchGeneric(p *float32, ld, rows, width int) {}
