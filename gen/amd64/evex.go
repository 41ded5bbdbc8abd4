package main

import (
	"fmt"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/ir"
	"github.com/mmcloughlin/avo/reg"
)

// This file is the EVEX encoder for the AVX-512 instructions that the Go
// assembler lacks (AVX512_BF16). Each encoder range-checks its registers
// and returns the instruction's bytes with its Intel mnemonic, which the
// bodies emit as one line of BYTE directives with the mnemonic in a
// comment, as gen/arm64 does with WORD:
//
//	BYTE $0x62; BYTE $0x92; BYTE $0x1e; BYTE $0x40; BYTE $0x52; BYTE $0xc6 // vdpbf16ps zmm0,zmm28,zmm30
//
// evex_test.go assembles every form and decodes it with GNU objdump
// (binutils), comparing the decode with the comment. Only register forms
// are encoded: the bodies load memory operands with instructions the Go
// assembler has.

// evexInsn is one encoded instruction.
type evexInsn struct {
	Bytes []byte
	Intel string // objdump -M intel spelling: "vdpbf16ps zmm0,zmm28,zmm30"
}

// String is the instruction as a line of Go assembly.
func (e evexInsn) String() string {
	parts := make([]string, len(e.Bytes))
	for i, b := range e.Bytes {
		parts[i] = fmt.Sprintf("BYTE $0x%02x", b)
	}
	return strings.Join(parts, "; ") + " // " + e.Intel
}

// evexPP is the implied legacy prefix of an EVEX opcode.
type evexPP uint8

const (
	ppNone evexPP = 0
	pp66   evexPP = 1
	ppF3   evexPP = 2
	ppF2   evexPP = 3
)

// evexMap is the opcode map: 1 = 0F, 2 = 0F38, 3 = 0F3A.
type evexMap uint8

const map0F38 evexMap = 2

// vecNum range-checks a vector register number (0–31 with EVEX).
func vecNum(what string, r int) int {
	if r < 0 || r > 31 {
		panic(fmt.Sprintf("evex: %s register %d outside 0..31", what, r))
	}
	return r
}

// evexRRR encodes a register-only EVEX instruction: ModRM.reg = d,
// EVEX.vvvv = v (−1: none, encoded 1111 with V' = 1), ModRM.rm = m, vector
// length 512 (L'L = 10), no masking, W as given.
func evexRRR(pp evexPP, mm evexMap, w bool, op byte, d, v, m int) []byte {
	d, m = vecNum("destination", d), vecNum("source", m)
	inv := func(x int) byte { return byte(^x & 1) }
	// P0: R̄ X̄ B̄ R̄′ 0 0 m m
	p0 := inv(d>>3)<<7 | inv(m>>4)<<6 | inv(m>>3)<<5 | inv(d>>4)<<4 | byte(mm)
	vv, vhi := byte(0xf), byte(1) // no register: vvvv = 1111, V̄′ = 1
	if v >= 0 {
		v = vecNum("first source", v)
		vv, vhi = byte(^v&0xf), inv(v>>4)
	}
	var wb byte
	if w {
		wb = 1
	}
	// P1: W v̄v̄v̄v̄ 1 p p
	p1 := wb<<7 | vv<<3 | 1<<2 | byte(pp)
	// P2: z L′L b V̄′ a a a
	p2 := byte(2)<<5 | vhi<<3
	modrm := byte(0xc0) | byte(d&7)<<3 | byte(m&7)
	return []byte{0x62, p0, p1, p2, op, modrm}
}

// vdpbf16ps encodes VDPBF16PS zmm_d, zmm_v, zmm_m (EVEX.512.F3.0F38.W0 52
// /r): each float32 lane i of d += v.bf16[2i+1]·m.bf16[2i+1] +
// v.bf16[2i]·m.bf16[2i] (the odd pair first; DAZ, FTZ, round to nearest
// even).
func vdpbf16ps(d, v, m int) evexInsn {
	return evexInsn{evexRRR(ppF3, map0F38, false, 0x52, d, vecNum("first source", v), m),
		fmt.Sprintf("vdpbf16ps zmm%d,zmm%d,zmm%d", d, v, m)}
}

// vcvtne2ps2bf16 encodes VCVTNE2PS2BF16 zmm_d, zmm_v, zmm_m
// (EVEX.512.F2.0F38.W0 72 /r): the 16 words of d's lower half are m's
// floats rounded to bfloat16 (nearest even), the upper 16 words v's.
func vcvtne2ps2bf16(d, v, m int) evexInsn {
	return evexInsn{evexRRR(ppF2, map0F38, false, 0x72, d, vecNum("first source", v), m),
		fmt.Sprintf("vcvtne2ps2bf16 zmm%d,zmm%d,zmm%d", d, v, m)}
}

// vcvtneps2bf16 encodes VCVTNEPS2BF16 ymm_d, zmm_m (EVEX.512.F3.0F38.W0 72
// /r): the 16 floats of m rounded to bfloat16 into the 16 words of d.
func vcvtneps2bf16(d, m int) evexInsn {
	return evexInsn{evexRRR(ppF3, map0F38, false, 0x72, d, -1, m),
		fmt.Sprintf("vcvtneps2bf16 ymm%d,zmm%d", d, m)}
}

// zmmNum is the number of a physical Z register (Z0–Z31).
func zmmNum(r reg.VecPhysical) int {
	for i, z := range zmms {
		if z == r {
			return i
		}
	}
	panic(fmt.Sprintf("evex: %v is not a Z register", r))
}

// raw emits e as one line of BYTE directives. avo sees an instruction
// without operands: the bodies that use raw lines hold their vectors in
// physical registers, so no allocation crosses them.
func raw(e evexInsn) {
	Instruction(&ir.Instruction{Opcode: e.String()})
}

// VDPBF16PS, VCVTNE2PS2BF16 and VCVTNEPS2BF16 on physical registers, in
// the Go assembler's operand order (sources first, destination last).
func emitVDPBF16PS(m, v, d reg.VecPhysical) { raw(vdpbf16ps(zmmNum(d), zmmNum(v), zmmNum(m))) }

func emitVCVTNE2PS2BF16(m, v, d reg.VecPhysical) {
	raw(vcvtne2ps2bf16(zmmNum(d), zmmNum(v), zmmNum(m)))
}

func emitVCVTNEPS2BF16(m reg.VecPhysical, d reg.VecPhysical) {
	raw(vcvtneps2bf16(ymmNum(d), zmmNum(m)))
}

// ymmNum is the number of a physical Y register (Y0–Y31).
func ymmNum(r reg.VecPhysical) int {
	for i, z := range zmms {
		if z.AsY().Asm() == r.Asm() { // AsY's value is not reg.Y<i> itself: compare names
			return i
		}
	}
	panic(fmt.Sprintf("evex: %v is not a Y register", r))
}
