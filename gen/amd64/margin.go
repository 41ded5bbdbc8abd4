package main

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/internal/kconst"
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["margin"] = margin }

// margin emits marginForwardAVX2 and marginForwardAVX512, the bodies of
// asm.MarginForward. Both read the float32 constants of asm.marginParams
// (never float64) and implement the same algorithm; the Go helpers below
// (acos, sincos, the kinds) are written once and emitted for each ISA.
func margin() {
	tab := newConstTable("marginConst", marginConsts()...)
	for _, s := range isas {
		marginBody(newEmitter("marginForward", s, tab))
		marginRowsBody(newEmitter("marginRows", s, tab))
	}
}

// marginConsts lists the vector constants: the Cephes polynomials and the
// Cody–Waite split of π/2 from their one source, internal/kconst.
func marginConsts() []vecConst {
	cw1, cw2 := kconst.CodyWaitePio2()
	return []vecConst{
		splatF("one", 1), splatF("negone", -1), splatF("half", 0.5), splatF("two", 2),
		splat("sign", 0x80000000), splat("abs", 0x7fffffff), splat("int1", 1),
		splatF("pio2", math.Pi/2), splatF("pi", math.Pi), splatF("twoopi", 2/math.Pi),
		splat("cw1", cw1), splat("cw2", cw2),
		splatF("asin4", kconst.Asin4), splatF("asin3", kconst.Asin3), splatF("asin2", kconst.Asin2),
		splatF("asin1", kconst.Asin1), splatF("asin0", kconst.Asin0),
		splatF("sin2", kconst.Sin2), splatF("sin1", kconst.Sin1), splatF("sin0", kconst.Sin0),
		splatF("cos2", kconst.Cos2), splatF("cos1", kconst.Cos1), splatF("cos0", kconst.Cos0),
		iotaConst(),
	}
}

// param broadcasts the float32 field of the params argument p.
func (e *emitter) param(field string, index ...int) reg.VecVirtual {
	c := Param("p").Field(field)
	for _, i := range index {
		c = c.Index(i)
	}
	return e.broadcast(c)
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
func (e *emitter) acos(t reg.VecVirtual) reg.VecVirtual {
	a := e.and(t, e.c("abs"))
	big := e.cmp(cmpGTOQ, a, e.c("half"))
	zb := e.constReg("one")
	VSUBPS(a, zb, zb)           // 1 − |t|, exact for |t| ≥ 1/2
	VMULPS(e.c("half"), zb, zb) // (1 − |t|)/2, exact
	zs := e.mul(t, t)
	z := e.blend(big, zs, zb)
	s := e.blend(big, t, e.sqrt(z))
	p := e.poly(z, "asin4", "asin3", "asin2", "asin1", "asin0")
	r := e.mul(s, z)
	VFMADD213PS(s, p, r) // r = asin s = s·z·P(z) + s

	// M = −1 (small) or ±2 (big, sign of t); B = π/2 (small), 0 or π (big)
	m2 := e.and(t, e.c("sign"))
	VORPS(e.c("two"), m2, m2)
	m := e.blend(big, e.constReg("negone"), m2)
	neg := e.vec()
	VPSRAD(Imm(31), t, neg)
	VANDPS(e.c("pi"), neg, neg)
	b := e.blend(big, e.constReg("pio2"), neg)
	VFMADD213PS(b, r, m) // θ = M·r + B, one rounding
	return m
}

// sincos returns sin a and cos a. a is reduced by π/2 with a two-part
// Cody–Waite constant: with FMA, r = a − q·p1 is exact (q·p1 and a are
// multiples of 2⁻²⁴ near each other), and r − q·p2 rounds once, so r is
// within u|r| of a − q·π/2, in [−π/4, π/4] up to the rounding of q. Then the
// Cephes minimax polynomials and the quadrant's swap and signs. NaN gives
// NaN.
func (e *emitter) sincos(a reg.VecVirtual) (sinA, cosA reg.VecVirtual) {
	y := e.mul(a, e.c("twoopi"))
	qi := e.vec()
	VCVTPS2DQ(y, qi) // round to nearest (MXCSR default)
	q := e.vec()
	VCVTDQ2PS(qi, q)
	r := e.vec()
	VMOVAPS(a, r)
	VFNMADD231PS(e.c("cw1"), q, r) // r −= q·p1 (exact)
	VFNMADD231PS(e.c("cw2"), q, r) // r −= q·p2 (one rounding)
	z := e.mul(r, r)

	sr := e.mul(r, z)
	VFMADD213PS(r, e.poly(z, "sin2", "sin1", "sin0"), sr) // sin r = r·z·S(z) + r

	pc := e.poly(z, "cos2", "cos1", "cos0")
	z2 := e.mul(z, z)
	cr := e.mul(z, e.c("half"))
	VFMSUB231PS(pc, z2, cr)    // z²·C(z) − z/2
	VADDPS(e.c("one"), cr, cr) // cos r

	// quadrant j = q mod 4: sin a = (s, c, −s, −c)[j], cos a = (c, −s, −c, s)[j]
	odd := e.oddMask(qi)
	sinA = e.blend(odd, sr, cr)
	cosA = e.blend(odd, cr, sr)
	sgn := e.vec()
	VPSLLD(Imm(30), qi, sgn) // bit 1 of j to the sign bit
	VANDPS(e.c("sign"), sgn, sgn)
	VXORPS(sgn, sinA, sinA)
	VPADDD(e.c("int1"), qi, sgn)
	VPSLLD(Imm(30), sgn, sgn) // bit 1 of j+1
	VANDPS(e.c("sign"), sgn, sgn)
	VXORPS(sgn, cosA, cosA)
	return sinA, cosA
}

// sinTheta returns sqrt(1 − t²); the FMA rounds 1 − t² once.
func (e *emitter) sinTheta(t reg.VecVirtual) reg.VecVirtual {
	s2 := e.constReg("one")
	VFNMADD231PS(t, t, s2)
	VSQRTPS(s2, s2)
	return s2
}

// clampMask is the lanes where φ′ clamps t (|t| > 1 − ClampEps).
func (e *emitter) clampMask(t reg.VecVirtual) *mask {
	return e.cmp(cmpGTOQ, e.and(t, e.c("abs")), e.param("clampTh"))
}

// ---------------------------------------------------------------------------
// Kinds. Each returns φ and a function that emits φ′ (called only when dphi
// is non-nil; it may use the registers computed for φ).

type kindFunc func(t reg.VecVirtual) (phi reg.VecVirtual, deriv func() reg.VecVirtual)

// arc: φ = t·cosM − sinθ·sinM if t > th, else t − sub;
// φ′ = cosM + t̃·sinM/sin θ̃ if t > th, else 1.
func (e *emitter) arc(t reg.VecVirtual) (reg.VecVirtual, func() reg.VecVirtual) {
	st := e.sinTheta(t)
	q := e.mul(st, e.param("sinM"))
	arc := e.param("cosM")
	VFMSUB213PS(q, t, arc) // t·cosM − sinθ·sinM
	fb := e.sub(t, e.param("sub"))
	hit := e.cmp(cmpGTOQ, t, e.param("th"))
	phi := e.blend(hit, fb, arc)
	return phi, func() reg.VecVirtual {
		cl := e.clampMask(t)
		tc := e.and(t, e.c("sign"))
		VORPS(e.param("clampT"), tc, tc) // ±(1 − ClampEps)
		td := e.blend(cl, t, tc)
		e.blendInto(cl, st, e.param("clampSin"))
		d := e.mul(td, e.param("sinM"))
		VDIVPS(st, d, d)
		VADDPS(e.param("cosM"), d, d)
		return e.blend(hit, e.constReg("one"), d)
	}
}

// combined: φ = cos(m1·θ + m2) − m3; φ′ = m1·sin(m1·θ̃ + m2)/sin θ̃.
// θ̃ differs from θ only in the lanes that φ′ clamps (|t| > 1 − ClampEps);
// when a vector has such a lane (rare) sin is evaluated a second time.
func (e *emitter) combined(t reg.VecVirtual) (reg.VecVirtual, func() reg.VecVirtual) {
	theta := e.acos(t)
	a := e.param("m2")
	VFMADD231PS(theta, e.param("m1"), a) // m1·θ + m2
	sinA, cosA := e.sincos(a)
	phi := e.sub(cosA, e.param("m3"))
	return phi, func() reg.VecVirtual {
		st := e.sinTheta(t)
		cl := e.clampMask(t)
		done := e.label("combined_unclamped")
		e.jumpIfNone(cl, done)
		thc := e.blend(e.signMask(t), e.param("clampTheta0"), e.param("clampThetaPi"))
		thd := e.blend(cl, theta, thc)
		ac := e.param("m2")
		VFMADD231PS(thd, e.param("m1"), ac)
		sinC, _ := e.sincos(ac)
		e.blendInto(cl, sinA, sinC)
		e.blendInto(cl, st, e.param("clampSin"))
		Label(done)
		d := e.mul(sinA, e.param("m1"))
		VDIVPS(st, d, d)
		return d
	}
}

// psi: k = #{j : t ≤ kthr[j]}; T_m and U_{m−1} by the Chebyshev
// recurrences X_{j+1} = 2t·X_j − X_{j−1} (one FMA each), started from
// (T_{−1}, T_0) = (t, 1) and (U_{−1}, U_0) = (0, 1) so that m − 1 joint
// steps and a last T step serve every m ≥ 1;
// φ = a·t + b·((−1)^k·T_m − 2k), φ′ = a + bm·(−1)^k·U_{m−1}.
func (e *emitter) psi(t reg.VecVirtual) (reg.VecVirtual, func() reg.VecVirtual) {
	k := e.vec()
	VXORPS(k, k, k)
	for j := 0; j < 8; j++ {
		le := e.cmp(cmpLEOQ, t, e.param("kthr", j))
		if e.z {
			VPADDD(e.c("int1"), k, le.k, k)
		} else {
			VPSUBD(le.y, k, k) // all ones is −1
		}
	}
	tt := e.add(t, t)
	t0, t1 := e.vec(), e.constReg("one")
	VMOVAPS(t, t0)
	u0, u1 := e.vec(), e.constReg("one")
	VXORPS(u0, u0, u0)
	n := Load(Param("p").Field("m"), GP32())
	DECL(n)
	loop, done := e.label("psi_cheb"), e.label("psi_chebdone")
	Label(loop)
	TESTL(n, n)
	JZ(LabelRef(done))
	tmp := e.vec()
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

	sgn := e.vec()
	VPSLLD(Imm(31), k, sgn) // (−1)^k as a sign bit
	VXORPS(sgn, t1, t1)
	kf := e.vec()
	VCVTDQ2PS(k, kf)
	VFNMADD231PS(e.c("two"), kf, t1) // ψ = ±T_m − 2k
	VMULPS(e.param("b"), t1, t1)
	VFMADD231PS(t, e.param("a"), t1) // a·t + b·ψ
	return t1, func() reg.VecVirtual {
		VXORPS(sgn, u1, u1)
		d := e.param("a")
		VFMADD231PS(u1, e.param("bm"), d) // a + bm·(±U_{m−1})
		return d
	}
}

// ---------------------------------------------------------------------------
// The body: dispatch on p.body, then one loop per kind.

func marginBody(e *emitter) {
	e.implement("is the %s body of MarginForward: φ and, when dphi is non-nil, φ′ of",
		"each t[i], from the float32 constants in p. len(phi) and a non-nil len(dphi) are ≥ len(t).")
	body := Load(Param("p").Field("body"), GP32())
	CMPL(body, Imm(kconst.MarginBodyCombined))
	JE(LabelRef(e.label("combined_start")))
	CMPL(body, Imm(kconst.MarginBodyPsi))
	JE(LabelRef(e.label("psi_start")))
	e.marginLoop("arc", e.arc)
	Label(e.label("combined_start"))
	e.marginLoop("combined", e.combined)
	Label(e.label("psi_start"))
	e.marginLoop("psi", e.psi)
}

// marginLoop runs kind over t one vector at a time (the kinds are too long
// to emit more than once per loop), then returns.
func (e *emitter) marginLoop(kind string, f kindFunc) {
	tp := Load(Param("t").Base(), GP64())
	n := Load(Param("t").Len(), GP64())
	pp := Load(Param("phi").Base(), GP64())
	dp := Load(Param("dphi").Base(), GP64())
	e.loop(kind, n, tp, func(t reg.VecVirtual, it *iter) {
		// t = min(1, max(−1, t)) with t as the second source, so NaN stays NaN
		lo := e.constReg("negone")
		VMAXPS(t, lo, lo)
		tc := e.constReg("one")
		VMINPS(lo, tc, tc)

		phi, deriv := f(tc)
		it.store(phi, pp, "phi")
		TESTQ(dp, dp)
		JZ(LabelRef(it.next))
		it.store(deriv(), dp, "dphi")
	})
	ret()
}

// ---------------------------------------------------------------------------
// MarginForward's per-row form: the row body, its constants read per row.

// marginRowsBody is the row body of asm/margin_rows.go (rowConsts): with t
// clamped to [−1, 1],
//
//	t > hi:      φ = cHi,                        φ′ = 0
//	t > lo:      φ = t·cosM − sin θ·sinM − off,  φ′ = cosM + t̃·sinM/sin θ̃
//	otherwise:   φ = slope·t + icept,            φ′ = slope
//
// every constant read per row from its slice, the clamp constants from
// scalar arguments. The slices' bases are loaded where each is read, so
// that the loop holds few general registers.
func marginRowsBody(e *emitter) {
	e.implement("is the %s row body of MarginForward's per-row form: φ and, when dphi is non-nil,",
		"φ′ of each t[i] under row i's constants (asm's rowConsts). phi, a non-nil dphi and the constant slices are ≥ len(t).")
	tp := Load(Param("t").Base(), GP64())
	n := Load(Param("t").Len(), GP64())
	e.loop("rows", n, tp, func(t reg.VecVirtual, it *iter) {
		reads := map[string]int{}
		row := func(name string) reg.VecVirtual {
			reads[name]++
			return it.load(Load(Param(name).Base(), GP64()), fmt.Sprintf("%s%d", name, reads[name]))
		}
		lo := e.constReg("negone")
		VMAXPS(t, lo, lo)
		tc := e.constReg("one")
		VMINPS(lo, tc, tc)

		sinM := row("sinM")
		st := e.sinTheta(tc)
		q := e.mul(st, sinM)
		arc := row("cosM")
		VFMSUB213PS(q, tc, arc) // t·cosM − sinθ·sinM
		VSUBPS(row("off"), arc, arc)
		fb := row("icept")
		VFMADD231PS(tc, row("slope"), fb) // slope·t + icept, one rounding
		hit := e.cmp(cmpGTOQ, tc, row("lo"))
		phi := e.blend(hit, fb, arc)
		top := e.cmp(cmpGTOQ, tc, row("hi"))
		e.blendInto(top, phi, row("cHi"))
		it.store(phi, Load(Param("phi").Base(), GP64()), "phi")
		dp := Load(Param("dphi").Base(), GP64())
		TESTQ(dp, dp)
		JZ(LabelRef(it.next))
		cl := e.cmp(cmpGTOQ, e.and(tc, e.c("abs")), e.broadcast(Param("clampTh")))
		sg := e.and(tc, e.c("sign"))
		VORPS(e.broadcast(Param("clampT")), sg, sg) // ±(1 − ClampEps)
		td := e.blend(cl, tc, sg)
		e.blendInto(cl, st, e.broadcast(Param("clampSin")))
		d := e.mul(td, sinM)
		VDIVPS(st, d, d)
		VADDPS(row("cosM"), d, d)
		d = e.blend(hit, row("slope"), d)
		zero := e.vec()
		VXORPS(zero, zero, zero)
		e.blendInto(top, d, zero)
		it.store(d, dp, "dphi")
	})
	ret()
}
