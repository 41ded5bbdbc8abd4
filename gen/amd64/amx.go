package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// This file is the VEX encoder for the AMX instructions (AMX-TILE,
// AMX-BF16) that the Go assembler lacks, and the bodies that use them.
// Like evex.go it range-checks every operand and returns the bytes with
// the instruction's Intel spelling (objdump -M intel), which the bodies
// emit as one line of BYTE directives; evex_test.go decodes every form and
// every committed line with GNU objdump.
//
// Memory operands are a base register with an index register scaled by 1
// (TILELOADD and TILESTORED take the row stride in the index) or a base
// register alone (LDTILECFG); no displacement, so the bases RBP and R13,
// whose mod 00 encodings mean something else, are refused, and RSP cannot
// be an index.

// gpNum range-checks a general-purpose register number (0 = RAX … 15 = R15).
func gpNum(what string, r int) int {
	if r < 0 || r > 15 {
		panic(fmt.Sprintf("amx: %s register %d outside 0..15", what, r))
	}
	return r
}

// tmmNum range-checks a tile register number (TMM0–TMM7).
func tmmNum(what string, t int) int {
	if t < 0 || t > 7 {
		panic(fmt.Sprintf("amx: %s tile %d outside 0..7", what, t))
	}
	return t
}

// gpNames are the 64-bit register names objdump prints, by number.
var gpNames = [16]string{"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
	"r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"}

// vex3 encodes a three-byte VEX prefix for map 0F38, L = 0, W = 0:
// C4, R̄X̄B̄ m-mmmm, W v̄v̄v̄v̄ L pp, from the high bits of ModRM.reg (r),
// SIB.index (x) and ModRM.rm or SIB.base (b), and vvvv (v; −1: none).
func vex3(pp evexPP, r, x, b, v int) []byte {
	inv := func(bit int) byte { return byte(^bit & 1) }
	b1 := inv(r>>3)<<7 | inv(x>>3)<<6 | inv(b>>3)<<5 | byte(map0F38)
	vv := byte(0xf)
	if v >= 0 {
		vv = byte(^v & 0xf)
	}
	return []byte{0xc4, b1, vv<<3 | byte(pp)}
}

// sibMem encodes ModRM (mod 00, reg rr, rm 100) and SIB (scale 1) for
// [base+index*1], refusing what mod 00 cannot address that way.
func sibMem(rr, base, index int) []byte {
	base, index = gpNum("base", base), gpNum("index", index)
	switch {
	case base&7 == 5:
		panic(fmt.Sprintf("amx: base %s needs a displacement, which the encoder does not emit", gpNames[base]))
	case index == 4:
		panic("amx: rsp cannot be an index")
	}
	return []byte{byte(rr&7)<<3 | 4, byte(index&7)<<3 | byte(base&7)}
}

// tileloadd encodes TILELOADD tmm_t, [base+index*1] (VEX.128.F2.0F38.W0
// 4B /r): tile t's rows from base, index bytes apart.
func tileloadd(t, base, index int) evexInsn {
	t = tmmNum("destination", t)
	b := append(vex3(ppF2, 0, index, base, -1), 0x4b)
	b = append(b, sibMem(t, base, index)...)
	return evexInsn{b, fmt.Sprintf("tileloadd tmm%d,[%s+%s*1]", t, gpNames[base], gpNames[index])}
}

// tilestored encodes TILESTORED [base+index*1], tmm_t (VEX.128.F3.0F38.W0
// 4B /r).
func tilestored(base, index, t int) evexInsn {
	t = tmmNum("source", t)
	b := append(vex3(ppF3, 0, index, base, -1), 0x4b)
	b = append(b, sibMem(t, base, index)...)
	return evexInsn{b, fmt.Sprintf("tilestored [%s+%s*1],tmm%d", gpNames[base], gpNames[index], t)}
}

// tdpbf16ps encodes TDPBF16PS tmm_d, tmm_a, tmm_b (VEX.128.F3.0F38.W0 5C
// 11:d:a, vvvv = b): d[i][j] += Σ_q a.bf16[i][2q]·b.bf16[q][2j] +
// a.bf16[i][2q+1]·b.bf16[q][2j+1] in float32 (DAZ, FTZ, round to nearest
// even), a's rows being C's rows and b's rows k-pairs.
func tdpbf16ps(d, a, b int) evexInsn {
	d, a, b = tmmNum("destination", d), tmmNum("first source", a), tmmNum("second source", b)
	if d == a || d == b || a == b {
		panic(fmt.Sprintf("amx: tdpbf16ps tmm%d,tmm%d,tmm%d: the three tiles must differ (#UD)", d, a, b))
	}
	e := append(vex3(ppF3, 0, 0, 0, b), 0x5c, 0xc0|byte(d)<<3|byte(a))
	return evexInsn{e, fmt.Sprintf("tdpbf16ps tmm%d,tmm%d,tmm%d", d, a, b)}
}

// tilezero encodes TILEZERO tmm_t (VEX.128.F2.0F38.W0 49 11:t:000).
func tilezero(t int) evexInsn {
	t = tmmNum("destination", t)
	return evexInsn{append(vex3(ppF2, 0, 0, 0, -1), 0x49, 0xc0|byte(t)<<3), fmt.Sprintf("tilezero tmm%d", t)}
}

// ldtilecfg encodes LDTILECFG [base] (VEX.128.NP.0F38.W0 49 /0): the
// 64-byte tile configuration at base.
func ldtilecfg(base int) evexInsn {
	base = gpNum("base", base)
	if base&7 == 4 || base&7 == 5 {
		panic(fmt.Sprintf("amx: ldtilecfg [%s]: base needs a SIB byte or a displacement, which the encoder does not emit", gpNames[base]))
	}
	return evexInsn{append(vex3(ppNone, 0, 0, base, -1), 0x49, byte(base&7)), fmt.Sprintf("ldtilecfg [%s]", gpNames[base])}
}

// tilerelease encodes TILERELEASE (VEX.128.NP.0F38.W0 49 C0): every tile
// back to its initial state, so the OS saves no tile data.
func tilerelease() evexInsn {
	return evexInsn{append(vex3(ppNone, 0, 0, 0, -1), 0x49, 0xc0), "tilerelease"}
}

// gpRegs are avo's 64-bit registers by number.
var gpRegs = [16]reg.GPPhysical{reg.RAX, reg.RCX, reg.RDX, reg.RBX, reg.RSP, reg.RBP, reg.RSI, reg.RDI,
	reg.R8, reg.R9, reg.R10, reg.R11, reg.R12, reg.R13, reg.R14, reg.R15}

// gpIndex is the number of a physical 64-bit register.
func gpIndex(r reg.GPPhysical) int {
	for i, g := range gpRegs {
		if g.Asm() == r.Asm() {
			return i
		}
	}
	panic(fmt.Sprintf("amx: %v is not a 64-bit general register", r))
}

// The AMX micro-kernel's shape: C is 2×2 tiles of 16×16 floats (32×32),
// A two tiles of 16 rows × 16 k-pairs, B two tiles of 16 k-pairs × 16
// columns. asm's driver repeats it (gemmAMXMR, gemmAMXNR).
const (
	amxMR, amxNR = 32, 32
	amxPairs     = 16 // k-pairs per tile step (64 bytes of bf16 per row)
)

// amxCfg is the tile configuration gemmTileBF16AMX defines and
// gemmPeakAMX reuses (emit that one first).
var amxCfg Mem

// gemmTileBF16AMX emits gemmTileBF16AMX(ks, a, b, c, ldc): the raw 32×32
// product of an A sliver and a B panel of ks k-pairs (ks a positive
// multiple of 16) stored to c (row stride ldc floats), no α, β or merge:
//
//	c[i·ldc+j] = Σ_q (a[i·ks+q] · b[q·32+j]) for i, j < 32
//
// each word a bf16 pair (asm's gemmKernelBF16Generic, with A's sliver
// row-major: row i's pairs contiguous, the layout TILELOADD reads). Tiles:
// C in TMM0–3 (TMM0 rows 0–15 columns 0–15, TMM1 columns 16–31, TMM2–3
// rows 16–31), A in TMM4–5, B in TMM6–7. It runs between gemmAMXEnter
// (LDTILECFG from gemmAMXCfg) and gemmAMXExit (TILERELEASE), on a
// goroutine locked to its thread: one configuration per GEMM call, not per
// tile (LDTILECFG, TILEZERO and TILERELEASE cost ~100 ns a call, 4.4
// rounds of four TDPBF16PS, on the AMX Xeon of 2026-12-02). Every register
// is physical: the BYTE lines name them.
func gemmTileBF16AMX() {
	cfg := GLOBL("gemmAMXCfg", RODATA|NOPTR)
	amxCfg = cfg
	DATA(0, U8(1))            // palette 1, start row 0; bytes 1–15 zero
	for t := 0; t < 16; t++ { // colsb: 64 bytes per row for TMM0–7, 0 for the rest
		DATA(16+2*t, U16(64*b2i(t < 8)))
	}
	for t := 0; t < 16; t++ { // rows: 16 for TMM0–7
		DATA(48+t, U8(16*b2i(t < 8)))
	}
	name := "gemmTileBF16AMX"
	implement(name, name+" stores the raw 32×32 bf16 tile product of the A sliver a and B panel b, ks k-pairs deep, to c (row stride ldc), between gemmAMXEnter and gemmAMXExit.")
	amxTileBody(name)

	implement("gemmAMXEnter", "gemmAMXEnter loads the AMX tile configuration of gemmTileBF16AMX.")
	cf := reg.RAX
	LEAQ(cfg, cf)
	raw(ldtilecfg(gpIndex(cf)))
	ret()
	implement("gemmAMXExit", "gemmAMXExit releases the tile state (TILERELEASE).")
	raw(tilerelease())
	ret()
}

// amxTileBody emits gemmTileBF16AMX's body.
func amxTileBody(name string) {
	ks, a0, b0, c, ldc := reg.RCX, reg.RSI, reg.RDI, reg.RDX, reg.R8
	astr, a1, bstr, b1, c1 := reg.R9, reg.R10, reg.R11, reg.R12, reg.RBX
	Load(Param("ks"), ks)
	Load(Param("a"), a0)
	Load(Param("b"), b0)
	Load(Param("c"), c)
	Load(Param("ldc"), ldc)
	n := gpIndex
	SHLQ(U8(2), ldc) // bytes
	for t := 0; t < 4; t++ {
		raw(tilezero(t))
	}
	MOVQ(ks, astr)
	SHLQ(U8(2), astr) // A's row stride: ks words
	MOVQ(astr, a1)
	SHLQ(U8(4), a1)
	ADDQ(a0, a1) // rows 16–31
	MOVQ(U32(4*amxNR), bstr)
	LEAQ(Mem{Base: b0, Disp: 4 * 16}, b1) // columns 16–31
	SHRQ(U8(4), ks)                       // tile steps
	Label(name + "_step")
	raw(tileloadd(4, n(a0), n(astr)))
	raw(tileloadd(5, n(a1), n(astr)))
	raw(tileloadd(6, n(b0), n(bstr)))
	raw(tileloadd(7, n(b1), n(bstr)))
	raw(tdpbf16ps(0, 4, 6))
	raw(tdpbf16ps(1, 4, 7))
	raw(tdpbf16ps(2, 5, 6))
	raw(tdpbf16ps(3, 5, 7))
	ADDQ(U8(4*amxPairs), a0)
	ADDQ(U8(4*amxPairs), a1)
	ADDQ(U32(4*amxPairs*amxNR), b0)
	ADDQ(U32(4*amxPairs*amxNR), b1)
	DECQ(ks)
	JNZ(LabelRef(name + "_step"))
	raw(tilestored(n(c), n(ldc), 0))
	LEAQ(Mem{Base: c, Disp: 4 * 16}, c1)
	raw(tilestored(n(c1), n(ldc), 1))
	MOVQ(ldc, c1)
	SHLQ(U8(4), c1)
	ADDQ(c1, c) // rows 16–31
	raw(tilestored(n(c), n(ldc), 2))
	LEAQ(Mem{Base: c, Disp: 4 * 16}, c1)
	raw(tilestored(n(c1), n(ldc), 3))
	ret()
}

// gemmPeakAMX emits gemmPeakAMX(n): n rounds of four independent
// TDPBF16PS on tiles that stay in registers (2×2 accumulators of 16×16,
// each round 4·16·16·32·2 flop), the AMX peak for bench's probe. Tiles
// start zeroed and are released on exit.
func gemmPeakAMX() {
	name := "gemmPeakAMX"
	implement(name, name+" runs n rounds of four independent TDPBF16PS on register tiles.")
	cnt, cf := reg.RCX, reg.RAX
	Load(Param("n"), cnt)
	LEAQ(amxCfg, cf)
	raw(ldtilecfg(gpIndex(cf)))
	for t := 0; t < 8; t++ {
		raw(tilezero(t))
	}
	TESTQ(cnt, cnt)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	raw(tdpbf16ps(0, 4, 6))
	raw(tdpbf16ps(1, 4, 7))
	raw(tdpbf16ps(2, 5, 6))
	raw(tdpbf16ps(3, 5, 7))
	DECQ(cnt)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	raw(tilerelease())
	ret()
}

// gemmCvtBF16 emits gemmCvtBF16AVX512(dst, src, n): the n floats at src
// (n a multiple of 32) rounded to bfloat16 and stored as n/2 words at dst,
// k order kept (word q = bf16(src[2q]) | bf16(src[2q+1])<<16: asm's
// pairWord), by VCVTNE2PS2BF16 on Z0–Z2.
func gemmCvtBF16() {
	name := "gemmCvtBF16AVX512"
	implement(name, name+" rounds the n floats at src (n a multiple of 32) to bf16 words at dst, in order.")
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
	SHRQ(U8(5), n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	VMOVUPS(Mem{Base: src}, reg.Z0)
	VMOVUPS(Mem{Base: src, Disp: 64}, reg.Z1)
	emitVCVTNE2PS2BF16(reg.Z0, reg.Z1, reg.Z2) // words 0–15 from Z0, 16–31 from Z1
	VMOVUPS(reg.Z2, Mem{Base: dst})
	ADDQ(U8(128), src)
	ADDQ(U8(64), dst)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	ret()
}

// b2i is 1 for true, 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
