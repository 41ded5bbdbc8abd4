package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/gotypes"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// This file is the amd64 emitter that every family builds on: the ISA
// levels, function entry and exit, the constant table, masks, loads and
// stores of partial vectors, the loops over a slice, horizontal reductions
// and the vector arithmetic the bodies share. Each helper is written once
// and emitted for each level; the families (normalize.go, lse.go,
// margin.go, gemm.go, probe.go) hold only their kernels.
//
// Registers: AVX2 bodies allocate from Y0–Y15 only. Bodies on virtual
// registers keep at most 16 vectors live (avo would hand out Y16+, which
// need EVEX, otherwise); bodies on physical registers take them from
// isa.phys, which refuses the rest; and main rejects a generated file whose
// AVX2 or VEX-only bodies name X16+, Y16+, Z or K registers.

// ---------------------------------------------------------------------------
// ISA levels

// isa describes one x86 vector level.
type isa struct {
	suffix string // body name suffix: "AVX2", "AVX512"
	lanes  int    // float32 lanes per vector
	z      bool   // AVX-512: ZMM registers, K masks, EVEX encodings
	regs   int    // vector registers a body may use: Y0–Y15, Z0–Z31
}

var (
	avx2   = isa{suffix: "AVX2", lanes: 8, regs: 16}
	avx512 = isa{suffix: "AVX512", lanes: 16, z: true, regs: 32}
	// isas lists the levels every vector family emits a body for.
	isas = []isa{avx2, avx512}
)

// vec returns a new virtual vector register of the level's width.
func (s isa) vec() reg.VecVirtual {
	if s.z {
		return ZMM()
	}
	return YMM()
}

// phys returns vector register i of the level (Y<i> or Z<i>); it panics
// when i is outside the level's registers.
func (s isa) phys(i int) reg.VecPhysical {
	if i < 0 || i >= s.regs {
		panic(fmt.Sprintf("amd64: %s has no vector register %d (0..%d)", s.suffix, i, s.regs-1))
	}
	if s.z {
		return zmms[i]
	}
	return ymms[i]
}

var (
	ymms = [16]reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
		reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15}
	zmms = [32]reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
		reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
		reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
		reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}
)

// ---------------------------------------------------------------------------
// Functions

// implement starts the body of name. Implement takes the signature from the
// //go:noescape stub in package asm (asm/<family>_amd64.go), so that go
// vet's asmdecl checks the body against that one declaration. The bodies
// call nothing and keep at most a small local frame: NOSPLIT.
func implement(name string, doc ...string) {
	Implement(name)
	Attributes(NOSPLIT)
	Doc(doc...)
}

// ret ends a body: VZEROUPPER (so that no dirty upper half slows the
// caller's SSE code), then RET.
func ret() {
	VZEROUPPER()
	RET()
}

// addr is the stack address of an argument or result.
func addr(c gotypes.Component) Mem {
	b, err := c.Resolve()
	if err != nil {
		// Implement found no signature: package asm must type-check.
		panic(fmt.Sprintf("amd64: %v (does package asm build?)", err))
	}
	return b.Addr
}

// ---------------------------------------------------------------------------
// Constants

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

// splatF is the constant f; pass untyped constants (internal/kconst's) so
// that they round to float32 once, as float32(c) does in package asm.
func splatF(name string, f float32) vecConst { return splat(name, math.Float32bits(f)) }

// iotaConst holds the lane indices 0, 1, …, 15, which the tail masks
// compare against: every table of a family with masked tails lists it.
func iotaConst() vecConst {
	c := vecConst{name: "iota"}
	for i := range c.bits {
		c.bits[i] = uint32(i)
	}
	return c
}

// constTable is a family's read-only constant table: one DATA symbol per .s
// file, 64 bytes per constant.
type constTable struct {
	base Mem
	off  map[string]int
}

func newConstTable(symbol string, cs ...vecConst) *constTable {
	t := &constTable{base: GLOBL(symbol, RODATA|NOPTR), off: map[string]int{}}
	for i, c := range cs {
		if _, dup := t.off[c.name]; dup {
			panic("amd64: duplicate constant " + c.name)
		}
		t.off[c.name] = 64 * i
		for j, b := range c.bits {
			DATA(64*i+4*j, U32(b))
		}
	}
	return t
}

// ---------------------------------------------------------------------------
// The emitter

// emitter emits one body at one level: the function name, its constant
// table and the state of the AVX2 tail buffer.
type emitter struct {
	isa
	name string // the body's function name, also the prefix of its labels
	tab  *constTable

	stage  *Mem // AVX2: the 32-byte stack buffer of the tail (stageBuf)
	copies int  // AVX2: copy loops emitted, for unique labels
}

// newEmitter returns the emitter of kernel's body at level s, named
// kernel+s.suffix (the stub's name).
func newEmitter(kernel string, s isa, tab *constTable) *emitter {
	return &emitter{isa: s, name: kernel + s.suffix, tab: tab}
}

// implement starts the body. The first doc line follows the name and has
// one %s, for the level's suffix.
func (e *emitter) implement(doc ...string) {
	lines := append([]string{e.name + " " + fmt.Sprintf(doc[0], e.suffix)}, doc[1:]...)
	implement(e.name, lines...)
}

func (e *emitter) label(s string) string { return e.name + "_" + s }

// c is the memory operand of constant name.
func (e *emitter) c(name string) Mem {
	off, ok := e.tab.off[name]
	if !ok {
		panic(e.name + ": no constant " + name)
	}
	return e.tab.base.Offset(off)
}

// constReg loads constant name into a register (for operands that must be
// registers, such as the NaN-propagating side of VMAXPS).
func (e *emitter) constReg(name string) reg.VecVirtual {
	v := e.vec()
	VMOVUPS(e.c(name), v)
	return v
}

// zeros returns k zeroed vector registers.
func (e *emitter) zeros(k int) []reg.VecVirtual {
	vs := make([]reg.VecVirtual, k)
	for i := range vs {
		vs[i] = e.vec()
		VXORPS(vs[i], vs[i], vs[i])
	}
	return vs
}

// broadcast returns a vector holding the float32 argument c in every lane.
func (e *emitter) broadcast(c gotypes.Component) reg.VecVirtual {
	a := addr(c)
	v := e.vec()
	VBROADCASTSS(a, v)
	return v
}

// broadcastReg copies lane 0 of the XMM register x into every lane of v.
func (e *emitter) broadcastReg(x reg.VecVirtual, v reg.VecVirtual) {
	VBROADCASTSS(x, v)
}

// storeRet writes lane 0 of x to result i (VMOVSS: no legacy SSE after VEX).
func (e *emitter) storeRet(x reg.VecVirtual, i int) {
	VMOVSS(x, addr(ReturnIndex(i)))
}

// ---------------------------------------------------------------------------
// Arithmetic. The three-operand helpers return a new register d = x op y;
// x must be a register, y may be a memory operand.

func (e *emitter) op3(f func(...Op), x Op, y Op) reg.VecVirtual {
	d := e.vec()
	f(y, x, d)
	return d
}

func (e *emitter) add(x, y Op) reg.VecVirtual { return e.op3(VADDPS, x, y) } // x + y
func (e *emitter) sub(x, y Op) reg.VecVirtual { return e.op3(VSUBPS, x, y) } // x − y
func (e *emitter) mul(x, y Op) reg.VecVirtual { return e.op3(VMULPS, x, y) } // x · y
func (e *emitter) and(x, y Op) reg.VecVirtual { return e.op3(VANDPS, x, y) } // x & y

func (e *emitter) sqrt(x Op) reg.VecVirtual {
	d := e.vec()
	VSQRTPS(x, d)
	return d
}

// poly evaluates, by Horner's rule with FMAs, c[0]·z^(n−1) + … + c[n−1]
// for the constants named c.
func (e *emitter) poly(z reg.VecVirtual, c ...string) reg.VecVirtual {
	p := e.constReg(c[0])
	for _, name := range c[1:] {
		VFMADD213PS(e.c(name), z, p) // p = p·z + c
	}
	return p
}

// reduce folds the vectors vs pairwise with op (VADDPS, VMAXPS), then the
// lanes of the result with op and, for the last step, the scalar opss
// (VADDSS, VMAXSS). It returns an XMM register whose lane 0 holds the
// result. The vectors are clobbered.
func (e *emitter) reduce(op func(...Op), opss func(...Op), vs ...reg.VecVirtual) reg.VecVirtual {
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

// ---------------------------------------------------------------------------
// Masks

// mask selects lanes. On AVX-512 it is a K register, used by masked loads,
// stores, arithmetic and blends. On AVX2 it is a vector (VBLENDVPS reads
// the sign bit of each lane; VANDPS needs all ones), or, for the tail, the
// lane count rem, from which laneMask makes the vector on first use.
type mask struct {
	y   reg.VecVirtual    // AVX2
	k   reg.OpmaskVirtual // AVX-512
	rem reg.GPVirtual     // AVX2 tail: the number of lanes, 0 < rem < 8
}

// VCMPPS predicates (ordered, quiet: false when either operand is NaN).
const (
	cmpLTOQ = 0x11
	cmpLEOQ = 0x12
	cmpGTOQ = 0x1e
)

// tailMask returns the mask of the first rem lanes, 0 < rem < lanes.
// (AVX2: only rem; laneMask makes the vector when a kernel needs it.)
func (e *emitter) tailMask(rem reg.GPVirtual) *mask {
	if e.z {
		k := K()
		e.tailK(rem, k)
		return &mask{k: k}
	}
	return &mask{rem: rem}
}

// tailK sets k to the first rem lanes (0 ≤ rem < 16): lane i is selected
// when rem > i, a compare with the iota constant.
func (e *emitter) tailK(rem reg.GPVirtual, k reg.OpmaskVirtual) {
	v := ZMM()
	VPBROADCASTD(rem.As32(), v)
	VPCMPGTD(e.c("iota"), v, k)
}

// laneMask returns the AVX2 lane mask of the tail m (all ones in the first
// rem lanes), emitted on first use.
func (e *emitter) laneMask(m *mask) reg.VecVirtual {
	if m.y == nil {
		v := YMM()
		VMOVD(m.rem.As32(), v.AsX())
		VPBROADCASTD(v.AsX(), v)
		VPCMPGTD(e.c("iota"), v, v)
		m.y = v
	}
	return m.y
}

// cmp returns the lanes where x pred y.
func (e *emitter) cmp(pred uint8, x reg.VecVirtual, y Op) *mask {
	if e.z {
		k := K()
		VCMPPS(Imm(uint64(pred)), y, x, k)
		return &mask{k: k}
	}
	m := YMM()
	VCMPPS(Imm(uint64(pred)), y, x, m)
	return &mask{y: m}
}

// signMask is the lanes of x with the sign bit set.
func (e *emitter) signMask(x reg.VecVirtual) *mask {
	if e.z {
		k := K()
		VPMOVD2M(x, k)
		return &mask{k: k}
	}
	return &mask{y: x} // VBLENDVPS reads the sign bit only
}

// oddMask is the lanes where the int32 x is odd (needs constant int1).
func (e *emitter) oddMask(x reg.VecVirtual) *mask {
	if e.z {
		k := K()
		VPTESTMD(e.c("int1"), x, k)
		return &mask{k: k}
	}
	m := YMM()
	VPSLLD(Imm(31), x, m)
	return &mask{y: m}
}

// blend returns m ? t : f; t may be a memory operand, f must be a register.
func (e *emitter) blend(m *mask, f reg.VecVirtual, t Op) reg.VecVirtual {
	d := e.vec()
	if e.z {
		VBLENDMPS(t, f, m.k, d)
	} else {
		VBLENDVPS(m.y, t, f, d)
	}
	return d
}

// blendInto sets dst = m ? t : dst.
func (e *emitter) blendInto(m *mask, dst reg.VecVirtual, t Op) {
	if e.z {
		VBLENDMPS(t, dst, m.k, dst)
	} else {
		VBLENDVPS(m.y, t, dst, dst)
	}
}

// jumpIfNone jumps to label when no lane of m is set.
func (e *emitter) jumpIfNone(m *mask, label string) {
	if e.z {
		KORTESTW(m.k, m.k)
	} else {
		r := GP32()
		VMOVMSKPS(m.y, r)
		TESTL(r, r)
	}
	JZ(LabelRef(label))
}

// ---------------------------------------------------------------------------
// Loads and stores. A mask m (nil: the whole vector) is a tail: the first
// lanes of the vector. Memory past them is never touched. AVX-512 loads and
// stores with the K register. AVX2 copies the tail one float at a time
// through a 32-byte stack buffer: VMASKMOVPS would do on hardware, but
// qemu-user reads all 32 bytes of a masked load and faults on the tests'
// guard pages, and VMASKMOVPS stores are slow on AMD.

// stageBuf returns the AVX2 tail's 32-byte stack buffer.
func (e *emitter) stageBuf() Mem {
	if e.stage == nil {
		m := AllocLocal(32)
		e.stage = &m
	}
	return *e.stage
}

// copyFloats emits a loop that copies rem (≥ 1) float32, element j from
// from(j) to to(j).
func (e *emitter) copyFloats(rem reg.GPVirtual, from func(j reg.GPVirtual) Mem, to func(j reg.GPVirtual) Mem) {
	e.copies++
	loop := e.label(fmt.Sprintf("copy%d", e.copies))
	j, t := GP64(), GP32()
	XORQ(j, j)
	Label(loop)
	MOVL(from(j), t)
	MOVL(t, to(j))
	INCQ(j)
	CMPQ(j, rem)
	JL(LabelRef(loop))
}

// load reads a vector from src; with a mask it reads only the selected
// lanes and the others are 0.
func (e *emitter) load(src Mem, m *mask) reg.VecVirtual {
	v := e.vec()
	e.loadInto(v, src, m)
	return v
}

// loadInto is load into the register v.
func (e *emitter) loadInto(v reg.VecVirtual, src Mem, m *mask) {
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
}

// store writes v to dst; with a mask only the selected lanes are written.
func (e *emitter) store(v reg.VecVirtual, dst Mem, m *mask) {
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

// ---------------------------------------------------------------------------
// Loops over a slice. No element outside [0, n) is read or written.

// streamUnroll is the number of vectors per iteration of stream's main
// loop, each with its own accumulator where the kernel reduces.
const streamUnroll = 4

// stream emits the loop over n elements (n a register, preserved). body
// emits the work for vector j of the current position: at(p) is the address
// of that vector in the slice based at p, and m is nil except in the tail.
// The loop runs unroll vectors per iteration (j = 0..unroll−1), then one
// vector per iteration (j = 0), then, when 0 < rem < lanes elements are
// left, one masked vector (j = 0). body is emitted unroll+2 times.
func (e *emitter) stream(tag string, n reg.Register, unroll int, body func(j int, at func(reg.Register) Mem, m *mask)) {
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

// loop emits the loop over the n elements of the slice based at src, one
// vector per iteration, for a body too long to emit more than once (stream
// emits its body three times). Each iteration loads the next vector of src
// (lanes past n are 0) and passes it to body with the iteration it, whose
// store writes a result under the same tail; it.next is the label of the
// iteration's end.
func (e *emitter) loop(tag string, n, src reg.Register, body func(x reg.VecVirtual, it *iter)) {
	L := func(s string) string { return e.label(tag + "_" + s) }
	i := GP64()
	XORQ(i, i)

	Label(L("loop"))
	rem := GP64()
	MOVQ(n, rem)
	SUBQ(i, rem)
	JLE(LabelRef(L("done")))
	it := &iter{e: e, tag: tag, i: i, rem: rem, next: L("next")}
	x := e.vec()
	CMPQ(rem, Imm(uint64(e.lanes)))
	JL(LabelRef(L("tailload")))
	if e.z {
		// One masked load for both cases: all lanes, or the tail's.
		k := K()
		ones := GP32()
		MOVL(U32(0xffff), ones)
		KMOVW(ones, k)
		JMP(LabelRef(L("load")))
		Label(L("tailload"))
		e.tailK(rem, k)
		Label(L("load"))
		it.m = &mask{k: k}
		e.loadInto(x, it.at(src), it.m)
	} else {
		e.loadInto(x, it.at(src), nil)
		JMP(LabelRef(L("compute")))
		Label(L("tailload"))
		e.loadInto(x, it.at(src), &mask{rem: rem})
		Label(L("compute"))
	}

	body(x, it)
	Label(it.next)
	ADDQ(Imm(uint64(e.lanes)), i)
	JMP(LabelRef(L("loop")))
	Label(L("done"))
}

// iter is the current iteration of a loop.
type iter struct {
	e      *emitter
	tag    string
	i, rem reg.GPVirtual // the index and the elements left (≥ 1)
	m      *mask         // AVX-512: every lane, or the tail's
	next   string        // the label of the iteration's end
}

// at is the address of the iteration's vector in the slice based at p.
func (it *iter) at(p reg.Register) Mem { return Mem{Base: p, Index: it.i, Scale: 4} }

// store writes v to the iteration's vector of the slice based at p, only
// its first rem lanes in the tail. tag names its labels.
func (it *iter) store(v reg.VecVirtual, p reg.Register, tag string) {
	e := it.e
	if e.z {
		e.store(v, it.at(p), it.m)
		return
	}
	L := func(s string) string { return e.label(it.tag + "_" + tag + s) }
	CMPQ(it.rem, Imm(uint64(e.lanes)))
	JL(LabelRef(L("tail")))
	e.store(v, it.at(p), nil)
	JMP(LabelRef(L("stored")))
	Label(L("tail"))
	e.store(v, it.at(p), &mask{rem: it.rem})
	Label(L("stored"))
}

// load reads the iteration's vector of the slice based at p; in the tail
// only its first rem lanes (the others 0). tag names its labels.
func (it *iter) load(p reg.Register, tag string) reg.VecVirtual {
	e := it.e
	v := e.vec()
	if e.z {
		e.loadInto(v, it.at(p), it.m)
		return v
	}
	L := func(s string) string { return e.label(it.tag + "_" + tag + s) }
	CMPQ(it.rem, Imm(uint64(e.lanes)))
	JL(LabelRef(L("tail")))
	e.loadInto(v, it.at(p), nil)
	JMP(LabelRef(L("loaded")))
	Label(L("tail"))
	e.loadInto(v, it.at(p), &mask{rem: it.rem})
	Label(L("loaded"))
	return v
}
