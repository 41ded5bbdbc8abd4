package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/gotypes"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["normalize"] = normalize }

// normalize emits the AVX2 and AVX-512 bodies of asm's normalize family:
// sumSquares (the sum behind L2Norm), scale and normalizeBackward. Each
// kernel is one Go function below, emitted once per ISA.
func normalize() {
	tab := newVecConsts("normConst", streamConsts())
	for _, isa := range vecISAs {
		sumSquaresBody(newVecEmitter("sumSquares", isa, tab))
		scaleBody(newVecEmitter("scale", isa, tab))
		normalizeBackwardBody(newVecEmitter("normalizeBackward", isa, tab))
	}
}

// sumSquaresBody: Σ x_k² with FMAs into four independent accumulators.
// Masked-off tail lanes load as 0 and add 0·0.
func sumSquaresBody(e *vecEmitter) {
	e.text("func(x []float32) float32",
		"is the %s body of sumSquares: Σ x_k², summed in vector lanes.")
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	acc := e.zeros(streamUnroll)
	e.stream("sum", n, streamUnroll, func(j int, at func(reg.Register) Mem, m *vecMask) {
		v := e.load(at(xp), m)
		VFMADD231PS(v, v, acc[j])
	})
	s := e.reduce(VADDPS, VADDSS, acc...)
	e.storeRet(s, 0)
	e.ret()
}

// scaleBody: dst_k = a·x_k, one rounding, as the generic twin.
func scaleBody(e *vecEmitter) {
	e.text("func(dst, x []float32, a float32)",
		"is the %s body of Scale: dst[k] = a·x[k] for k < len(x); len(dst) ≥ len(x).")
	dp := Load(Param("dst").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	a := e.broadcast(Param("a"))
	e.stream("mul", n, streamUnroll, func(_ int, at func(reg.Register) Mem, m *vecMask) {
		v := e.load(at(xp), m)
		VMULPS(a, v, v)
		e.store(v, at(dp), m)
	})
	e.ret()
}

// normalizeBackwardBody: p = Σ (x_k·inv)·dy_k, then
// dx_k = (dy_k − q_k·p)·inv + radial·q_k with q_k = x_k·inv. Each element of
// dy is read before the element of dx at the same index is written, so dx
// may alias dy.
func normalizeBackwardBody(e *vecEmitter) {
	e.text("func(dx, dy, x []float32, inv, radial float32)",
		"is the %s body of NormalizeBackward; len(dx) and len(dy) are ≥ len(x), dx may alias dy.")
	dxp := Load(Param("dx").Base(), GP64())
	dyp := Load(Param("dy").Base(), GP64())
	xp := Load(Param("x").Base(), GP64())
	n := Load(Param("x").Len(), GP64())
	inv := e.broadcast(Param("inv"))

	acc := e.zeros(streamUnroll)
	e.stream("dot", n, streamUnroll, func(j int, at func(reg.Register) Mem, m *vecMask) {
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
	e.stream("grad", n, streamUnroll, func(_ int, at func(reg.Register) Mem, m *vecMask) {
		q := e.load(at(xp), m)
		VMULPS(inv, q, q)
		t := e.load(at(dyp), m)
		VFNMADD231PS(p, q, t) // t = dy − q·p
		d := e.vec()
		VMULPS(radial, q, d)   // radial·q
		VFMADD231PS(inv, t, d) // t·inv + radial·q
		e.store(d, at(dxp), m)
	})
	e.ret()
}

// ---------------------------------------------------------------------------
// Shared emit helpers of the streaming kernels (normalize.go and lse.go):
// the ISA abstraction, the unrolled loop with its masked tail, loads and
// stores, horizontal reductions and the constant table. Written once,
// emitted for each ISA.

// streamUnroll is the number of vectors per iteration of the main loop, each
// with its own accumulator where the kernel reduces.
const streamUnroll = 4

// vecISA describes one instruction-set level.
type vecISA struct {
	suffix string // body name suffix: "AVX2", "AVX512"
	lanes  int    // float32 lanes per vector
	z      bool   // AVX-512: ZMM registers and K masks
}

var vecISAs = []vecISA{{"AVX2", 8, false}, {"AVX512", 16, true}}

// vecEmitter emits one kernel body at one ISA level. AVX2 bodies use
// Y0–Y15 only: callers keep at most 16 vectors live (the allocator would
// hand out Y16+ otherwise, which TestNormLSEAssembly rejects).
type vecEmitter struct {
	vecISA
	name string // the body's function name, also the prefix of its labels
	tab  *vecConsts

	stage  *Mem // AVX2: the 32-byte stack buffer of the tail (stageBuf)
	copies int  // AVX2: copy loops emitted, for unique labels
}

func newVecEmitter(kernel string, isa vecISA, tab *vecConsts) *vecEmitter {
	return &vecEmitter{vecISA: isa, name: kernel + isa.suffix, tab: tab}
}

// text starts the body: TEXT with the stub's signature (asm/<family>_amd64.go
// declares it) and a doc line; doc has one %s for the ISA.
func (e *vecEmitter) text(signature, doc string) {
	TEXT(e.name, NOSPLIT, signature)
	Doc(e.name + " " + fmt.Sprintf(doc, e.suffix))
}

// ret ends the body: VZEROUPPER then RET.
func (e *vecEmitter) ret() {
	VZEROUPPER()
	RET()
}

func (e *vecEmitter) label(s string) string { return e.name + "_" + s }

func (e *vecEmitter) vec() reg.VecVirtual {
	if e.z {
		return ZMM()
	}
	return YMM()
}

// zeros returns k zeroed vector registers.
func (e *vecEmitter) zeros(k int) []reg.VecVirtual {
	vs := make([]reg.VecVirtual, k)
	for i := range vs {
		vs[i] = e.vec()
		VXORPS(vs[i], vs[i], vs[i])
	}
	return vs
}

// broadcast returns a vector holding the float32 argument c in every lane.
func (e *vecEmitter) broadcast(c gotypes.Component) reg.VecVirtual {
	b, err := c.Resolve()
	if err != nil {
		panic(err)
	}
	v := e.vec()
	VBROADCASTSS(b.Addr, v)
	return v
}

// broadcastReg copies lane 0 of the XMM register x into every lane of v.
func (e *vecEmitter) broadcastReg(x reg.VecVirtual, v reg.VecVirtual) {
	VBROADCASTSS(x, v)
}

// storeRet writes lane 0 of x to result i (VMOVSS: no legacy SSE after VEX).
func (e *vecEmitter) storeRet(x reg.VecVirtual, i int) {
	b, err := ReturnIndex(i).Resolve()
	if err != nil {
		panic(err)
	}
	VMOVSS(x, b.Addr)
}

// vecMask describes the partial vector of the tail, its first rem lanes.
// On AVX-512 it is a K register, used by masked loads, stores and
// arithmetic. On AVX2 it is rem itself: loads and stores of the tail go
// through a 32-byte stack buffer, copied one float at a time (VMASKMOVPS
// would do on hardware, but qemu-user reads all 32 bytes of a masked load
// and faults on the tests' guard pages; VMASKMOVPS stores are also slow on
// AMD), and laneMask makes the vector of all-ones lanes that VANDPS and
// VBLENDVPS need.
type vecMask struct {
	y   reg.VecVirtual
	k   reg.OpmaskVirtual
	rem reg.GPVirtual // AVX2: the number of lanes, 0 < rem < 8
}

// tailMask returns the mask of the first rem lanes, 0 < rem < lanes:
// lane i is selected when rem > i (a compare with the iota constant).
// (AVX2: only rem; laneMask makes the vector when a kernel needs it.)
func (e *vecEmitter) tailMask(rem reg.GPVirtual) *vecMask {
	if e.z {
		v := ZMM()
		VPBROADCASTD(rem.As32(), v)
		k := K()
		VPCMPGTD(e.c("iota"), v, k)
		return &vecMask{k: k}
	}
	return &vecMask{rem: rem}
}

// laneMask returns the AVX2 lane mask of m (all ones in the first rem
// lanes), emitted on first use.
func (e *vecEmitter) laneMask(m *vecMask) reg.VecVirtual {
	if m.y == nil {
		v := YMM()
		VMOVD(m.rem.As32(), v.AsX())
		VPBROADCASTD(v.AsX(), v)
		VPCMPGTD(e.c("iota"), v, v)
		m.y = v
	}
	return m.y
}

// stageBuf returns the AVX2 tail's 32-byte stack buffer.
func (e *vecEmitter) stageBuf() Mem {
	if e.stage == nil {
		m := AllocLocal(32)
		e.stage = &m
	}
	return *e.stage
}

// copyFloats emits a loop that copies rem (≥ 1) float32, element j from
// load(j) to store(j).
func (e *vecEmitter) copyFloats(rem reg.GPVirtual, load func(j reg.GPVirtual) Mem, store func(j reg.GPVirtual) Mem) {
	e.copies++
	loop := e.label(fmt.Sprintf("copy%d", e.copies))
	j, t := GP64(), GP32()
	XORQ(j, j)
	Label(loop)
	MOVL(load(j), t)
	MOVL(t, store(j))
	INCQ(j)
	CMPQ(j, rem)
	JL(LabelRef(loop))
}

// load reads a vector from src; with a mask it reads only the selected lanes
// and the others are 0 (no memory past them is touched).
func (e *vecEmitter) load(src Mem, m *vecMask) reg.VecVirtual {
	v := e.vec()
	switch {
	case m == nil:
		VMOVUPS(src, v)
	case e.z:
		VMOVUPS_Z(src, m.k, v)
	default:
		buf := e.stageBuf()
		VXORPS(v, v, v)
		VMOVUPS(v, buf)
		p := GP64()
		LEAQ(src, p)
		e.copyFloats(m.rem, func(j reg.GPVirtual) Mem { return Mem{Base: p, Index: j, Scale: 4} },
			func(j reg.GPVirtual) Mem { return buf.Idx(j, 4) })
		VMOVUPS(buf, v)
	}
	return v
}

// store writes v to dst; with a mask only the selected lanes are written.
func (e *vecEmitter) store(v reg.VecVirtual, dst Mem, m *vecMask) {
	switch {
	case m == nil:
		VMOVUPS(v, dst)
	case e.z:
		VMOVUPS(v, m.k, dst)
	default:
		buf := e.stageBuf()
		VMOVUPS(v, buf)
		p := GP64()
		LEAQ(dst, p)
		e.copyFloats(m.rem, func(j reg.GPVirtual) Mem { return buf.Idx(j, 4) },
			func(j reg.GPVirtual) Mem { return Mem{Base: p, Index: j, Scale: 4} })
	}
}

// stream emits the loop over n elements (n a register, preserved). body
// emits the work for vector j of the current position: at(p) is the address
// of that vector in the slice based at p, and m is nil except in the tail.
// The loop runs unroll vectors per iteration (j = 0..unroll−1), then one
// vector per iteration (j = 0), then, when 0 < rem < lanes elements are
// left, one masked vector (j = 0). No element outside [0, n) is read or
// written.
func (e *vecEmitter) stream(tag string, n reg.Register, unroll int, body func(j int, at func(reg.Register) Mem, m *vecMask)) {
	L := func(s string) string { return e.label(tag + "_" + s) }
	i := GP64()
	XORQ(i, i)
	lim := GP64()
	at := func(j int) func(reg.Register) Mem {
		return func(p reg.Register) Mem { return Mem{Base: p, Index: i, Scale: 4, Disp: 4 * j * e.lanes} }
	}

	MOVQ(n, lim)
	SUBQ(Imm(uint64(unroll*e.lanes)), lim) // i ≤ lim: a whole iteration is left
	Label(L("loop"))
	CMPQ(i, lim)
	JG(LabelRef(L("single")))
	for j := 0; j < unroll; j++ {
		body(j, at(j), nil)
	}
	ADDQ(Imm(uint64(unroll*e.lanes)), i)
	JMP(LabelRef(L("loop")))

	Label(L("single"))
	MOVQ(n, lim)
	SUBQ(Imm(uint64(e.lanes)), lim)
	Label(L("singleloop"))
	CMPQ(i, lim)
	JG(LabelRef(L("tail")))
	body(0, at(0), nil)
	ADDQ(Imm(uint64(e.lanes)), i)
	JMP(LabelRef(L("singleloop")))

	Label(L("tail"))
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JZ(LabelRef(L("done")))
	body(0, at(0), e.tailMask(rem))
	Label(L("done"))
}

// reduce folds the vectors vs pairwise with op (VADDPS, VMAXPS), then the
// lanes of the result with op and, for the last step, the scalar opss
// (VADDSS, VMAXSS). It returns an XMM register whose lane 0 holds the
// result. The vectors are clobbered.
func (e *vecEmitter) reduce(op func(...Op), opss func(...Op), vs ...reg.VecVirtual) reg.VecVirtual {
	for len(vs) > 1 {
		var next []reg.VecVirtual
		for i := 0; i+1 < len(vs); i += 2 {
			op(vs[i+1], vs[i], vs[i])
			next = append(next, vs[i])
		}
		if len(vs)%2 == 1 {
			next = append(next, vs[len(vs)-1])
		}
		vs = next
	}
	v := vs[0]
	if e.z {
		h := YMM()
		VEXTRACTF64X4(Imm(1), v, h)
		op(h, v.AsY(), h)
		v = h
	}
	x := XMM()
	if e.z {
		VEXTRACTF32X4(Imm(1), v.AsY(), x) // EVEX: v may be Y16–Y31 here
	} else {
		VEXTRACTF128(Imm(1), v.AsY(), x)
	}
	op(x, v.AsX(), x)
	t := XMM()
	VMOVHLPS(x, x, t) // lanes 2, 3 to 0, 1
	op(t, x, x)
	VMOVSHDUP(x, t) // lane 1 to 0
	opss(t, x, x)
	return x
}

// vecConst is a float32 (or int32) constant, stored as 16 copies so that a
// 256-bit and a 512-bit memory operand both read it whole.
type vecConst struct {
	name string
	bits [16]uint32
}

func splat(name string, bits uint32) vecConst {
	c := vecConst{name: name}
	for i := range c.bits {
		c.bits[i] = bits
	}
	return c
}

func splatF(name string, f float32) vecConst { return splat(name, math.Float32bits(f)) }

// streamConsts are the constants every streaming kernel needs: the lane
// indices, for tail masks.
func streamConsts() []vecConst {
	c := vecConst{name: "iota"}
	for i := range c.bits {
		c.bits[i] = uint32(i)
	}
	return []vecConst{c}
}

// vecConsts is a family's read-only constant table (one DATA symbol per .s
// file).
type vecConsts struct {
	base Mem
	off  map[string]int
}

func newVecConsts(symbol string, cs []vecConst) *vecConsts {
	t := &vecConsts{base: GLOBL(symbol, RODATA|NOPTR), off: map[string]int{}}
	for i, c := range cs {
		if _, dup := t.off[c.name]; dup {
			panic("duplicate constant " + c.name)
		}
		t.off[c.name] = 64 * i
		for j, b := range c.bits {
			DATA(64*i+4*j, U32(b))
		}
	}
	return t
}

// c is the memory operand of constant name.
func (e *vecEmitter) c(name string) Mem {
	off, ok := e.tab.off[name]
	if !ok {
		panic(e.name + ": no constant " + name)
	}
	return e.tab.base.Offset(off)
}

// constReg loads constant name into a register (for operands that must be
// registers, such as the NaN-propagating side of VMAXPS).
func (e *vecEmitter) constReg(name string) reg.VecVirtual {
	v := e.vec()
	VMOVUPS(e.c(name), v)
	return v
}
