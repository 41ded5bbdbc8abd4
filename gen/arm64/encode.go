package main

// Typed encoders for the A64 floating-point and Advanced SIMD instructions
// that Go's arm64 assembler lacks (or spells unevenly). Each returns a Word:
// the instruction's 32 bits and its GNU syntax, exactly as
// golang.org/x/arch/arm64/arm64asm's GNUSyntax prints it, so that asm's
// decoder test (asm/arm64words_test.go) can decode every WORD of a
// generated .s file and compare it with its comment.
//
// Every field is range-checked: an encoder panics on a register outside
// V0–V31, an arrangement the instruction does not have, a lane index or a
// shift out of range, or a general register that Go reserves (R18, R26–R30)
// or that is not one (31). The generator turns a panic into a failed run
// that leaves the committed .s untouched.
//
// Operand order follows the A64 manual: destination first, as in the
// comment (fmul(d, n, m, S4) is "fmul vd.4s, vn.4s, vm.4s"), never Go's
// reversed order.

import "fmt"

// Word is one encoded instruction.
type Word struct {
	Bits uint32
	GNU  string // the GNU syntax, as arm64asm.GNUSyntax prints it
}

// String is the line of Go assembly that emits w.
func (w Word) String() string { return fmt.Sprintf("WORD $0x%08x // %s", w.Bits, w.GNU) }

// VReg is a SIMD & FP register, V0–V31 (F0–F31 in Go's scalar syntax).
type VReg uint8

func (v VReg) num() uint32 {
	if v > 31 {
		panic(fmt.Sprintf("arm64: vector register V%d out of range V0–V31", v))
	}
	return uint32(v)
}

// String is the Go assembler's name of the whole register ("V3").
func (v VReg) String() string { v.num(); return fmt.Sprintf("V%d", uint8(v)) }

// F is the Go assembler's name of the register as a scalar ("F3"), as
// FMOVS and FMOVD spell it.
func (v VReg) F() string { v.num(); return fmt.Sprintf("F%d", uint8(v)) }

// Reg is a general-purpose register, R0–R30. Go reserves R18 (platform),
// R26 (closure context), R27 (REGTMP), R28 (g), R29 (frame pointer) and R30
// (link register); generated code names none of them.
type Reg uint8

// reserved reports whether Go's ABI keeps r from assembly bodies.
func (r Reg) reserved() bool { return r == 18 || (r >= 26 && r <= 30) }

func (r Reg) num() uint32 {
	if r > 30 {
		panic(fmt.Sprintf("arm64: general register R%d out of range R0–R30", r))
	}
	if r.reserved() {
		panic(fmt.Sprintf("arm64: R%d is reserved by Go (R18, R26–R30)", r))
	}
	return uint32(r)
}

// String is the Go assembler's name ("R3").
func (r Reg) String() string { r.num(); return fmt.Sprintf("R%d", uint8(r)) }

// Arr is an arrangement: a vector shape (8B … 2D) or a scalar (S, D).
type Arr uint8

// The arrangements. S and D are scalars: with them the floating-point
// encoders emit the scalar instruction ("fadd s0, s1, s2").
const (
	B8 Arr = iota + 1
	B16
	H4
	H8
	S2
	S4
	D2
	S
	D
)

var arrNames = [...]string{B8: "8b", B16: "16b", H4: "4h", H8: "8h", S2: "2s", S4: "4s", D2: "2d", S: "s", D: "d"}

func (a Arr) String() string {
	if a == 0 || int(a) >= len(arrNames) {
		return fmt.Sprintf("Arr(%d)", uint8(a))
	}
	return arrNames[a]
}

// Go is the Go assembler's arrangement suffix ("S4"), for VLD1 and VST1.
func (a Arr) Go() string {
	switch a {
	case B8:
		return "B8"
	case B16:
		return "B16"
	case H4:
		return "H4"
	case H8:
		return "H8"
	case S2:
		return "S2"
	case S4:
		return "S4"
	case D2:
		return "D2"
	}
	panic(fmt.Sprintf("arm64: arrangement %v has no Go vector suffix", a))
}

func (a Arr) scalar() bool { return a == S || a == D }

// q is the Q bit of a vector arrangement (1 for 128 bits).
func (a Arr) q() uint32 {
	switch a {
	case B16, H8, S4, D2:
		return 1
	case B8, H4, S2:
		return 0
	}
	panic(fmt.Sprintf("arm64: %v is not a vector arrangement", a))
}

// size is the two-bit element size field of an integer vector
// arrangement: 0 for B, 1 for H, 2 for S, 3 for D.
func (a Arr) size() uint32 {
	switch a {
	case B8, B16:
		return 0
	case H4, H8:
		return 1
	case S2, S4, S:
		return 2
	case D2, D:
		return 3
	}
	panic(fmt.Sprintf("arm64: bad arrangement %v", a))
}

// esize is the element size in bits.
func (a Arr) esize() int { return 8 << a.size() }

// elem is the element name of a ("s" for S4), for lane operands.
func (a Arr) elem() string { return [...]string{"b", "h", "s", "d"}[a.size()] }

// fpVec checks a floating-point vector arrangement (2S, 4S, 2D) and
// returns its Q and sz bits.
func fpVec(op string, a Arr) (q, sz uint32) {
	switch a {
	case S2:
		return 0, 0
	case S4:
		return 1, 0
	case D2:
		return 1, 1
	}
	panic(fmt.Sprintf("arm64: %s: arrangement %v, want 2s, 4s or 2d", op, a))
}

// fpType is the type field of a scalar floating-point instruction.
func fpType(op string, a Arr) uint32 {
	switch a {
	case S:
		return 0
	case D:
		return 1
	}
	panic(fmt.Sprintf("arm64: %s: scalar arrangement %v, want s or d", op, a))
}

// vn names register v with arrangement a in GNU syntax: "v3.4s", or "s3"
// for a scalar.
func vn(v VReg, a Arr) string {
	if a.scalar() {
		return fmt.Sprintf("%v%d", a, v.num())
	}
	return fmt.Sprintf("v%d.%v", v.num(), a)
}

// lane names lane i of v ("v3.s[1]"), checking i against the element
// size.
func lane(op string, v VReg, a Arr, i int) string {
	if nl := 128 / a.esize(); i < 0 || i >= nl {
		panic(fmt.Sprintf("arm64: %s: lane %d of %s elements out of range 0..%d", op, i, a.elem(), nl-1))
	}
	return fmt.Sprintf("v%d.%s[%d]", v.num(), a.elem(), i)
}

// gpName names a general register as a W (32-bit) or X (64-bit) operand.
func gpName(r Reg, x bool) string {
	if x {
		return fmt.Sprintf("x%d", r.num())
	}
	return fmt.Sprintf("w%d", r.num())
}

func rdn(d, n VReg) uint32 { return n.num()<<5 | d.num() }

// ---------------------------------------------------------------------------
// Floating point, three registers: vector (2S, 4S, 2D) or scalar (S, D).

// fp3 describes one floating-point three-register operation: its vector
// "three same" encoding (U, the a bit 23, opcode bits 15:11) and its
// scalar "data-processing (2 source)" opcode (bits 15:12), −1 when there
// is no scalar form.
type fp3 struct {
	name      string
	u, a, op  uint32
	scalarOpc int
}

func (o fp3) enc(d, n, m VReg, a Arr) Word {
	text := fmt.Sprintf("%s %s, %s, %s", o.name, vn(d, a), vn(n, a), vn(m, a))
	if a.scalar() {
		if o.scalarOpc < 0 {
			panic(fmt.Sprintf("arm64: %s has no scalar form here", o.name))
		}
		return Word{0x1e200800 | fpType(o.name, a)<<22 | m.num()<<16 | uint32(o.scalarOpc)<<12 | rdn(d, n), text}
	}
	q, sz := fpVec(o.name, a)
	return Word{0x0e200400 | q<<30 | o.u<<29 | o.a<<23 | sz<<22 | m.num()<<16 | o.op<<11 | rdn(d, n), text}
}

var (
	opFadd   = fp3{"fadd", 0, 0, 0x1a, 2}
	opFsub   = fp3{"fsub", 0, 1, 0x1a, 3}
	opFmul   = fp3{"fmul", 1, 0, 0x1b, 0}
	opFdiv   = fp3{"fdiv", 1, 0, 0x1f, 1}
	opFmax   = fp3{"fmax", 0, 0, 0x1e, 4}
	opFmin   = fp3{"fmin", 0, 1, 0x1e, 5}
	opFmaxnm = fp3{"fmaxnm", 0, 0, 0x18, 6}
	opFminnm = fp3{"fminnm", 0, 1, 0x18, 7}
	opFmla   = fp3{"fmla", 0, 0, 0x19, -1}
	opFmls   = fp3{"fmls", 0, 1, 0x19, -1}
	opFaddp  = fp3{"faddp", 1, 0, 0x1a, -1}
	opFmaxp  = fp3{"fmaxp", 1, 0, 0x1e, -1}
	opFminp  = fp3{"fminp", 1, 1, 0x1e, -1}
	opFcmeq  = fp3{"fcmeq", 0, 0, 0x1c, -1}
	opFcmge  = fp3{"fcmge", 1, 0, 0x1c, -1}
	opFcmgt  = fp3{"fcmgt", 1, 1, 0x1c, -1}
	opFabd   = fp3{"fabd", 1, 1, 0x1a, -1}
)

// fadd: d = n + m.
func fadd(d, n, m VReg, a Arr) Word { return opFadd.enc(d, n, m, a) }

// fsub: d = n − m.
func fsub(d, n, m VReg, a Arr) Word { return opFsub.enc(d, n, m, a) }

// fmul: d = n·m.
func fmul(d, n, m VReg, a Arr) Word { return opFmul.enc(d, n, m, a) }

// fdiv: d = n/m.
func fdiv(d, n, m VReg, a Arr) Word { return opFdiv.enc(d, n, m, a) }

// fmax: d = max(n, m); NaN if either is NaN.
func fmax(d, n, m VReg, a Arr) Word { return opFmax.enc(d, n, m, a) }

// fmin: d = min(n, m); NaN if either is NaN.
func fmin(d, n, m VReg, a Arr) Word { return opFmin.enc(d, n, m, a) }

// fmaxnm: d = max(n, m), a quiet NaN operand loses to a number.
func fmaxnm(d, n, m VReg, a Arr) Word { return opFmaxnm.enc(d, n, m, a) }

// fminnm: d = min(n, m), a quiet NaN operand loses to a number.
func fminnm(d, n, m VReg, a Arr) Word { return opFminnm.enc(d, n, m, a) }

// fmla: d += n·m, fused (vector only; the scalar form is fmadd).
func fmla(d, n, m VReg, a Arr) Word { return opFmla.enc(d, n, m, a) }

// fmls: d −= n·m, fused (vector only; the scalar form is fmsub).
func fmls(d, n, m VReg, a Arr) Word { return opFmls.enc(d, n, m, a) }

// faddp: pairwise add of the concatenation n:m (vector).
func faddp(d, n, m VReg, a Arr) Word { return opFaddp.enc(d, n, m, a) }

// fmaxp: pairwise maximum of n:m (vector).
func fmaxp(d, n, m VReg, a Arr) Word { return opFmaxp.enc(d, n, m, a) }

// fminp: pairwise minimum of n:m (vector).
func fminp(d, n, m VReg, a Arr) Word { return opFminp.enc(d, n, m, a) }

// fcmeq: d = all ones where n == m.
func fcmeq(d, n, m VReg, a Arr) Word { return opFcmeq.enc(d, n, m, a) }

// fcmge: d = all ones where n ≥ m.
func fcmge(d, n, m VReg, a Arr) Word { return opFcmge.enc(d, n, m, a) }

// fcmgt: d = all ones where n > m.
func fcmgt(d, n, m VReg, a Arr) Word { return opFcmgt.enc(d, n, m, a) }

// fabd: d = |n − m|.
func fabd(d, n, m VReg, a Arr) Word { return opFabd.enc(d, n, m, a) }

// ---------------------------------------------------------------------------
// Floating point, two registers: vector "two-register misc" or scalar
// "data-processing (1 source)".

type fp2 struct {
	name      string
	u, a, op  uint32
	scalarOpc int // bits 20:15 of the scalar form, −1 when none
}

func (o fp2) enc(d, n VReg, a Arr) Word {
	text := fmt.Sprintf("%s %s, %s", o.name, vn(d, a), vn(n, a))
	if a.scalar() {
		if o.scalarOpc < 0 {
			panic(fmt.Sprintf("arm64: %s has no scalar form here", o.name))
		}
		return Word{0x1e204000 | fpType(o.name, a)<<22 | uint32(o.scalarOpc)<<15 | rdn(d, n), text}
	}
	q, sz := fpVec(o.name, a)
	return Word{0x0e200800 | q<<30 | o.u<<29 | o.a<<23 | sz<<22 | o.op<<12 | rdn(d, n), text}
}

var (
	opFabs   = fp2{"fabs", 0, 1, 0x0f, 1}
	opFneg   = fp2{"fneg", 1, 1, 0x0f, 2}
	opFsqrt  = fp2{"fsqrt", 1, 1, 0x1f, 3}
	opFrintn = fp2{"frintn", 0, 0, 0x18, 8}
	opFrintp = fp2{"frintp", 0, 1, 0x18, 9}
	opFrintm = fp2{"frintm", 0, 0, 0x19, 10}
	opFrintz = fp2{"frintz", 0, 1, 0x19, 11}
	opFcvtns = fp2{"fcvtns", 0, 0, 0x1a, -1}
	opFcvtms = fp2{"fcvtms", 0, 0, 0x1b, -1}
	opFcvtps = fp2{"fcvtps", 0, 1, 0x1a, -1}
	opFcvtzs = fp2{"fcvtzs", 0, 1, 0x1b, -1}
	opScvtf  = fp2{"scvtf", 0, 0, 0x1d, -1}
	opUcvtf  = fp2{"ucvtf", 1, 0, 0x1d, -1}
	opFrecpe = fp2{"frecpe", 0, 1, 0x1d, -1}
)

// fabs: d = |n|.
func fabs(d, n VReg, a Arr) Word { return opFabs.enc(d, n, a) }

// fneg: d = −n.
func fneg(d, n VReg, a Arr) Word { return opFneg.enc(d, n, a) }

// fsqrt: d = √n.
func fsqrt(d, n VReg, a Arr) Word { return opFsqrt.enc(d, n, a) }

// frintn: d = n rounded to an integral value, ties to even.
func frintn(d, n VReg, a Arr) Word { return opFrintn.enc(d, n, a) }

// frintp: d = ⌈n⌉.
func frintp(d, n VReg, a Arr) Word { return opFrintp.enc(d, n, a) }

// frintm: d = ⌊n⌋.
func frintm(d, n VReg, a Arr) Word { return opFrintm.enc(d, n, a) }

// frintz: d = n truncated toward zero.
func frintz(d, n VReg, a Arr) Word { return opFrintz.enc(d, n, a) }

// fcvtns: d = n converted to a signed integer, ties to even (vector).
func fcvtns(d, n VReg, a Arr) Word { return opFcvtns.enc(d, n, a) }

// fcvtms: d = ⌊n⌋ as a signed integer (vector).
func fcvtms(d, n VReg, a Arr) Word { return opFcvtms.enc(d, n, a) }

// fcvtps: d = ⌈n⌉ as a signed integer (vector).
func fcvtps(d, n VReg, a Arr) Word { return opFcvtps.enc(d, n, a) }

// fcvtzs: d = n truncated to a signed integer (vector; NaN gives 0).
func fcvtzs(d, n VReg, a Arr) Word { return opFcvtzs.enc(d, n, a) }

// scvtf: d = the signed integer n as a float (vector).
func scvtf(d, n VReg, a Arr) Word { return opScvtf.enc(d, n, a) }

// ucvtf: d = the unsigned integer n as a float (vector).
func ucvtf(d, n VReg, a Arr) Word { return opUcvtf.enc(d, n, a) }

// frecpe: d ≈ 1/n, the 8-bit estimate (vector).
func frecpe(d, n VReg, a Arr) Word { return opFrecpe.enc(d, n, a) }

// fmov: d = n (scalar register copy; for vectors use mov).
func fmov(d, n VReg, a Arr) Word {
	return Word{0x1e204000 | fpType("fmov", a)<<22 | rdn(d, n), fmt.Sprintf("fmov %s, %s", vn(d, a), vn(n, a))}
}

// ---------------------------------------------------------------------------
// Floating point, reductions.

// fpAcross is an across-lanes reduction of a 4S vector to a scalar.
func fpAcross(name string, a, op uint32, d, n VReg, arr Arr) Word {
	if arr != S4 {
		panic(fmt.Sprintf("arm64: %s: arrangement %v, want 4s", name, arr))
	}
	return Word{0x6e300800 | a<<23 | op<<12 | rdn(d, n), fmt.Sprintf("%s s%d, %s", name, d.num(), vn(n, arr))}
}

// fmaxv: s(d) = the maximum of the four lanes of n (NaN if any is NaN).
func fmaxv(d, n VReg, a Arr) Word { return fpAcross("fmaxv", 0, 0x0f, d, n, a) }

// fminv: s(d) = the minimum of the four lanes of n.
func fminv(d, n VReg, a Arr) Word { return fpAcross("fminv", 1, 0x0f, d, n, a) }

// fmaxnmv: s(d) = the maxNum of the four lanes of n.
func fmaxnmv(d, n VReg, a Arr) Word { return fpAcross("fmaxnmv", 0, 0x0c, d, n, a) }

// fminnmv: s(d) = the minNum of the four lanes of n.
func fminnmv(d, n VReg, a Arr) Word { return fpAcross("fminnmv", 1, 0x0c, d, n, a) }

// fpPairScalar is a scalar pairwise operation: d = op(lane 0, lane 1) of
// n, whose arrangement is 2S (result s) or 2D (result d).
func fpPairScalar(name string, a, op uint32, d, n VReg, arr Arr) Word {
	var sz uint32
	res := "s"
	switch arr {
	case S2:
	case D2:
		sz, res = 1, "d"
	default:
		panic(fmt.Sprintf("arm64: %s (scalar): arrangement %v, want 2s or 2d", name, arr))
	}
	return Word{0x7e300800 | a<<23 | sz<<22 | op<<12 | rdn(d, n), fmt.Sprintf("%s %s%d, %s", name, res, d.num(), vn(n, arr))}
}

// faddpScalar: d = n[0] + n[1] (arrangement 2S or 2D names n).
func faddpScalar(d, n VReg, a Arr) Word { return fpPairScalar("faddp", 0, 0x0d, d, n, a) }

// fmaxpScalar: d = max(n[0], n[1]).
func fmaxpScalar(d, n VReg, a Arr) Word { return fpPairScalar("fmaxp", 0, 0x0f, d, n, a) }

// fminpScalar: d = min(n[0], n[1]).
func fminpScalar(d, n VReg, a Arr) Word { return fpPairScalar("fminp", 1, 0x0f, d, n, a) }

// ---------------------------------------------------------------------------
// Floating point by element: d op= n·m[i] on every lane of d (vector).

func fpElem(name string, u, op uint32, d, n, m VReg, a Arr, i int) Word {
	q, sz := fpVec(name, a)
	el := S
	if sz == 1 {
		el = D
	}
	text := fmt.Sprintf("%s %s, %s, %s", name, vn(d, a), vn(n, a), lane(name, m, el, i))
	var h, l uint32
	if sz == 0 {
		h, l = uint32(i)>>1, uint32(i)&1
	} else {
		h = uint32(i)
	}
	return Word{0x0f800000 | q<<30 | u<<29 | sz<<22 | l<<21 | m.num()<<16 | op<<12 | h<<11 | rdn(d, n), text}
}

// fmlaElem: d += n·m[i], fused.
func fmlaElem(d, n, m VReg, a Arr, i int) Word { return fpElem("fmla", 0, 0x1, d, n, m, a, i) }

// fmlsElem: d −= n·m[i], fused.
func fmlsElem(d, n, m VReg, a Arr, i int) Word { return fpElem("fmls", 0, 0x5, d, n, m, a, i) }

// fmulElem: d = n·m[i].
func fmulElem(d, n, m VReg, a Arr, i int) Word { return fpElem("fmul", 0, 0x9, d, n, m, a, i) }

// ---------------------------------------------------------------------------
// Scalar fused multiply-add and compares.

func fpFused(name string, o1, o0 uint32, d, n, m, ra VReg, a Arr) Word {
	return Word{0x1f000000 | fpType(name, a)<<22 | o1<<21 | m.num()<<16 | o0<<15 | ra.num()<<10 | rdn(d, n),
		fmt.Sprintf("%s %s, %s, %s, %s", name, vn(d, a), vn(n, a), vn(m, a), vn(ra, a))}
}

// fmadd: d = ra + n·m, fused (scalar S or D).
func fmadd(d, n, m, ra VReg, a Arr) Word { return fpFused("fmadd", 0, 0, d, n, m, ra, a) }

// fmsub: d = ra − n·m, fused.
func fmsub(d, n, m, ra VReg, a Arr) Word { return fpFused("fmsub", 0, 1, d, n, m, ra, a) }

// fnmadd: d = −ra − n·m, fused.
func fnmadd(d, n, m, ra VReg, a Arr) Word { return fpFused("fnmadd", 1, 0, d, n, m, ra, a) }

// fnmsub: d = n·m − ra, fused.
func fnmsub(d, n, m, ra VReg, a Arr) Word { return fpFused("fnmsub", 1, 1, d, n, m, ra, a) }

// fcmp sets the flags from n compared with m (scalar): after it, EQ means
// equal, NE also unordered; LT also unordered, GE never.
func fcmp(n, m VReg, a Arr) Word {
	return Word{0x1e202000 | fpType("fcmp", a)<<22 | m.num()<<16 | n.num()<<5,
		fmt.Sprintf("fcmp %s, %s", vn(n, a), vn(m, a))}
}

// fcmpZero sets the flags from n compared with +0 (scalar).
func fcmpZero(n VReg, a Arr) Word {
	return Word{0x1e202008 | fpType("fcmp", a)<<22 | n.num()<<5, fmt.Sprintf("fcmp %s, #0", vn(n, a))}
}

// ---------------------------------------------------------------------------
// Integer vector arithmetic, shifts and bitwise operations.

func intVec(name string, a Arr) (q, size uint32) {
	if a.scalar() {
		panic(fmt.Sprintf("arm64: %s: arrangement %v, want a vector", name, a))
	}
	q, size = a.q(), a.size()
	if size == 3 && q == 0 {
		panic(fmt.Sprintf("arm64: %s: arrangement 1d is not supported", name))
	}
	return q, size
}

func int3(name string, u, op uint32, d, n, m VReg, a Arr) Word {
	q, size := intVec(name, a)
	return Word{0x0e200400 | q<<30 | u<<29 | size<<22 | m.num()<<16 | op<<11 | rdn(d, n),
		fmt.Sprintf("%s %s, %s, %s", name, vn(d, a), vn(n, a), vn(m, a))}
}

// add: d = n + m (integer lanes).
func add(d, n, m VReg, a Arr) Word { return int3("add", 0, 0x10, d, n, m, a) }

// sub: d = n − m (integer lanes).
func sub(d, n, m VReg, a Arr) Word { return int3("sub", 1, 0x10, d, n, m, a) }

// cmgt: d = all ones where the signed lane n > m.
func cmgt(d, n, m VReg, a Arr) Word { return int3("cmgt", 0, 0x06, d, n, m, a) }

// shiftImm encodes SHL (left) or SSHR/USHR (right) by the immediate sh.
func shiftImm(name string, u, op uint32, left bool, d, n VReg, a Arr, sh int) Word {
	q, _ := intVec(name, a)
	es := a.esize()
	var immhb int
	if left {
		if sh < 0 || sh >= es {
			panic(fmt.Sprintf("arm64: %s: shift %d out of range 0..%d", name, sh, es-1))
		}
		immhb = es + sh
	} else {
		if sh < 1 || sh > es {
			panic(fmt.Sprintf("arm64: %s: shift %d out of range 1..%d", name, sh, es))
		}
		immhb = 2*es - sh
	}
	return Word{0x0f000400 | q<<30 | u<<29 | uint32(immhb)<<16 | op<<11 | rdn(d, n),
		fmt.Sprintf("%s %s, %s, #%d", name, vn(d, a), vn(n, a), sh)}
}

// shl: d = n << sh (integer lanes).
func shl(d, n VReg, a Arr, sh int) Word { return shiftImm("shl", 0, 0x0a, true, d, n, a, sh) }

// sshr: d = n >> sh, arithmetic (signed lanes).
func sshr(d, n VReg, a Arr, sh int) Word { return shiftImm("sshr", 0, 0x00, false, d, n, a, sh) }

// ushr: d = n >> sh, logical.
func ushr(d, n VReg, a Arr, sh int) Word { return shiftImm("ushr", 1, 0x00, false, d, n, a, sh) }

func logic(name string, u, opc uint32, d, n, m VReg, a Arr) Word {
	if a != B8 && a != B16 {
		panic(fmt.Sprintf("arm64: %s: arrangement %v, want 8b or 16b", name, a))
	}
	return Word{0x0e201c00 | a.q()<<30 | u<<29 | opc<<22 | m.num()<<16 | rdn(d, n),
		fmt.Sprintf("%s %s, %s, %s", name, vn(d, a), vn(n, a), vn(m, a))}
}

// and: d = n & m.
func and(d, n, m VReg, a Arr) Word { return logic("and", 0, 0, d, n, m, a) }

// bic: d = n &^ m.
func bic(d, n, m VReg, a Arr) Word { return logic("bic", 0, 1, d, n, m, a) }

// orr: d = n | m (n ≠ m; orr with n = m is mov).
func orr(d, n, m VReg, a Arr) Word {
	if n == m {
		panic("arm64: orr with equal sources is mov; call mov")
	}
	return logic("orr", 0, 2, d, n, m, a)
}

// eor: d = n ^ m.
func eor(d, n, m VReg, a Arr) Word { return logic("eor", 1, 0, d, n, m, a) }

// bsl: d = (d & n) | (^d & m): d is the selector.
func bsl(d, n, m VReg, a Arr) Word { return logic("bsl", 1, 1, d, n, m, a) }

// bit: d = (n & m) | (d &^ m): insert n where m is set.
func bit(d, n, m VReg, a Arr) Word { return logic("bit", 1, 2, d, n, m, a) }

// bif: d = (n &^ m) | (d & m): insert n where m is clear.
func bif(d, n, m VReg, a Arr) Word { return logic("bif", 1, 3, d, n, m, a) }

// mov copies the vector n to d (ORR d, n, n).
func mov(d, n VReg, a Arr) Word {
	if a != B8 && a != B16 {
		panic(fmt.Sprintf("arm64: mov: arrangement %v, want 8b or 16b", a))
	}
	return Word{0x0ea01c00 | a.q()<<30 | n.num()<<16 | rdn(d, n), fmt.Sprintf("mov %s, %s", vn(d, a), vn(n, a))}
}

// moviZero sets all 128 bits of d to zero.
func moviZero(d VReg) Word {
	return Word{0x6f00e400 | d.num(), fmt.Sprintf("movi v%d.2d, #0x0", d.num())}
}

// ---------------------------------------------------------------------------
// Copies between lanes and general registers.

// imm5 is the element size and lane index field of DUP, INS and friends.
func imm5(name string, el Arr, i int) uint32 {
	lane(name, 0, el, i) // range check
	s := el.size()
	return (uint32(i)<<1 | 1) << s
}

// dupElem: every lane of d = n[i].
func dupElem(d, n VReg, a Arr, i int) Word {
	q, _ := intVec("dup", a)
	return Word{0x0e000400 | q<<30 | imm5("dup", a, i)<<16 | rdn(d, n),
		fmt.Sprintf("dup %s, %s", vn(d, a), lane("dup", n, a, i))}
}

// dupGen: every lane of d = the general register r (W for B, H and S
// lanes, X for D).
func dupGen(d VReg, r Reg, a Arr) Word {
	q, size := intVec("dup", a)
	return Word{0x0e000c00 | q<<30 | imm5("dup", a, 0)<<16 | r.num()<<5 | d.num(),
		fmt.Sprintf("dup %s, %s", vn(d, a), gpName(r, size == 3))}
}

// insGen: lane i of d = the general register r; the other lanes keep
// their values.
func insGen(d VReg, i int, r Reg, el Arr) Word {
	return Word{0x4e001c00 | imm5("mov", el, i)<<16 | r.num()<<5 | d.num(),
		fmt.Sprintf("mov %s, %s", lane("mov", d, el, i), gpName(r, el.size() == 3))}
}

// dupScalar: the scalar d (S or D) = n[i]; the other lanes of d become 0.
func dupScalar(d, n VReg, i int, a Arr) Word {
	fpType("mov", a)
	return Word{0x5e000400 | imm5("mov", a, i)<<16 | rdn(d, n),
		fmt.Sprintf("mov %s, %s", vn(d, a), lane("mov", n, a, i))}
}
