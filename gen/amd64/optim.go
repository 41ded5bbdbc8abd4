package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["optim"] = optim }

// The flag bits of asm.SGDFlags (asm/optim.go).
const (
	sgdWeightDecay = 1 << iota
	sgdMomentum
	sgdFirst
	sgdNesterov
)

// optim emits the AVX2 and AVX-512 bodies of asm's optimizer family:
// sgdStep and adamWStep, elementwise chains of correctly rounded operations
// in the twins' order (VFMADD231PS where the twin calls fma32), so every
// level gives the twin's bits.
func optim() {
	tab := newConstTable("optimConst", iotaConst())
	for _, s := range isas {
		sgdStepBody(newEmitter("sgdStep", s, tab))
		adamWStepBody(newEmitter("adamWStep", s, tab))
	}
}

// sgdMode is one momentum mode of the SGD step.
type sgdMode struct {
	name                    string
	momentum, first, nester bool
}

var sgdModes = []sgdMode{
	{name: "plain"},
	{name: "later", momentum: true},
	{name: "first", momentum: true, first: true},
	{name: "nlater", momentum: true, nester: true},
	{name: "nfirst", momentum: true, first: true, nester: true},
}

// sgdStepBody dispatches on the flags once, to one loop per combination of
// weight decay and momentum mode, so the loops carry no branches.
func sgdStepBody(e *emitter) {
	e.implement("is the %s body of SGDStep: len(g) = len(p), and len(buf) = len(p) with SGDMomentum.")
	flags := Load(Param("c").Field("Flags"), GP32())
	L := func(s string) string { return e.label(s) }
	TESTL(U32(sgdMomentum), flags)
	JZ(LabelRef(L("plain_dispatch")))
	TESTL(U32(sgdFirst), flags)
	JNZ(LabelRef(L("first_or_nfirst")))
	TESTL(U32(sgdNesterov), flags)
	JNZ(LabelRef(L("nlater_dispatch")))
	JMP(LabelRef(L("later_dispatch")))
	Label(L("first_or_nfirst"))
	TESTL(U32(sgdNesterov), flags)
	JNZ(LabelRef(L("nfirst_dispatch")))
	JMP(LabelRef(L("first_dispatch")))
	for _, m := range sgdModes {
		Label(L(m.name + "_dispatch"))
		TESTL(U32(sgdWeightDecay), flags)
		JNZ(LabelRef(L(m.name + "_wd")))
		JMP(LabelRef(L(m.name + "_nowd")))
	}
	for _, m := range sgdModes {
		for _, wd := range []bool{false, true} {
			tag := m.name + "_nowd"
			if wd {
				tag = m.name + "_wd"
			}
			Label(L(tag))
			e.sgdLoop(tag, m, wd)
		}
	}
}

// sgdLoop is the loop of one SGD variant, then RET.
func (e *emitter) sgdLoop(tag string, m sgdMode, wd bool) {
	pp := Load(Param("p").Base(), GP64())
	gp := Load(Param("g").Base(), GP64())
	n := Load(Param("p").Len(), GP64())
	var bp reg.Register
	if m.momentum {
		bp = Load(Param("buf").Base(), GP64())
	}
	nlr := e.broadcast(Param("c").Field("NegLR"))
	var wdv, mu, damp reg.VecVirtual
	if wd {
		wdv = e.broadcast(Param("c").Field("WeightDecay"))
	}
	if m.momentum && (!m.first || m.nester) {
		mu = e.broadcast(Param("c").Field("Momentum"))
	}
	if m.momentum && !m.first {
		damp = e.broadcast(Param("c").Field("Dampening1"))
	}
	unroll := 4
	if !e.z {
		unroll = 2 // Y0–Y15: four constants and three vectors per step
	}
	e.stream(tag, n, unroll, func(_ int, at func(reg.Register) Mem, mk *mask) {
		d := e.load(at(gp), mk)
		p := e.load(at(pp), mk)
		if wd {
			VFMADD231PS(wdv, p, d) // d = p·wd + g
		}
		if m.momentum {
			b := d
			if !m.first {
				b = e.load(at(bp), mk)
				VMULPS(mu, b, b)        // μ·buf
				VFMADD231PS(damp, d, b) // d·(1−dampening) + μ·buf
			}
			e.store(b, at(bp), mk)
			if m.nester {
				VFMADD231PS(mu, b, d) // d = buf·μ + d
			} else {
				d = b
			}
		}
		VFMADD231PS(nlr, d, p) // p = d·(−lr) + p
		e.store(p, at(pp), mk)
	})
	ret()
}

// adamWStepBody: q = p·decay, m = fma(g, 1−β1, β1·m), v = fma((1−β2)·g, g,
// β2·v), p = q + (−step·m)/(sqrt(v)/bc2 + ε), in the twin's order.
func adamWStepBody(e *emitter) {
	e.implement("is the %s body of AdamWStep: g, m and v are as long as p.")
	pp := Load(Param("p").Base(), GP64())
	gp := Load(Param("g").Base(), GP64())
	mp := Load(Param("m").Base(), GP64())
	vp := Load(Param("v").Base(), GP64())
	n := Load(Param("p").Len(), GP64())
	c := func(f string) reg.VecVirtual { return e.broadcast(Param("c").Field(f)) }
	decay, b1, b1c, b2, b2c := c("Decay"), c("Beta1"), c("Beta1c"), c("Beta2"), c("Beta2c")
	bc2, eps, step := c("BC2Sqrt"), c("Eps"), c("NegStep")
	unroll := 2
	if !e.z {
		unroll = 1 // Y0–Y15: eight constants and five vectors per step
	}
	e.stream("adamw", n, unroll, func(_ int, at func(reg.Register) Mem, mk *mask) {
		g := e.load(at(gp), mk)
		m := e.load(at(mp), mk)
		VMULPS(b1, m, m)       // β1·m
		VFMADD231PS(b1c, g, m) // g·(1−β1) + β1·m
		e.store(m, at(mp), mk)
		v := e.load(at(vp), mk)
		VMULPS(b2, v, v) // β2·v
		t := e.mul(b2c, g)
		VFMADD231PS(g, t, v) // ((1−β2)·g)·g + β2·v
		e.store(v, at(vp), mk)
		VSQRTPS(v, v)
		VDIVPS(bc2, v, v) // sqrt(v)/bc2
		VADDPS(eps, v, v)
		VMULPS(step, m, m) // −step·m
		VDIVPS(v, m, m)    // (−step·m)/den
		p := e.load(at(pp), mk)
		VMULPS(decay, p, p)
		VADDPS(m, p, p)
		e.store(p, at(pp), mk)
	})
	ret()
}
