package main

import (
	"github.com/marginloss/marginloss/internal/kconst"
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["lse"] = lse }

// lse emits the AVX2 and AVX-512 bodies of asm's lse family: exp,
// maxSumExp and softmaxScaled, all built on the vector exp below.
func lse() {
	if !(expClampLo <= kconst.ExpLo && kconst.ExpHi <= expClampHi) {
		panic("lse: the exp clamp cuts into [kconst.ExpLo, kconst.ExpHi]")
	}
	tab := newConstTable("lseConst", append([]vecConst{iotaConst()}, expConsts()...)...)
	for _, s := range isas {
		expBody(newEmitter("exp", s, tab))
		maxSumExpBody(newEmitter("maxSumExp", s, tab))
		softmaxScaledBody(newEmitter("softmaxScaled", s, tab))
	}
}

// The vector exp clamps its argument to [expClampLo, expClampHi] and lets the
// arithmetic produce 0 and +Inf: e^−104 is below half the least subnormal
// (so rounds to 0, as for every x < kconst.ExpLo = −103.972…), and
// e^89 = 1.32·2^128 overflows, as e^x does for every x > kconst.ExpHi. Both
// bounds keep n = round(x·log2e) within [−150, 128].
const (
	expClampLo = -104
	expClampHi = 89
	// expMagic is 1.5·2^23: t = x·log2e + expMagic, rounded once, has
	// round(x·log2e) in its low mantissa bits and t − expMagic is that
	// integer as a float.
	expMagic = 0x1.8p23
)

// expConsts are the constants of the vector exp. The polynomial and the
// range reduction are asm's expf's, from their one source, internal/kconst;
// TestNormLSEAssembly checks that each one's bit pattern is in lse_amd64.s.
func expConsts() []vecConst {
	return []vecConst{
		splatF("log2e", kconst.Log2e), splatF("ln2hi", kconst.Ln2Hi), splatF("ln2lo", kconst.Ln2Lo),
		splatF("p0", kconst.ExpP0), splatF("p1", kconst.ExpP1), splatF("p2", kconst.ExpP2),
		splatF("p3", kconst.ExpP3), splatF("p4", kconst.ExpP4), splatF("p5", kconst.ExpP5),
		splatF("one", 1), splatF("magic", expMagic),
		splatF("explo", expClampLo), splatF("exphi", expClampHi),
		splat("bias", 127), // float32 exponent bias, int32
	}
}

// expClamp holds the clamp bounds in registers (the NaN-propagating operand
// of VMAXPS and VMINPS must be a register). hi is nil when every argument is
// known to be ≤ 0, as in maxSumExp.
type expClamp struct{ lo, hi reg.VecVirtual }

func (e *emitter) expClamp(withHi bool) expClamp {
	c := expClamp{lo: e.constReg("explo")}
	if withHi {
		c.hi = e.constReg("exphi")
	}
	return c
}

// exp returns e^x in each lane, the algorithm of asm's expf with FMAs:
//
//	x := clamp(x)                            NaN stays NaN
//	n := round(x·log2e)                      via the 1.5·2^23 shift
//	r := (x − n·ln2Hi) − n·ln2Lo             two FMAs; the first is exact
//	p := 1 + (r + r²·(((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5))
//	return p·2^n
//
// AVX-512 scales with VSCALEFPS, one rounding, subnormal results included.
// AVX2 multiplies by 2^⌊n/2⌋ and then by 2^(n−⌊n/2⌋): both factors are
// normal for n in [−150, 128], the first product is exact and the second
// rounds once, so subnormal results are rounded once as well. x is
// clobbered.
func (e *emitter) exp(x reg.VecVirtual, c expClamp) reg.VecVirtual {
	VMAXPS(x, c.lo, x) // max(lo, x): the second source, x, is returned for NaN
	if c.hi != nil {
		VMINPS(x, c.hi, x)
	}
	t := e.constReg("magic")
	VFMADD231PS(e.c("log2e"), x, t) // t = x·log2e + 1.5·2^23
	n := e.vec()
	VSUBPS(e.c("magic"), t, n) // n = round(x·log2e), as a float
	var ni reg.VecVirtual
	if !e.z {
		ni = t
		VPSUBD(e.c("magic"), t, ni) // the same n as an int32
	}
	VFNMADD231PS(e.c("ln2hi"), n, x) // r = x − n·ln2Hi, exact
	VFNMADD231PS(e.c("ln2lo"), n, x) // r −= n·ln2Lo
	r := x
	p := e.poly(r, "p0", "p1", "p2", "p3", "p4", "p5")
	r2 := e.vec()
	VMULPS(r, r, r2)
	VFMADD213PS(r, r2, p) // p = p·r² + r
	VADDPS(e.c("one"), p, p)
	if e.z {
		VSCALEFPS(n, p, p) // p·2^n
		return p
	}
	n1 := e.vec()
	VPSRAD(Imm(1), ni, n1) // ⌊n/2⌋
	VPSUBD(n1, ni, ni)     // n − ⌊n/2⌋
	for _, k := range []reg.VecVirtual{n1, ni} {
		VPADDD(e.c("bias"), k, k)
		VPSLLD(Imm(23), k, k) // 2^k
		VMULPS(k, p, p)
	}
	return p
}

// expBody: dst_k = e^x_k.
func expBody(e *emitter) {
	e.implement("is the %s body of Exp: dst[k] = e^x[k] for k < len(x); len(dst) ≥ len(x).")
	dp := Load(Param("dst").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	c := e.expClamp(true)
	e.stream("exp", n, streamUnroll, func(_ int, at func(reg.Register) Mem, m *mask) {
		e.store(e.exp(e.load(at(xp), m), c), at(dp), m)
	})
	ret()
}

// softmaxScaledBody: dst_k = e^(z_k − lse)·scale.
func softmaxScaledBody(e *emitter) {
	e.implement("is the %s body of SoftmaxScaled: dst[k] = e^(z[k]−lse)·scale for k < len(z); len(dst) ≥ len(z).")
	dp := Load(Param("dst").Base(), GP64())
	zp := Load(Param("z").Base(), GP64())
	n := Load(Param("z").Len(), GP64())
	lsev := e.broadcast(Param("lse"))
	scale := e.broadcast(Param("scale"))
	c := e.expClamp(true)
	e.stream("softmax", n, streamUnroll, func(_ int, at func(reg.Register) Mem, m *mask) {
		d := e.load(at(zp), m)
		VSUBPS(lsev, d, d)
		p := e.exp(d, c)
		VMULPS(scale, p, p)
		e.store(p, at(dp), m)
	})
	ret()
}

// maxSumExpBody: m' = max(m, max z), then t = Σ e^(z_k − m') and, when
// s ≠ 0, t += s·e^(m − m'). An empty z returns (m, s).
func maxSumExpBody(e *emitter) {
	e.implement("is the %s body of MaxSumExp.")
	zp := Load(Param("z").Base(), GP64())
	n := Load(Param("z").Len(), GP64())
	mArg, sArg := addr(Param("m")), addr(Param("s"))
	TESTQ(n, n)
	JNZ(LabelRef(e.label("nonempty")))
	ms := XMM()
	VMOVSS(mArg, ms)
	e.storeRet(ms, 0)
	VMOVSS(sArg, ms)
	e.storeRet(ms, 1)
	ret()
	Label(e.label("nonempty"))

	// Pass 1: the maximum, starting from m in every lane.
	acc := make([]reg.VecVirtual, streamUnroll)
	for i := range acc {
		acc[i] = e.broadcast(Param("m"))
	}
	e.stream("max", n, streamUnroll, func(j int, at func(reg.Register) Mem, m *mask) {
		if m == nil {
			VMAXPS(at(zp), acc[j], acc[j])
			return
		}
		v := e.load(at(zp), m)
		if e.z {
			VMAXPS(v, acc[j], m.k, acc[j])
		} else {
			VBLENDVPS(e.laneMask(m), v, acc[j], v) // masked-off lanes: acc
			VMAXPS(v, acc[j], acc[j])
		}
	})
	mx := e.reduce(VMAXPS, VMAXSS, acc...)
	mxv := e.vec()
	e.broadcastReg(mx, mxv)

	// Pass 2: Σ e^(z_k − m').
	c := e.expClamp(false)
	sum := e.zeros(streamUnroll)
	e.stream("sum", n, streamUnroll, func(j int, at func(reg.Register) Mem, m *mask) {
		d := e.load(at(zp), m)
		VSUBPS(mxv, d, d)
		p := e.exp(d, c)
		switch {
		case m == nil:
			VADDPS(p, sum[j], sum[j])
		case e.z:
			VADDPS(p, sum[j], m.k, sum[j])
		default:
			VANDPS(e.laneMask(m), p, p) // masked-off lanes add 0
			VADDPS(p, sum[j], sum[j])
		}
	})
	t := e.reduce(VADDPS, VADDSS, sum...)

	// The old state: t += s·e^(m − m') unless s == 0 (NaN s is added).
	s := XMM()
	VMOVSS(sArg, s)
	zero := XMM()
	VXORPS(zero, zero, zero)
	VUCOMISS(zero, s)
	JNE(LabelRef(e.label("old")))
	JP(LabelRef(e.label("old")))
	JMP(LabelRef(e.label("store")))
	Label(e.label("old"))
	d := XMM()
	VMOVSS(mArg, d)
	VSUBSS(mx, d, d) // m − m'
	dv := e.vec()
	e.broadcastReg(d, dv)
	p := e.exp(dv, c)
	VFMADD231SS(p.AsX(), s, t) // t += s·e^(m − m')
	Label(e.label("store"))
	e.storeRet(mx, 0)
	e.storeRet(t, 1)
	ret()
}
