package main

// Encoders the gemm family needs beyond encode.go: the permutes of its
// transposing packs (trn1, trn2, zip1, zip2) and the prefetch with an
// unscaled offset, which Go's PRFM cannot express (it rounds an offset
// that is not a multiple of 8 down, silently). Same conventions as
// encode.go: range-checked fields, destination first, GNU syntax as
// golang.org/x/arch prints it.

import "fmt"

// permute encodes the "permute" group (uzp, trn, zip): 0 Q 001110 size 0
// Rm 0 opc 10 Rn Rd.
func permute(name string, opc uint32, d, n, m VReg, a Arr) Word {
	q, size := intVec(name, a)
	return Word{0x0e000800 | q<<30 | size<<22 | m.num()<<16 | opc<<12 | rdn(d, n),
		fmt.Sprintf("%s %s, %s, %s", name, vn(d, a), vn(n, a), vn(m, a))}
}

// trn1: the even lanes of n and m, interleaved: d = n0 m0 n2 m2 … .
func trn1(d, n, m VReg, a Arr) Word { return permute("trn1", 2, d, n, m, a) }

// trn2: the odd lanes of n and m, interleaved: d = n1 m1 n3 m3 … .
func trn2(d, n, m VReg, a Arr) Word { return permute("trn2", 6, d, n, m, a) }

// zip1: the low halves of n and m, interleaved: d = n0 m0 n1 m1 … .
func zip1(d, n, m VReg, a Arr) Word { return permute("zip1", 3, d, n, m, a) }

// zip2: the high halves of n and m, interleaved.
func zip2(d, n, m VReg, a Arr) Word { return permute("zip2", 7, d, n, m, a) }

// prfOp is a prefetch operation: what for (load, store), which cache
// level, and whether to keep the line or stream it.
type prfOp uint32

const (
	pldl1keep prfOp = 0x00
	pldl2keep prfOp = 0x02
	pstl1keep prfOp = 0x10
	pstl2keep prfOp = 0x12
)

var prfNames = map[prfOp]string{pldl1keep: "pldl1keep", pldl2keep: "pldl2keep", pstl1keep: "pstl1keep", pstl2keep: "pstl2keep"}

// prfum hints that the line holding byte off of base (off in −256..255,
// any alignment) will be accessed. A prefetch never faults.
func prfum(op prfOp, base Reg, off int) Word {
	name, ok := prfNames[op]
	if !ok {
		panic(fmt.Sprintf("arm64: prfum: prefetch operation %#x not supported", uint32(op)))
	}
	if off < -256 || off > 255 {
		panic(fmt.Sprintf("arm64: prfum: offset %d out of range −256..255", off))
	}
	text := fmt.Sprintf("prfum %s, [%s,#%d]", name, gpName(base, true), off)
	if off == 0 {
		text = fmt.Sprintf("prfum %s, [%s]", name, gpName(base, true))
	}
	return Word{0xf8800000 | (uint32(off)&0x1ff)<<12 | base.num()<<5 | uint32(op), text}
}
