package main

import (
	"fmt"
	"math"
	"math/big"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["margin"] = margin }

// The body numbers of asm's marginParams.body (asm/margin.go).
const (
	marginBodyCombined = 2
	marginBodyPsi      = 3
)

// VCMPPS predicates (ordered, quiet: false when either operand is NaN).
const (
	cmpLEOQ = 0x12
	cmpGTOQ = 0x1e
)

// margin emits marginForwardAVX2 and marginForwardAVX512, the bodies of
// asm.MarginForward. Both read the float32 constants of asm.marginParams
// (never float64) and implement the same algorithm; the Go helpers below
// (acos, sincos, poly, loop) are written once and emitted for each ISA.
func margin() {
	tab := marginConstTable()
	for _, g := range []*mgen{
		{isa: "AVX2", lanes: 8, tab: tab},
		{isa: "AVX512", lanes: 16, z: true, tab: tab},
	} {
		g.body()
	}
}

// ---------------------------------------------------------------------------
// Constants

// marginConsts lists the vector constants. Each occupies 64 bytes (16
// copies), so both a 256-bit and a 512-bit memory operand read it whole.
var marginConsts = func() []struct {
	name string
	bits [16]uint32
} {
	f := func(x float64) uint32 { return math.Float32bits(float32(x)) }
	cw1, cw2 := codyWaitePio2()
	scalar := []struct {
		name string
		bits uint32
	}{
		{"one", f(1)}, {"negone", f(-1)}, {"half", f(0.5)}, {"two", f(2)},
		{"sign", 0x80000000}, {"abs", 0x7fffffff}, {"int1", 1},
		{"pio2", f(math.Pi / 2)}, {"pi", f(math.Pi)}, {"twoopi", f(2 / math.Pi)},
		{"cw1", cw1}, {"cw2", cw2},
		// Cephes asinf: asin x = x + x·z·P(z), z = x², |x| ≤ 0.5
		{"asin4", f(4.2163199048e-2)}, {"asin3", f(2.4181311049e-2)}, {"asin2", f(4.5470025998e-2)},
		{"asin1", f(7.4953002686e-2)}, {"asin0", f(1.6666752422e-1)},
		// Cephes sinf: sin r = r + r·z·S(z), z = r², |r| ≤ π/4
		{"sin2", f(-1.9515295891e-4)}, {"sin1", f(8.3321608736e-3)}, {"sin0", f(-1.6666654611e-1)},
		// Cephes cosf: cos r = 1 − z/2 + z²·C(z)
		{"cos2", f(2.443315711809948e-5)}, {"cos1", f(-1.388731625493765e-3)}, {"cos0", f(4.166664568298827e-2)},
	}
	out := make([]struct {
		name string
		bits [16]uint32
	}, 0, len(scalar)+1)
	for _, c := range scalar {
		var b [16]uint32
		for i := range b {
			b[i] = c.bits
		}
		out = append(out, struct {
			name string
			bits [16]uint32
		}{c.name, b})
	}
	var lane [16]uint32 // lane indices, for tail masks
	for i := range lane {
		lane[i] = uint32(i)
	}
	return append(out, struct {
		name string
		bits [16]uint32
	}{"iota", lane})
}()

// codyWaitePio2 splits π/2 into float32 parts p1 + p2: p1 the nearest
// float32, p2 the nearest float32 to π/2 − p1 (from π to 60 digits). What
// is left, |π/2 − p1 − p2| < 1.3e-15, times the quadrant (< 2¹⁷ for
// |m1| ≤ 2¹⁶) stays below 0.01 float32 roundings of |r| ≥ 2⁻⁸, and is far
// below the 4u absolute error allowed for sin and cos; a third part would
// change nothing.
func codyWaitePio2() (p1, p2 uint32) {
	pio2, _, err := big.ParseFloat("1.570796326794896619231321691639751442098584699687552910487", 10, 256, big.ToNearestEven)
	if err != nil {
		panic(err)
	}
	rest := new(big.Float).SetPrec(256).Set(pio2)
	var parts [2]uint32
	for i := range parts {
		f, _ := rest.Float32()
		parts[i] = math.Float32bits(f)
		rest.Sub(rest, new(big.Float).SetFloat64(float64(f)))
	}
	return parts[0], parts[1]
}

type constTable struct {
	base Mem
	off  map[string]int
}

func marginConstTable() constTable {
	t := constTable{base: GLOBL("marginConst", RODATA|NOPTR), off: map[string]int{}}
	for i, c := range marginConsts {
		t.off[c.name] = 64 * i
		for j, b := range c.bits {
			DATA(64*i+4*j, U32(b))
		}
	}
	return t
}

// ---------------------------------------------------------------------------
// ISA abstraction

// mgen emits one ISA's body. AVX2 masks are vectors (sign bit or all ones
// per lane); AVX-512 masks are K registers.
type mgen struct {
	isa   string
	lanes int
	z     bool
	tab   constTable
	buf   Mem // AVX2: 32 bytes of stack for the partial last vector
}

type vmask struct {
	y reg.VecVirtual    // AVX2
	k reg.OpmaskVirtual // AVX-512
}

func (g *mgen) vec() reg.VecVirtual {
	if g.z {
		return ZMM()
	}
	return YMM()
}

func (g *mgen) label(kind, s string) string { return "margin" + g.isa + "_" + kind + "_" + s }

// c is the memory operand of a vector constant.
func (g *mgen) c(name string) Mem {
	off, ok := g.tab.off[name]
	if !ok {
		panic("margin: no constant " + name)
	}
	return g.tab.base.Offset(off)
}

// load returns a register holding constant name.
func (g *mgen) load(name string) reg.VecVirtual {
	v := g.vec()
	VMOVUPS(g.c(name), v)
	return v
}

// param broadcasts the float32 field of the params argument p.
func (g *mgen) param(field string, index ...int) reg.VecVirtual {
	c := Param("p").Field(field)
	for _, i := range index {
		c = c.Index(i)
	}
	b, err := c.Resolve()
	if err != nil {
		// Implement found no signature: package asm must type-check
		panic(fmt.Sprintf("margin: parameter p.%s: %v (does package asm build?)", field, err))
	}
	v := g.vec()
	VBROADCASTSS(b.Addr, v)
	return v
}

func (g *mgen) op3(f func(...Op), x Op, y Op) reg.VecVirtual {
	d := g.vec()
	f(y, x, d)
	return d
}

func (g *mgen) add(x, y Op) reg.VecVirtual { return g.op3(VADDPS, x, y) } // x + y
func (g *mgen) sub(x, y Op) reg.VecVirtual { return g.op3(VSUBPS, x, y) } // x − y
func (g *mgen) mul(x, y Op) reg.VecVirtual { return g.op3(VMULPS, x, y) } // x · y
func (g *mgen) and(x, y Op) reg.VecVirtual { return g.op3(VANDPS, x, y) } // x & y

func (g *mgen) sqrt(x Op) reg.VecVirtual {
	d := g.vec()
	VSQRTPS(x, d)
	return d
}

// cmp returns the lanes where x pred y.
func (g *mgen) cmp(pred uint8, x reg.VecVirtual, y Op) vmask {
	if g.z {
		k := K()
		VCMPPS(Imm(uint64(pred)), y, x, k)
		return vmask{k: k}
	}
	m := YMM()
	VCMPPS(Imm(uint64(pred)), y, x, m)
	return vmask{y: m}
}

// signMask is the lanes of x with the sign bit set.
func (g *mgen) signMask(x reg.VecVirtual) vmask {
	if g.z {
		k := K()
		VPMOVD2M(x, k)
		return vmask{k: k}
	}
	return vmask{y: x} // VBLENDVPS reads the sign bit only
}

// oddMask is the lanes where the int32 x is odd.
func (g *mgen) oddMask(x reg.VecVirtual) vmask {
	if g.z {
		k := K()
		VPTESTMD(g.c("int1"), x, k)
		return vmask{k: k}
	}
	m := YMM()
	VPSLLD(Imm(31), x, m)
	return vmask{y: m}
}

// blend returns m ? t : f; t may be a memory operand, f must be a register.
func (g *mgen) blend(m vmask, f reg.VecVirtual, t Op) reg.VecVirtual {
	d := g.vec()
	if g.z {
		VBLENDMPS(t, f, m.k, d)
	} else {
		VBLENDVPS(m.y, t, f, d)
	}
	return d
}

// blendInto sets dst = m ? t : dst.
func (g *mgen) blendInto(m vmask, dst reg.VecVirtual, t Op) {
	if g.z {
		VBLENDMPS(t, dst, m.k, dst)
	} else {
		VBLENDVPS(m.y, t, dst, dst)
	}
}

// jumpIfNone jumps to label when no lane of m is set.
func (g *mgen) jumpIfNone(m vmask, label string) {
	if g.z {
		KORTESTW(m.k, m.k)
	} else {
		r := GP32()
		VMOVMSKPS(m.y, r)
		TESTL(r, r)
	}
	JZ(LabelRef(label))
}

// poly evaluates, by Horner's rule, c[0]·z^(n−1) + … + c[n−1].
func (g *mgen) poly(z reg.VecVirtual, c ...string) reg.VecVirtual {
	p := g.load(c[0])
	for _, name := range c[1:] {
		VFMADD213PS(g.c(name), z, p) // p = p·z + c
	}
	return p
}

// ---------------------------------------------------------------------------
// Math, emitted for both ISAs

// acos returns θ = acos t for t in [−1, 1] (NaN gives NaN), within about
// 3 float32 rounding errors of θ (asm/margin.go's errorBound derivation):
//
//	|t| ≤ 1/2:  θ = π/2 − asin t
//	t > 1/2:    θ = 2·asin s,       s = sqrt((1−t)/2)
//	t < −1/2:   θ = π − 2·asin s,   s = sqrt((1+t)/2)
//
// asin x = x + x·z·P(z) with z = x² or (1−|t|)/2 (exact), both ≤ 1/4.
// The three cases are one fused θ = M·asin s + B with (M, B) chosen per lane.
func (g *mgen) acos(t reg.VecVirtual) reg.VecVirtual {
	a := g.and(t, g.c("abs"))
	big := g.cmp(cmpGTOQ, a, g.c("half"))
	zb := g.load("one")
	VSUBPS(a, zb, zb)           // 1 − |t|, exact for |t| ≥ 1/2
	VMULPS(g.c("half"), zb, zb) // (1 − |t|)/2, exact
	zs := g.mul(t, t)
	z := g.blend(big, zs, zb)
	s := g.blend(big, t, g.sqrt(z))
	p := g.poly(z, "asin4", "asin3", "asin2", "asin1", "asin0")
	r := g.mul(s, z)
	VFMADD213PS(s, p, r) // r = asin s = s·z·P(z) + s

	// M = −1 (small) or ±2 (big, sign of t); B = π/2 (small), 0 or π (big)
	m2 := g.and(t, g.c("sign"))
	VORPS(g.c("two"), m2, m2)
	m := g.blend(big, g.load("negone"), m2)
	neg := g.vec()
	VPSRAD(Imm(31), t, neg)
	VANDPS(g.c("pi"), neg, neg)
	b := g.blend(big, g.load("pio2"), neg)
	VFMADD213PS(b, r, m) // θ = M·r + B, one rounding
	return m
}

// sincos returns sin a and cos a. a is reduced by π/2 with a two-part
// Cody–Waite constant: with FMA, r = a − q·p1 is exact (q·p1 and a are
// multiples of 2⁻²⁴ near each other), and r − q·p2 rounds once, so r is
// within u|r| of a − q·π/2, in [−π/4, π/4] up to the rounding of q. Then the
// Cephes minimax polynomials and the quadrant's swap and signs. NaN gives
// NaN.
func (g *mgen) sincos(a reg.VecVirtual) (sinA, cosA reg.VecVirtual) {
	y := g.mul(a, g.c("twoopi"))
	qi := g.vec()
	VCVTPS2DQ(y, qi) // round to nearest (MXCSR default)
	q := g.vec()
	VCVTDQ2PS(qi, q)
	r := g.vec()
	VMOVAPS(a, r)
	VFNMADD231PS(g.c("cw1"), q, r) // r −= q·p1 (exact)
	VFNMADD231PS(g.c("cw2"), q, r) // r −= q·p2 (one rounding)
	z := g.mul(r, r)

	sr := g.mul(r, z)
	VFMADD213PS(r, g.poly(z, "sin2", "sin1", "sin0"), sr) // sin r = r·z·S(z) + r

	pc := g.poly(z, "cos2", "cos1", "cos0")
	z2 := g.mul(z, z)
	cr := g.mul(z, g.c("half"))
	VFMSUB231PS(pc, z2, cr)    // z²·C(z) − z/2
	VADDPS(g.c("one"), cr, cr) // cos r

	// quadrant j = q mod 4: sin a = (s, c, −s, −c)[j], cos a = (c, −s, −c, s)[j]
	odd := g.oddMask(qi)
	sinA = g.blend(odd, sr, cr)
	cosA = g.blend(odd, cr, sr)
	sgn := g.vec()
	VPSLLD(Imm(30), qi, sgn) // bit 1 of j to the sign bit
	VANDPS(g.c("sign"), sgn, sgn)
	VXORPS(sgn, sinA, sinA)
	VPADDD(g.c("int1"), qi, sgn)
	VPSLLD(Imm(30), sgn, sgn) // bit 1 of j+1
	VANDPS(g.c("sign"), sgn, sgn)
	VXORPS(sgn, cosA, cosA)
	return sinA, cosA
}

// sinTheta returns sqrt(1 − t²); the FMA rounds 1 − t² once.
func (g *mgen) sinTheta(t reg.VecVirtual) reg.VecVirtual {
	s2 := g.load("one")
	VFNMADD231PS(t, t, s2)
	VSQRTPS(s2, s2)
	return s2
}

// clampMask is the lanes where φ′ clamps t (|t| > 1 − ClampEps).
func (g *mgen) clampMask(t reg.VecVirtual) vmask {
	return g.cmp(cmpGTOQ, g.and(t, g.c("abs")), g.param("clampTh"))
}

// ---------------------------------------------------------------------------
// Kinds. Each returns φ and a function that emits φ′ (called only when dphi
// is non-nil; it may use the registers computed for φ).

type kindFunc func(t reg.VecVirtual) (phi reg.VecVirtual, deriv func() reg.VecVirtual)

// arc: φ = t·cosM − sinθ·sinM if t > th, else t − sub;
// φ′ = cosM + t̃·sinM/sin θ̃ if t > th, else 1.
func (g *mgen) arc(t reg.VecVirtual) (reg.VecVirtual, func() reg.VecVirtual) {
	st := g.sinTheta(t)
	q := g.mul(st, g.param("sinM"))
	arc := g.param("cosM")
	VFMSUB213PS(q, t, arc) // t·cosM − sinθ·sinM
	fb := g.sub(t, g.param("sub"))
	hit := g.cmp(cmpGTOQ, t, g.param("th"))
	phi := g.blend(hit, fb, arc)
	return phi, func() reg.VecVirtual {
		cl := g.clampMask(t)
		tc := g.and(t, g.c("sign"))
		VORPS(g.param("clampT"), tc, tc) // ±(1 − ClampEps)
		td := g.blend(cl, t, tc)
		g.blendInto(cl, st, g.param("clampSin"))
		d := g.mul(td, g.param("sinM"))
		VDIVPS(st, d, d)
		VADDPS(g.param("cosM"), d, d)
		return g.blend(hit, g.load("one"), d)
	}
}

// combined: φ = cos(m1·θ + m2) − m3; φ′ = m1·sin(m1·θ̃ + m2)/sin θ̃.
// θ̃ differs from θ only in the lanes that φ′ clamps (|t| > 1 − ClampEps);
// when a vector has such a lane (rare) sin is evaluated a second time.
func (g *mgen) combined(t reg.VecVirtual) (reg.VecVirtual, func() reg.VecVirtual) {
	theta := g.acos(t)
	a := g.param("m2")
	VFMADD231PS(theta, g.param("m1"), a) // m1·θ + m2
	sinA, cosA := g.sincos(a)
	phi := g.sub(cosA, g.param("m3"))
	return phi, func() reg.VecVirtual {
		st := g.sinTheta(t)
		cl := g.clampMask(t)
		done := g.label("combined", "unclamped")
		g.jumpIfNone(cl, done)
		thc := g.blend(g.signMask(t), g.param("clampTheta0"), g.param("clampThetaPi"))
		thd := g.blend(cl, theta, thc)
		ac := g.param("m2")
		VFMADD231PS(thd, g.param("m1"), ac)
		sinC, _ := g.sincos(ac)
		g.blendInto(cl, sinA, sinC)
		g.blendInto(cl, st, g.param("clampSin"))
		Label(done)
		d := g.mul(sinA, g.param("m1"))
		VDIVPS(st, d, d)
		return d
	}
}

// psi: k = #{j : t ≤ kthr[j]}; T_m and U_{m−1} by the Chebyshev
// recurrences X_{j+1} = 2t·X_j − X_{j−1} (one FMA each), started from
// (T_{−1}, T_0) = (t, 1) and (U_{−1}, U_0) = (0, 1) so that m − 1 joint
// steps and a last T step serve every m ≥ 1;
// φ = a·t + b·((−1)^k·T_m − 2k), φ′ = a + bm·(−1)^k·U_{m−1}.
func (g *mgen) psi(t reg.VecVirtual) (reg.VecVirtual, func() reg.VecVirtual) {
	k := g.vec()
	VXORPS(k, k, k)
	for j := 0; j < 8; j++ {
		le := g.cmp(cmpLEOQ, t, g.param("kthr", j))
		if g.z {
			VPADDD(g.c("int1"), k, le.k, k)
		} else {
			VPSUBD(le.y, k, k) // all ones is −1
		}
	}
	tt := g.add(t, t)
	t0, t1 := g.vec(), g.load("one")
	VMOVAPS(t, t0)
	u0, u1 := g.vec(), g.load("one")
	VXORPS(u0, u0, u0)
	n := Load(Param("p").Field("m"), GP32())
	DECL(n)
	loop, done := g.label("psi", "cheb"), g.label("psi", "chebdone")
	Label(loop)
	TESTL(n, n)
	JZ(LabelRef(done))
	tmp := g.vec()
	VMOVAPS(t1, tmp)
	VFMSUB213PS(t0, tt, t1) // T_{j+1} = 2t·T_j − T_{j−1}
	VMOVAPS(tmp, t0)
	VMOVAPS(u1, tmp)
	VFMSUB213PS(u0, tt, u1) // U_{j+1}
	VMOVAPS(tmp, u0)
	DECL(n)
	JMP(LabelRef(loop))
	Label(done)
	VFMSUB213PS(t0, tt, t1) // T_m

	sgn := g.vec()
	VPSLLD(Imm(31), k, sgn) // (−1)^k as a sign bit
	VXORPS(sgn, t1, t1)
	kf := g.vec()
	VCVTDQ2PS(k, kf)
	VFNMADD231PS(g.c("two"), kf, t1) // ψ = ±T_m − 2k
	VMULPS(g.param("b"), t1, t1)
	VFMADD231PS(t, g.param("a"), t1) // a·t + b·ψ
	return t1, func() reg.VecVirtual {
		VXORPS(sgn, u1, u1)
		d := g.param("a")
		VFMADD231PS(u1, g.param("bm"), d) // a + bm·(±U_{m−1})
		return d
	}
}

// ---------------------------------------------------------------------------
// The body: dispatch on p.body, then one loop per kind.

func (g *mgen) body() {
	name := "marginForward" + g.isa
	Implement(name)
	Attributes(NOSPLIT)
	Doc(fmt.Sprintf("%s is the %s body of MarginForward: φ and, when dphi is non-nil, φ′ of", name, g.isa),
		"each t[i], from the float32 constants in p. len(phi) and a non-nil len(dphi) are ≥ len(t).")
	if !g.z {
		g.buf = AllocLocal(32) // the AVX2 tail buffer
	}
	body := Load(Param("p").Field("body"), GP32())
	CMPL(body, Imm(marginBodyCombined))
	JE(LabelRef(g.label("combined", "start")))
	CMPL(body, Imm(marginBodyPsi))
	JE(LabelRef(g.label("psi", "start")))
	g.loop("arc", g.arc)
	Label(g.label("combined", "start"))
	g.loop("combined", g.combined)
	Label(g.label("psi", "start"))
	g.loop("psi", g.psi)
}

// loop runs kind over t one vector at a time. No lane outside the slices
// is read or written: AVX-512 loads and stores the last, partial vector with
// a K mask; AVX2 copies it through a 32-byte stack buffer with scalar MOVL.
// (VMASKMOVPS would do on hardware, which suppresses faults on masked-out
// lanes, but qemu's emulation of the masked load reads the whole vector and
// faults at a guard page.)
func (g *mgen) loop(kind string, f kindFunc) {
	L := func(s string) string { return g.label(kind, s) }
	buf := g.buf
	tp := Load(Param("t").Base(), GP64())
	n := Load(Param("t").Len(), GP64())
	pp := Load(Param("phi").Base(), GP64())
	dp := Load(Param("dphi").Base(), GP64())
	i := GP64()
	XORQ(i, i)

	Label(L("loop"))
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JLE(LabelRef(L("done")))
	at := func(p reg.Register) Mem { return Mem{Base: p, Index: i, Scale: 4} }
	t := g.vec()
	var k reg.OpmaskVirtual
	CMPQ(rem, Imm(uint64(g.lanes)))
	JL(LabelRef(L("tailload")))
	if g.z {
		k = K()
		ones := GP32()
		MOVL(U32(0xffff), ones)
		KMOVW(ones, k)
		JMP(LabelRef(L("load")))
		Label(L("tailload"))
		g.tailK(rem, k)
		Label(L("load"))
		VMOVUPS_Z(at(tp), k, t)
	} else {
		VMOVUPS(at(tp), t)
		JMP(LabelRef(L("compute")))
		Label(L("tailload"))
		VXORPS(t, t, t)
		VMOVUPS(t, buf)
		src, dst := GP64(), GP64()
		LEAQ(at(tp), src)
		LEAQ(buf, dst)
		copyFloats(dst, src, rem, L("tailcopy"))
		VMOVUPS(buf, t)
		Label(L("compute"))
	}

	// t = min(1, max(−1, t)) with t as the second source, so NaN stays NaN
	lo := g.load("negone")
	VMAXPS(t, lo, lo)
	tc := g.load("one")
	VMINPS(lo, tc, tc)

	phi, deriv := f(tc)
	g.store(phi, at(pp), rem, k, buf, L("phi"))
	TESTQ(dp, dp)
	JZ(LabelRef(L("next")))
	g.store(deriv(), at(dp), rem, k, buf, L("dphi"))
	Label(L("next"))
	ADDQ(Imm(uint64(g.lanes)), i)
	JMP(LabelRef(L("loop")))

	Label(L("done"))
	VZEROUPPER()
	RET()
}

// copyFloats copies n (≥ 1) float32 from src to dst through a GP register.
func copyFloats(dst, src, n reg.Register, label string) {
	j, x := GP64(), GP32()
	XORQ(j, j)
	Label(label)
	MOVL(Mem{Base: src, Index: j, Scale: 4}, x)
	MOVL(x, Mem{Base: dst, Index: j, Scale: 4})
	INCQ(j)
	CMPQ(j, n)
	JL(LabelRef(label))
}

// tailK sets k to the first rem (< 16) lanes.
func (g *mgen) tailK(rem reg.GPVirtual, k reg.OpmaskVirtual) {
	m := ZMM()
	VPBROADCASTD(rem.As32(), m)
	VPCMPGTD(g.c("iota"), m, k)
}

func (g *mgen) store(v reg.VecVirtual, dst Mem, rem reg.GPVirtual, k reg.OpmaskVirtual, buf Mem, tag string) {
	if g.z {
		VMOVUPS(v, k, dst)
		return
	}
	CMPQ(rem, Imm(uint64(g.lanes)))
	JL(LabelRef(tag + "tail"))
	VMOVUPS(v, dst)
	JMP(LabelRef(tag + "stored"))
	Label(tag + "tail")
	VMOVUPS(v, buf)
	to, from := GP64(), GP64()
	LEAQ(dst, to)
	LEAQ(buf, from)
	copyFloats(to, from, rem, tag+"tailcopy")
	Label(tag + "stored")
}
