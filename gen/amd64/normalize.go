package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["normalize"] = normalize }

// normalize emits the AVX2 and AVX-512 bodies of asm's normalize family:
// sumSquares (the sum behind L2Norm), scale, mul, add and normalizeBackward. Each
// kernel is one Go function below, emitted once per ISA.
func normalize() {
	tab := newConstTable("normConst", iotaConst())
	for _, s := range isas {
		sumSquaresBody(newEmitter("sumSquares", s, tab))
		scaleBody(newEmitter("scale", s, tab))
		mulBody(newEmitter("mul", s, tab))
		addBody(newEmitter("add", s, tab))
		normalizeBackwardBody(newEmitter("normalizeBackward", s, tab))
	}
}

// sumSquaresBody: Σ x_k² with FMAs into four independent accumulators.
// Masked-off tail lanes load as 0 and add 0·0.
func sumSquaresBody(e *emitter) {
	e.implement("is the %s body of sumSquares: Σ x_k², summed in vector lanes.")
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	acc := e.zeros(streamUnroll)
	e.stream("sum", n, streamUnroll, func(j int, at func(reg.Register) Mem, m *mask) {
		v := e.load(at(xp), m)
		VFMADD231PS(v, v, acc[j])
	})
	s := e.reduce(VADDPS, VADDSS, acc...)
	e.storeRet(s, 0)
	ret()
}

// scaleBody: dst_k = a·x_k, one rounding, as the generic twin.
func scaleBody(e *emitter) {
	e.implement("is the %s body of Scale: dst[k] = a·x[k] for k < len(x); len(dst) ≥ len(x).")
	dp := Load(Param("dst").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	a := e.broadcast(Param("a"))
	e.stream("mul", n, streamUnroll, func(_ int, at func(reg.Register) Mem, m *mask) {
		v := e.load(at(xp), m)
		VMULPS(a, v, v)
		e.store(v, at(dp), m)
	})
	ret()
}

// mulBody: dst_k = x_k·y_k, one rounding, as the generic twin.
func mulBody(e *emitter) {
	e.implement("is the %s body of Mul: dst[k] = x[k]·y[k] for k < len(x); len(dst), len(y) ≥ len(x).")
	dp := Load(Param("dst").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	yp := Load(Param("y").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	e.stream("mul", n, streamUnroll, func(_ int, at func(reg.Register) Mem, m *mask) {
		v := e.load(at(xp), m)
		w := e.load(at(yp), m)
		VMULPS(w, v, v)
		e.store(v, at(dp), m)
	})
	ret()
}

// addBody: dst_k = x_k + y_k, one rounding, as the generic twin.
func addBody(e *emitter) {
	e.implement("is the %s body of Add: dst[k] = x[k] + y[k] for k < len(x); len(dst), len(y) ≥ len(x).")
	dp := Load(Param("dst").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	yp := Load(Param("y").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	e.stream("add", n, streamUnroll, func(_ int, at func(reg.Register) Mem, m *mask) {
		v := e.load(at(xp), m)
		w := e.load(at(yp), m)
		VADDPS(w, v, v)
		e.store(v, at(dp), m)
	})
	ret()
}

// normalizeBackwardBody: p = Σ (x_k·inv)·dy_k, then
// dx_k = (dy_k − q_k·p)·inv + radial·q_k with q_k = x_k·inv. Each element of
// dy is read before the element of dx at the same index is written, so dx
// may alias dy.
func normalizeBackwardBody(e *emitter) {
	e.implement("is the %s body of NormalizeBackward; len(dx) and len(dy) are ≥ len(x), dx may alias dy.")
	dxp := Load(Param("dx").Base(), GP64())
	dyp := Load(Param("dy").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	inv := e.broadcast(Param("inv"))

	acc := e.zeros(streamUnroll)
	e.stream("dot", n, streamUnroll, func(j int, at func(reg.Register) Mem, m *mask) {
		q := e.load(at(xp), m)
		VMULPS(inv, q, q)
		if m == nil {
			VFMADD231PS(at(dyp), q, acc[j]) // acc += q·dy
			return
		}
		// Tail: masked-off lanes must add nothing, even when inv is not
		// finite (0·inv is NaN for inv = ±Inf).
		dy := e.load(at(dyp), m)
		if e.z {
			VFMADD231PS(dy, q, m.k, acc[j])
		} else {
			VANDPS(e.laneMask(m), q, q)
			VFMADD231PS(dy, q, acc[j])
		}
	})
	p := e.vec()
	e.broadcastReg(e.reduce(VADDPS, VADDSS, acc...), p)

	radial := e.broadcast(Param("radial"))
	e.stream("grad", n, streamUnroll, func(_ int, at func(reg.Register) Mem, m *mask) {
		q := e.load(at(xp), m)
		VMULPS(inv, q, q)
		t := e.load(at(dyp), m)
		VFNMADD231PS(p, q, t) // t = dy − q·p
		d := e.vec()
		VMULPS(radial, q, d)   // radial·q
		VFMADD231PS(inv, t, d) // t·inv + radial·q
		e.store(d, at(dxp), m)
	})
	ret()
}
