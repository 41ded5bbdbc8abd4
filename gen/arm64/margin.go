package main

import (
	"fmt"
	"math"

	"github.com/marginloss/marginloss/internal/kconst"
)

func init() { families["margin"] = margin }

// margin emits marginForwardNEON, the NEON body of asm.MarginForward: the
// algorithm of gen/amd64/margin.go with the same roundings and the same
// fused multiply-adds (asm's errorBound assumes them), four lanes at a
// time. It reads only the float32 constants of asm.marginParams, which it
// takes by value; the polynomials and the Cody–Waite split of π/2 come from
// internal/kconst.
//
// Where amd64 fuses "n·m − d" (VFMSUB), which NEON has no vector form of,
// the body computes d − n·m (fmls) and negates, or tracks the sign (the
// Chebyshev recurrences): rounding to nearest is symmetric, so the result
// is the same bits. Psi runs one loop per m with the recurrences unrolled,
// rather than amd64's loop over m inside each vector; each value they
// produce is the one amd64's produces.
func margin(f *File) {
	t := f.Consts("marginConst")
	marginConsts(t)
	marginBody(f, t)
	marginRowsBody(f, t)
}

// marginConsts adds the body's constants: splats for the vector operands,
// and the polynomial coefficients and reduction constants as lanes of packs
// for the by-element forms, from their one source, internal/kconst, rounded
// as package asm and gen/amd64 round them (float32(c)).
func marginConsts(t *ConstTable) {
	cw1, cw2 := kconst.CodyWaitePio2()
	t.Splat("one", 1)
	t.Splat("negone", -1)
	t.SplatBits("sign", 0x80000000)
	t.Splat("two", 2)
	t.Splat("half", 0.5)
	t.Splat("pi", math.Pi)
	t.Splat("pio2", math.Pi/2)
	t.Pack("asin", C{"asin4", kconst.Asin4}, C{"asin3", kconst.Asin3}, C{"asin2", kconst.Asin2}, C{"asin1", kconst.Asin1})
	t.Pack("reduce", C{"asin0", kconst.Asin0}, C{"twoopi", 2 / math.Pi},
		C{"cw1", math.Float32frombits(cw1)}, C{"cw2", math.Float32frombits(cw2)})
	t.Pack("sinPoly", C{"sin2", kconst.Sin2}, C{"sin1", kconst.Sin1}, C{"sin0", kconst.Sin0})
	t.Pack("cosPoly", C{"cos2", kconst.Cos2}, C{"cos1", kconst.Cos1}, C{"cos0", kconst.Cos0})
}

// psiMaxM is the largest m of the Psi body (marginParams has m in 1..8).
const psiMaxM = 8

// marginBody dispatches on p.body to one loop per kind, and for Psi on
// p.m to one loop per m (the Chebyshev recurrences unrolled, with the k
// count over kthr[0..m−1]: kthr[j] is −Inf for j ≥ m).
func marginBody(f *File, t *ConstTable) {
	e := f.Implement("marginForwardNEON",
		"marginForwardNEON is the NEON body of MarginForward: φ and, when dphi is non-nil, φ′ of\n"+
			"each t[i], from the float32 constants in p. len(phi) and a non-nil len(dphi) are ≥ len(t).")
	g := &marginGen{e: e, t: t}
	body := e.GP()
	e.Op("MOVW %s, %v", e.arg("p_body", 4), body)
	e.Op("CMP $%d, %v", kconst.MarginBodyCombined, body)
	e.Op("BEQ combined")
	e.Op("CMP $%d, %v", kconst.MarginBodyPsi, body)
	e.Op("BEQ psi")
	e.FreeGP(body)

	e.Comment("arc: ArcFace, ArcEasy, CosFace and the identity")
	g.loop("arc", []string{"one", "negone", "sign"},
		[]string{"cosM", "sinM", "th", "sub", "clampTh", "clampT", "clampSin"}, g.arc)

	e.Label("combined")
	g.loop("combined", []string{"one", "negone", "sign", "two", "half", "pi", "pio2", "asin", "reduce", "sinPoly", "cosPoly"},
		[]string{"m1", "m2", "m3", "clampTh", "clampSin", "clampTheta0", "clampThetaPi"}, g.combined)

	e.Label("psi")
	m := e.GP()
	e.Op("MOVW %s, %v", e.arg("p_m", 4), m)
	for k := 1; k < psiMaxM; k++ {
		e.Op("CMP $%d, %v", k, m)
		e.Op("BEQ psi%d", k)
	}
	e.Op("B psi%d", psiMaxM)
	e.FreeGP(m)
	for k := 1; k <= psiMaxM; k++ {
		tag := fmt.Sprintf("psi%d", k)
		e.Label(tag)
		params := []string{"a", "b", "bm"}
		for j := 0; j < k; j++ {
			params = append(params, fmt.Sprintf("kthr_%d", j))
		}
		g.loop(tag, []string{"one", "negone", "two"}, params, g.psi(k))
	}
}

// marginGen emits the body: the constant table, and the constants and
// parameters loaded for the loop being emitted.
type marginGen struct {
	e *Func
	t *ConstTable
	c Consts          // table packs, loaded
	p map[string]VReg // fields of p, each in all four lanes
}

// kindFunc emits φ of the (clamped) t and returns it with a function that
// emits φ′ (called only when dphi is non-nil, after φ is stored and its
// register freed; it may use the other registers computed for φ).
type kindFunc func(t VReg) (phi VReg, deriv func() VReg)

// loop emits the loop over t for one kind: one vector per iteration, or in
// the tail one element in lane 0 (the other lanes 0), so that the kind is
// emitted once and no byte outside the slices is touched; lanes are
// independent, so a tail element gets the bits a whole vector would give
// it. consts are the table packs and params the fields of p the kind reads.
// The loop returns when done.
func (g *marginGen) loop(tag string, consts, params []string, kind kindFunc) {
	e := g.e
	outer := e.vUsed
	g.c = e.loadConsts(g.t, consts...)
	g.p = map[string]VReg{}
	for _, name := range params {
		g.p[name] = e.loadArgSplat("p_" + name)
	}
	tp, n := e.LoadArg("t_base"), e.LoadArg("t_len")
	pp, dp := e.LoadArg("phi_base"), e.LoadArg("dphi_base")
	step := e.GP()
	L := func(s string) string { return tag + "_" + s }

	e.Label(L("loop"))
	e.Op("CBZ %v, %s", n, L("done"))
	inner := e.vUsed
	t := e.V()
	e.Op("CMP $%d, %v", lanes, n)
	e.Op("BLT %s", L("load1"))
	e.Ld1(tp, true, S4, t)
	e.Op("MOVD $%d, %v", lanes, step)
	e.Op("B %s", L("clamp"))
	e.Label(L("load1"))
	e.LdrSPost(t, tp)
	e.Op("MOVD $1, %v", step)
	e.Label(L("clamp"))
	// t = min(max(t, −1), 1); NaN stays NaN
	e.I(fmax(t, t, g.c.V("negone"), S4), fmin(t, t, g.c.V("one"), S4))

	phi, deriv := kind(t)
	g.store(L("phi"), n, pp, phi)
	e.FreeV(phi)
	e.Op("CBZ %v, %s", dp, L("next")) // dphi is nil
	g.store(L("dphi"), n, dp, deriv())
	e.Label(L("next"))
	e.vUsed = inner
	e.Op("SUB %v, %v, %v", step, n, n)
	e.Op("B %s", L("loop"))

	e.Label(L("done"))
	e.RET()
	e.FreeGP(tp, n, pp, dp, step)
	e.vUsed = outer
}

// store writes v to the iteration's elements of the slice at p (advancing
// p): the whole vector, or lane 0 when fewer than four elements are left.
func (g *marginGen) store(tag string, n, p Reg, v VReg) {
	e := g.e
	e.Op("CMP $%d, %v", lanes, n)
	e.Op("BLT %s", tag+"1")
	e.St1(p, true, S4, v)
	e.Op("B %s", tag+"_stored")
	e.Label(tag + "1")
	e.StrSPost(v, p)
	e.Label(tag + "_stored")
}

// cp copies v into a new register.
func (g *marginGen) cp(v VReg) VReg {
	d := g.e.V()
	g.e.I(mov(d, v, B16))
	return d
}

// dupC copies the table constant name (a lane of a pack) into all four
// lanes of a new register.
func (g *marginGen) dupC(name string) VReg {
	d := g.e.V()
	m, i := g.c.L(name)
	g.e.I(dupElem(d, m, S4, i))
	return d
}

// poly evaluates c[0]·z^(n−1) + … + c[n−1] by Horner's rule with fused
// multiply-adds, p = p·z + c, for the table constants named c (lanes of
// packs); it returns a new register.
func (g *marginGen) poly(z VReg, c ...string) VReg {
	e := g.e
	p := g.dupC(c[1])
	m, i := g.c.L(c[0])
	e.I(fmlaElem(p, z, m, S4, i)) // c1 + z·c0
	for _, name := range c[2:] {
		q := g.dupC(name)
		e.I(fmla(q, p, z, S4))
		e.FreeV(p)
		p = q
	}
	return p
}

// sinTheta returns sqrt(1 − t²), 1 − t² rounded once (fused).
func (g *marginGen) sinTheta(t VReg) VReg {
	s := g.cp(g.c.V("one"))
	g.e.I(fmls(s, t, t, S4), fsqrt(s, s, S4))
	return s
}

// clampMask returns the lanes where φ′ clamps t: |t| > clampTh.
func (g *marginGen) clampMask(t VReg) VReg {
	m := g.e.V()
	g.e.I(fabs(m, t, S4), fcmgt(m, m, g.p["clampTh"], S4))
	return m
}

// acos returns θ = acos t for t in [−1, 1] (NaN gives NaN) in a new
// register:
//
//	|t| ≤ 1/2:  θ = π/2 − asin t
//	t > 1/2:    θ = 2·asin s,       s = sqrt((1−t)/2)
//	t < −1/2:   θ = π − 2·asin s,   s = sqrt((1+t)/2)
//
// asin x = x + (x·z)·P(z) with z = x² or (1−|t|)/2 (exact), then the three
// cases in one fused θ = B + M·asin s with (M, B) chosen per lane.
func (g *marginGen) acos(t VReg) VReg {
	e := g.e
	a, big, z := e.V(), e.V(), e.V()
	e.I(fabs(a, t, S4), fcmgt(big, a, g.c.V("half"), S4))
	e.I(fsub(a, g.c.V("one"), a, S4), fmul(a, a, g.c.V("half"), S4)) // (1 − |t|)/2, exact for |t| ≥ 1/2
	e.I(fmul(z, t, t, S4))
	e.I(bit(z, a, big, B16))                  // z = big ? (1 − |t|)/2 : t²
	e.I(fsqrt(a, z, S4), bif(a, t, big, B16)) // s = big ? sqrt(z) : t
	p := g.poly(z, "asin4", "asin3", "asin2", "asin1", "asin0")
	e.I(fmul(z, a, z, S4), fmla(a, p, z, S4)) // asin s = s + P(z)·(s·z)

	// M = −1 (small) or ±2 (big, t's sign); B = π/2 (small), 0 or π (big)
	mm := g.cp(g.c.V("two"))
	e.I(bit(mm, t, g.c.V("sign"), B16), bif(mm, g.c.V("negone"), big, B16))
	b := p
	e.I(sshr(b, t, S4, 31), and(b, b, g.c.V("pi"), B16), bif(b, g.c.V("pio2"), big, B16))
	e.I(fmla(b, a, mm, S4)) // θ = B + M·asin s, one rounding
	e.FreeV(a, big, z, mm)
	return b
}

// sincos returns sin a and cos a in new registers; a is consumed (freed). a is
// reduced by π/2 with the two-part Cody–Waite constant (r = a − q·p1 is
// exact with the fused multiply-subtract, r − q·p2 rounds once), then the
// Cephes polynomials on [−π/4, π/4] and the quadrant j = q mod 4:
// sin a = (s, c, −s, −c)[j], cos a = (c, −s, −c, s)[j]. NaN gives NaN.
func (g *marginGen) sincos(a VReg) (sinA, cosA VReg) {
	e := g.e
	j, z := e.V(), e.V()
	m, i := g.c.L("twoopi")
	e.I(fmulElem(j, a, m, S4, i), fcvtns(j, j, S4), scvtf(z, j, S4)) // j = round(a·2/π), q = float(j)
	m, i = g.c.L("cw1")
	e.I(fmlsElem(a, z, m, S4, i)) // r = a − q·p1 (exact)
	m, i = g.c.L("cw2")
	e.I(fmlsElem(a, z, m, S4, i)) // r −= q·p2 (one rounding)
	r := a
	e.I(fmul(z, r, r, S4))
	sr := e.V()
	e.I(fmul(sr, r, z, S4))
	s := g.poly(z, "sin2", "sin1", "sin0")
	e.I(fmla(r, s, sr, S4)) // sin r = r + S(z)·(r·z)
	e.FreeV(s, sr)

	c := g.poly(z, "cos2", "cos1", "cos0")
	z2 := e.V()
	e.I(fmul(z2, z, z, S4))
	cr := z
	e.I(fmul(cr, z, g.c.V("half"), S4)) // z/2
	e.I(fmls(cr, z2, c, S4))            // z/2 − z²·C(z) = −(z²·C(z) − z/2)
	e.I(fsub(cr, g.c.V("one"), cr, S4)) // cos r = 1 + (z²·C(z) − z/2)
	e.FreeV(c, z2)

	// bit 0 of j picks the polynomial; bit 1 of j is sin a's sign and
	// bit 1 of j+1 = bit 1 ^ bit 0 of j is cos a's.
	b0 := e.V()
	e.I(shl(b0, j, S4, 31))
	e.I(ushr(j, j, S4, 1), shl(j, j, S4, 31))
	odd := e.V()
	sinA = e.V()
	e.I(sshr(odd, b0, S4, 31))
	e.I(mov(sinA, odd, B16), bsl(sinA, cr, r, B16)) // odd ? cos r : sin r
	e.I(bsl(odd, r, cr, B16))                       // odd ? sin r : cos r
	cosA = odd
	e.I(eor(sinA, sinA, j, B16), eor(j, j, b0, B16), eor(cosA, cosA, j, B16))
	e.FreeV(j, b0, r, cr)
	return sinA, cosA
}

// arc: φ = t·cosM − sinθ·sinM if t > th, else t − sub;
// φ′ = cosM + t̃·sinM/sin θ̃ if t > th, else 1.
func (g *marginGen) arc(t VReg) (VReg, func() VReg) {
	e := g.e
	st := g.sinTheta(t)
	phi, fb, hit := e.V(), e.V(), e.V()
	e.I(fmul(phi, st, g.p["sinM"], S4))
	e.I(fmls(phi, t, g.p["cosM"], S4), fneg(phi, phi, S4)) // t·cosM − sinθ·sinM, one rounding
	e.I(fsub(fb, t, g.p["sub"], S4))
	e.I(fcmgt(hit, t, g.p["th"], S4))
	e.I(bif(phi, fb, hit, B16)) // hit ? arc : fallback
	e.FreeV(fb)
	return phi, func() VReg {
		cl := g.clampMask(t)
		td := g.cp(g.p["clampT"])
		e.I(bit(td, t, g.c.V("sign"), B16))    // ±(1 − ClampEps), t's sign
		e.I(bif(td, t, cl, B16))               // t̃
		e.I(bit(st, g.p["clampSin"], cl, B16)) // sin θ̃
		e.I(fmul(td, td, g.p["sinM"], S4), fdiv(td, td, st, S4), fadd(td, td, g.p["cosM"], S4))
		e.I(bif(td, g.c.V("one"), hit, B16)) // hit ? φ′ : 1
		return td
	}
}

// combined: φ = cos(m1·θ + m2) − m3; φ′ = m1·sin(m1·θ̃ + m2)/sin θ̃.
// θ̃ differs from θ only in the lanes that φ′ clamps (|t| > 1 − ClampEps);
// when a vector has such a lane (rare) sin is evaluated a second time.
func (g *marginGen) combined(t VReg) (VReg, func() VReg) {
	e := g.e
	theta := g.acos(t)
	a := g.cp(g.p["m2"])
	e.I(fmla(a, theta, g.p["m1"], S4)) // m1·θ + m2
	sinA, cosA := g.sincos(a)
	e.I(fsub(cosA, cosA, g.p["m3"], S4))
	return cosA, func() VReg {
		st := g.sinTheta(t)
		cl := g.clampMask(t)
		anyV, anyR := e.V(), e.GP()
		e.I(umaxv(anyV, cl, S4), fmovToGP(anyR, anyV))
		e.Op("CBZ %v, combined_unclamped", anyR)
		e.FreeV(anyV)
		e.FreeGP(anyR)
		thc := e.V()
		e.I(sshr(thc, t, S4, 31), bsl(thc, g.p["clampThetaPi"], g.p["clampTheta0"], B16)) // θ at ±(1 − ClampEps)
		e.I(bit(theta, thc, cl, B16))
		e.FreeV(thc)
		ac := g.cp(g.p["m2"])
		e.I(fmla(ac, theta, g.p["m1"], S4))
		sinC, cosC := g.sincos(ac)
		e.I(bit(sinA, sinC, cl, B16), bit(st, g.p["clampSin"], cl, B16))
		e.FreeV(sinC, cosC)
		e.Label("combined_unclamped")
		d := e.V()
		e.I(fmul(d, sinA, g.p["m1"], S4), fdiv(d, d, st, S4))
		return d
	}
}

// psi returns the Psi kind for the integer m: k = #{j < m : t ≤ kthr[j]};
// T_m and U_{m−1} by the Chebyshev recurrences (chebyshev) from
// (T_0, T_1) = (1, t) and (U_0, U_1) = (1, 2t), which amd64 reaches from
// (t, 1) and (0, 1) by one exact step;
// φ = a·t + b·((−1)^k·T_m − 2k), φ′ = a + bm·(−1)^k·U_{m−1}.
func (g *marginGen) psi(m int) kindFunc {
	return func(t VReg) (VReg, func() VReg) {
		e := g.e
		one := g.c.V("one")
		k, le := e.V(), e.V()
		e.I(moviZero(k))
		for j := 0; j < m; j++ {
			e.I(fcmge(le, g.p[fmt.Sprintf("kthr_%d", j)], t, S4), sub(k, k, le, S4)) // all ones is −1
		}
		tt := e.V()
		e.I(fadd(tt, t, t, S4))
		tm, sign := g.chebyshev(tt, g.cp(one), g.cp(t), m-1) // (T_0, T_1) → T_m
		sgn := e.V()
		e.I(shl(sgn, k, S4, 31)) // (−1)^k as a sign bit
		if sign < 0 {
			e.I(fneg(tm, tm, S4))
		}
		kf := le
		e.I(eor(tm, tm, sgn, B16), scvtf(kf, k, S4))
		e.I(fmls(tm, kf, g.c.V("two"), S4)) // ψ = ±T_m − 2k
		e.I(fmul(tm, tm, g.p["b"], S4))
		e.I(fmla(tm, t, g.p["a"], S4)) // a·t + b·ψ
		e.FreeV(k, le)
		return tm, func() VReg {
			var u VReg
			sign := 1
			if m == 1 {
				u = g.cp(one) // U_0
			} else {
				u, sign = g.chebyshev(tt, g.cp(one), g.cp(tt), m-2) // (U_0, U_1 = 2t) → U_{m−1}
			}
			if sign < 0 {
				e.I(fneg(u, u, S4))
			}
			d := g.cp(g.p["a"])
			e.I(eor(u, u, sgn, B16), fmla(d, u, g.p["bm"], S4)) // a + bm·(±U_{m−1})
			return d
		}
	}
}

// chebyshev runs steps of X_{j+1} = 2t·X_j − X_{j−1} from older = X_{j−1}
// and newer = X_j (both new registers, overwritten), with tt = 2t, and
// returns the register of the last X and its sign (±1); the other register
// is freed. NEON's vector fused forms are d ± n·m only, so each step
// overwrites the older register with older ± tt·newer, which is ±X_{j+1}
// rounded once (the same bits as amd64's fma(2t, X_j, −X_{j−1}) up to the
// sign, rounding to nearest being symmetric); the signs are tracked here
// instead of negating every step.
func (g *marginGen) chebyshev(tt, older, newer VReg, steps int) (VReg, int) {
	so, sn := 1, 1
	for range steps {
		// older + o·tt·newer with o = −so·sn is −so·(2t·X_j − X_{j−1})
		if so*sn > 0 {
			g.e.I(fmls(older, tt, newer, S4))
		} else {
			g.e.I(fmla(older, tt, newer, S4))
		}
		older, newer, so, sn = newer, older, sn, -so
	}
	g.e.FreeV(older)
	return newer, sn
}

// rowNames are the row body's constant slices (asm's rowConsts).
var rowNames = []string{"cosM", "sinM", "off", "lo", "slope", "icept", "hi", "cHi"}

// marginRowsBody is the row body of MarginForward's per-row form, as the
// amd64 bodies: with t clamped to [−1, 1],
//
//	t > hi:      φ = cHi,                        φ′ = 0
//	t > lo:      φ = t·cosM − sin θ·sinM − off,  φ′ = cosM + t̃·sinM/sin θ̃
//	otherwise:   φ = slope·t + icept,            φ′ = slope
//
// every constant read per row from its slice, the clamp constants from
// scalar arguments.
func marginRowsBody(f *File, t *ConstTable) {
	e := f.Implement("marginRowsNEON",
		"marginRowsNEON is the NEON row body of MarginForward's per-row form: φ and, when dphi is non-nil,\n"+
			"φ′ of each t[i] under row i's constants (asm's rowConsts). phi, a non-nil dphi and the constant slices are ≥ len(t).")
	g := &marginGen{e: e, t: t}
	g.c = e.loadConsts(t, "one", "negone", "sign")
	g.p = map[string]VReg{}
	for _, name := range []string{"clampTh", "clampT", "clampSin"} {
		g.p[name] = e.loadArgSplat(name)
	}
	tp, n := e.LoadArg("t_base"), e.LoadArg("t_len")
	pp, dp := e.LoadArg("phi_base"), e.LoadArg("dphi_base")
	rows := map[string]Reg{}
	for _, name := range rowNames {
		rows[name] = e.LoadArg(name + "_base")
	}
	step := e.GP()
	L := func(s string) string { return "rows_" + s }

	e.Label(L("loop"))
	e.Op("CBZ %v, %s", n, L("done"))
	inner := e.vUsed
	tv := e.V()
	e.Op("CMP $%d, %v", lanes, n)
	e.Op("BLT %s", L("load1"))
	e.Ld1(tp, true, S4, tv)
	for _, name := range rowNames {
		g.p[name] = e.V()
		e.Ld1(rows[name], true, S4, g.p[name])
	}
	e.Op("MOVD $%d, %v", lanes, step)
	e.Op("B %s", L("clamp"))
	e.Label(L("load1"))
	e.LdrSPost(tv, tp)
	for _, name := range rowNames {
		e.LdrSPost(g.p[name], rows[name])
	}
	e.Op("MOVD $1, %v", step)
	e.Label(L("clamp"))
	e.I(fmax(tv, tv, g.c.V("negone"), S4), fmin(tv, tv, g.c.V("one"), S4))

	p := g.p
	st := g.sinTheta(tv)
	phi, fb, hit, top := e.V(), e.V(), e.V(), e.V()
	e.I(fmul(phi, st, p["sinM"], S4))
	e.I(fmls(phi, tv, p["cosM"], S4), fneg(phi, phi, S4)) // t·cosM − sinθ·sinM, one rounding
	e.I(fsub(phi, phi, p["off"], S4))
	e.I(mov(fb, p["icept"], B16), fmla(fb, tv, p["slope"], S4)) // slope·t + icept, one rounding
	e.I(fcmgt(hit, tv, p["lo"], S4), fcmgt(top, tv, p["hi"], S4))
	e.I(bif(phi, fb, hit, B16)) // hit ? arc : fallback
	e.I(bit(phi, p["cHi"], top, B16))
	e.FreeV(fb)
	g.store(L("phi"), n, pp, phi)
	e.FreeV(phi)
	e.Op("CBZ %v, %s", dp, L("next"))
	cl := g.clampMask(tv)
	td := g.cp(p["clampT"])
	e.I(bit(td, tv, g.c.V("sign"), B16)) // ±(1 − ClampEps), t's sign
	e.I(bif(td, tv, cl, B16))            // t̃
	e.I(bit(st, p["clampSin"], cl, B16)) // sin θ̃
	e.I(fmul(td, td, p["sinM"], S4), fdiv(td, td, st, S4), fadd(td, td, p["cosM"], S4))
	e.I(bif(td, p["slope"], hit, B16)) // hit ? φ′ : slope
	zero := e.V()
	e.I(moviZero(zero), bit(td, zero, top, B16))
	g.store(L("dphi"), n, dp, td)
	e.Label(L("next"))
	e.vUsed = inner
	e.Op("SUB %v, %v, %v", step, n, n)
	e.Op("B %s", L("loop"))

	e.Label(L("done"))
	e.RET()
}
