package main

// Encoders the margin family needs beyond encode.go: the test whether any
// lane of a compare mask is set (umaxv, then fmov to a general register).
// Same conventions as encode.go: range-checked fields, GNU syntax as
// golang.org/x/arch prints it.

import "fmt"

// umaxv: s(d) = the largest of the four unsigned 32-bit lanes of n (4S
// only); of a compare mask, all ones when any lane is set, else 0.
func umaxv(d, n VReg, a Arr) Word {
	if a != S4 {
		panic(fmt.Sprintf("arm64: umaxv: arrangement %v, want 4s", a))
	}
	return Word{0x6eb0a800 | rdn(d, n), fmt.Sprintf("umaxv s%d, %s", d.num(), vn(n, a))}
}

// fmovToGP: the 32-bit general register r = the bits of the scalar s(n)
// (fmov wr, sn).
func fmovToGP(r Reg, n VReg) Word {
	return Word{0x1e260000 | n.num()<<5 | r.num(), fmt.Sprintf("fmov %s, s%d", gpName(r, false), n.num())}
}
