package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// gemmPairBF16 emits gemmPairBF16AVX512(dst, ldd, src, lds, kc2, w): the
// bf16 pair conversion of the GEMM's packs (asm's gemmPairGeneric),
//
//	dst[q·ldd + x] = bf16(src[2q·lds + x]) | bf16(src[(2q+1)·lds + x])<<16
//
// for q < kc2 and x < w, 16 words at a time: VCVTNE2PS2BF16 rounds the two
// rows' 16 floats into one register (row 2q in the low 16 words, row 2q+1
// in the high ones) and VPERMW interleaves them; the last w mod 16 with
// masked loads and a masked store. Physical registers Z0–Z3, Z31 and K1.
func gemmPairBF16() {
	idx := GLOBL("gemmPairIdx", RODATA|NOPTR)
	for i := 0; i < 32; i++ { // word 2j ← j (row 2q), word 2j+1 ← 16+j (row 2q+1)
		DATA(2*i, U16(i/2+16*(i%2)))
	}
	name := "gemmPairBF16AVX512"
	implement(name, name+" sets dst[q·ldd+x] = bf16(src[2q·lds+x]) | bf16(src[(2q+1)·lds+x])<<16 for q < kc2, x < w.")
	dst := Load(Param("dst"), GP64())
	ldd := Load(Param("ldd"), GP64())
	src := Load(Param("src"), GP64())
	lds := Load(Param("lds"), GP64())
	n := Load(Param("kc2"), GP64())
	w := Load(Param("w"), GP64())
	SHLQ(U8(2), ldd)
	SHLQ(U8(2), lds)
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	TESTQ(w, w)
	JZ(LabelRef(name + "_done"))
	// K1: the low w mod 16 lanes
	rem := GP64()
	MOVQ(w, rem)
	ANDQ(U8(15), rem)
	one := GP64()
	MOVQ(U32(1), one)
	SHLXQ(rem, one, one)
	DECQ(one)
	KMOVW(one.As32(), reg.K1)
	SHRQ(U8(4), w) // full chunks
	VMOVDQU64(idx, reg.Z31)
	lds2 := GP64()
	LEAQ(Mem{Base: lds, Index: lds, Scale: 1}, lds2)
	s0, s1, d, j := GP64(), GP64(), GP64(), GP64()
	chunk := func(masked bool) {
		if masked {
			VMOVUPS_Z(Mem{Base: s0}, reg.K1, reg.Z0)
			VMOVUPS_Z(Mem{Base: s1}, reg.K1, reg.Z1)
		} else {
			VMOVUPS(Mem{Base: s0}, reg.Z0)
			VMOVUPS(Mem{Base: s1}, reg.Z1)
		}
		emitVCVTNE2PS2BF16(reg.Z0, reg.Z1, reg.Z2) // words 0–15: row 2q, 16–31: row 2q+1
		VPERMW(reg.Z2, reg.Z31, reg.Z3)
		if masked {
			VMOVUPS(reg.Z3, reg.K1, Mem{Base: d})
		} else {
			VMOVUPS(reg.Z3, Mem{Base: d})
		}
	}
	Label(name + "_row")
	MOVQ(src, s0)
	LEAQ(Mem{Base: src, Index: lds, Scale: 1}, s1)
	MOVQ(dst, d)
	MOVQ(w, j)
	TESTQ(j, j)
	JZ(LabelRef(name + "_tail"))
	Label(name + "_chunk")
	chunk(false)
	ADDQ(U8(64), s0)
	ADDQ(U8(64), s1)
	ADDQ(U8(64), d)
	DECQ(j)
	JNZ(LabelRef(name + "_chunk"))
	Label(name + "_tail")
	TESTQ(rem, rem)
	JZ(LabelRef(name + "_next"))
	chunk(true)
	Label(name + "_next")
	ADDQ(lds2, src)
	ADDQ(ldd, dst)
	DECQ(n)
	JNZ(LabelRef(name + "_row"))
	Label(name + "_done")
	ret()
}

// gemmRoundBF16 emits gemmRoundBF16AVX2(x, n): x[i] = RoundBF16(x[i]) in
// place for i < n, n a multiple of 8, on the float32 bits (asm's BF16Bits,
// bitwise): b + 0x7fff + (b>>16 & 1) with the low half cleared; zero and
// subnormal inputs to the signed zero; NaN to its top half with the quiet
// bit set. VEX-encoded on Y0–Y15, so both x86 levels use it.
func gemmRoundBF16() {
	name := "gemmRoundBF16AVX2"
	implement(name, name+" rounds the n floats at x (n a multiple of 8) to bfloat16 in place.")
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	y := avx2.phys
	one, bias, hi, expm, absm, inf, quiet, sign := y(8), y(9), y(10), y(11), y(12), y(13), y(14), y(15)
	c := GP32()
	set := func(v uint32, r reg.VecPhysical) {
		MOVL(U32(v), c)
		MOVD(c, r.AsX())
		VPBROADCASTD(r.AsX(), r)
	}
	set(1, one)
	set(0x7fff, bias)
	set(0xffff0000, hi)
	set(0x7f800000, expm)
	set(0x7fffffff, absm)
	set(0x7f800000, inf)
	set(0x00400000, quiet)
	set(0x80000000, sign)
	SHRQ(U8(3), n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	b, t, r, m := y(0), y(1), y(2), y(3)
	VMOVDQU(Mem{Base: x}, b)
	VPSRLD(U8(16), b, t)
	VPAND(one, t, t)
	VPADDD(bias, t, t)
	VPADDD(b, t, t)
	VPAND(hi, t, r) // rounded (finite and infinite inputs)
	// NaN: |b| > 0x7f800000 (signed compare is right for |b| ≤ 0x7fffffff)
	VPAND(absm, b, t)
	VPCMPGTD(inf, t, m)
	VPAND(hi, b, t)
	VPOR(quiet, t, t)
	VPBLENDVB(m, t, r, r)
	// zero or subnormal: exponent bits 0
	VPAND(expm, b, t)
	VPXOR(m, m, m)
	VPCMPEQD(m, t, m)
	VPAND(sign, b, t)
	VPBLENDVB(m, t, r, r)
	VMOVDQU(r, Mem{Base: x})
	ADDQ(U8(32), x)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	ret()
}

// gemmRoundBF16Z emits gemmRoundBF16AVX512(x, n): gemmRoundBF16 with ZMM
// registers and K masks, n a multiple of 16: the NaN and zero/subnormal
// lanes are found by VPCMPGTD and VPTESTNMD into K1, K2 and merged by
// masked moves (asm's BF16Bits, bitwise).
func gemmRoundBF16Z() {
	name := "gemmRoundBF16AVX512"
	implement(name, name+" rounds the n floats at x (n a multiple of 16) to bfloat16 in place.")
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	z := avx512.phys
	one, bias, hi, absm, inf, quiet, expm, sign := z(8), z(9), z(10), z(11), z(12), z(13), z(14), z(15)
	c := GP32()
	set := func(v uint32, r reg.VecPhysical) {
		MOVL(U32(v), c)
		VPBROADCASTD(c, r)
	}
	set(1, one)
	set(0x7fff, bias)
	set(0xffff0000, hi)
	set(0x7fffffff, absm)
	set(0x7f800000, inf)
	set(0x00400000, quiet)
	set(0x7f800000, expm)
	set(0x80000000, sign)
	SHRQ(U8(4), n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	b, t, r := z(0), z(1), z(2)
	nan, tiny := reg.K1, reg.K2
	VMOVDQU32(Mem{Base: x}, b)
	VPSRLD(U8(16), b, t)
	VPANDD(one, t, t)
	VPADDD(bias, t, t)
	VPADDD(b, t, t)
	VPANDD(hi, t, r) // rounded (finite and infinite inputs)
	VPANDD(absm, b, t)
	VPCMPGTD(inf, t, nan)    // |b| > 0x7f800000: NaN
	VPTESTNMD(expm, b, tiny) // exponent bits 0: zero or subnormal
	VPANDD(hi, b, t)
	VPORD(quiet, t, t)
	VMOVDQA32(t, nan, r)
	VPANDD(sign, b, t)
	VMOVDQA32(t, tiny, r)
	VMOVDQU32(r, Mem{Base: x})
	ADDQ(U8(64), x)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	ret()
}
