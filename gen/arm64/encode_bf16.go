package main

// Encoders for FEAT_BF16 (Armv8.6; Neoverse V1/V2, Graviton 3/4, Apple M2
// and later), which neither the Go assembler nor golang.org/x/arch know:
// the bf16 dot products of the bf16 GEMM kernel. Same conventions as
// encode.go (range-checked fields, destination first, GNU syntax as
// binutils prints it); encode_bf16_test.go decodes them with GNU objdump
// for aarch64, since x/arch cannot.

import "fmt"

// bfdotElem: d.4s[j] += n.8h[2j]·m.2h[i][0] + n.8h[2j+1]·m.2h[i][1], the
// pair i (0..3) of m broadcast to every lane (BFDOT by element, Q = 1).
func bfdotElem(d, n, m VReg, i int) Word {
	if i < 0 || i > 3 {
		panic(fmt.Sprintf("arm64: bfdot: pair index %d out of range 0..3", i))
	}
	h, l := uint32(i)>>1, uint32(i)&1
	return Word{0x4f40f000 | l<<21 | m.num()<<16 | h<<11 | rdn(d, n),
		fmt.Sprintf("bfdot v%d.4s, v%d.8h, v%d.2h[%d]", d.num(), n.num(), m.num(), i)}
}

// bfdot: d.4s[j] += n.8h[2j]·m.8h[2j] + n.8h[2j+1]·m.8h[2j+1] (BFDOT
// vector, Q = 1).
func bfdot(d, n, m VReg) Word {
	return Word{0x6e40fc00 | m.num()<<16 | rdn(d, n),
		fmt.Sprintf("bfdot v%d.4s, v%d.8h, v%d.8h", d.num(), n.num(), m.num())}
}

// bfmmla: the 2×2 float32 tile d += n (2×4 bf16, row-major) · mᵀ (m 2×4
// bf16, row-major) (BFMMLA).
func bfmmla(d, n, m VReg) Word {
	return Word{0x6e40ec00 | m.num()<<16 | rdn(d, n),
		fmt.Sprintf("bfmmla v%d.4s, v%d.8h, v%d.8h", d.num(), n.num(), m.num())}
}
