package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["modulate"] = modulate }

// modulate emits the AVX2 and AVX-512 bodies of asm's modulate family:
// clampGrad (AdaFace's clamp of the logits, with its 0/1 derivative) and
// hardNegatives (CurricularFace's z·(t + z·inv) above a threshold, with its
// derivative t + 2·z·inv). Each step is the generic twin's one rounding,
// and the ordered compares are false for NaN as its Go comparisons are, so
// every level is bitwise the twin.
func modulate() {
	tab := newConstTable("modConst", iotaConst(), splatF("one", 1))
	for _, s := range isas {
		clampGradBody(newEmitter("clampGrad", s, tab))
		hardNegativesBody(newEmitter("hardNegatives", s, tab))
	}
}

// clampGradBody: z = v > hi ? hi : v < lo ? lo : v; dz = 1 unless clamped.
// Each vector of z is read before it (and dz) is written.
func clampGradBody(e *emitter) {
	e.implement("is the %s body of ClampGrad: z clamped to [lo, hi] in place, dz its 0/1 derivative; len(dz) ≥ len(z).")
	zp := Load(Param("z").Base(), GP64())
	dp := Load(Param("dz").Base(), GP64())
	n := Load(Param("z").Len(), GP64())
	lo := e.broadcast(Param("lo"))
	hi := e.broadcast(Param("hi"))
	zero := e.zeros(1)[0]
	e.stream("clamp", n, 2, func(_ int, at func(reg.Register) Mem, m *mask) {
		v := e.load(at(zp), m)
		gt := e.cmp(cmpGTOQ, v, hi)
		lt := e.cmp(cmpLTOQ, v, lo)
		d := e.blend(gt, e.constReg("one"), zero)
		e.blendInto(lt, d, zero)
		e.blendInto(gt, v, hi)
		e.blendInto(lt, v, lo)
		e.store(v, at(zp), m)
		e.store(d, at(dp), m)
	})
	ret()
}

// hardNegativesBody: where v > thr (ordered), c = v·inv, v = v·(t + c) and
// dz = t + (c + c); elsewhere v and dz = 1.
func hardNegativesBody(e *emitter) {
	e.implement("is the %s body of HardNegatives: z above thr mapped to z·(t + z·inv) in place, dz its derivative; len(dz) ≥ len(z).")
	zp := Load(Param("z").Base(), GP64())
	dp := Load(Param("dz").Base(), GP64())
	n := Load(Param("z").Len(), GP64())
	thr := e.broadcast(Param("thr"))
	t := e.broadcast(Param("t"))
	inv := e.broadcast(Param("inv"))
	e.stream("hard", n, 2, func(_ int, at func(reg.Register) Mem, m *mask) {
		v := e.load(at(zp), m)
		hard := e.cmp(cmpGTOQ, v, thr)
		c := e.mul(v, inv)
		s := e.add(t, c)
		zm := e.mul(v, s)
		cc := e.add(c, c)
		d := e.add(t, cc)
		e.blendInto(hard, v, zm)
		one := e.constReg("one")
		e.blendInto(hard, one, d)
		e.store(v, at(zp), m)
		e.store(one, at(dp), m)
	})
	ret()
}
