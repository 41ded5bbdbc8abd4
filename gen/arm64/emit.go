package main

// The emitter: a .s file (File) of constant tables and function bodies
// (Func), register allocation, the Go-syntax instructions the kernels use
// (argument moves, loads and stores, loop control) and the helpers that
// every streaming kernel shares: the unrolled loop with its scalar tail
// (stream), horizontal reductions (sumLanes, maxLanes), constant tables
// (ConstTable, loadConsts) and the vector exp (exp).
//
// What is spelled how: floating-point and SIMD data processing is emitted
// as WORD with the GNU syntax in a comment (encode.go), because Go's
// assembler lacks most of it; argument moves, loads and stores (MOVD,
// FMOVS, VLD1, VST1), integer loop control, branches and RET use Go's
// mnemonics, so that go vet's asmdecl checks the frame and the assembler
// resolves addresses and labels.

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/marginloss/marginloss/internal/kconst"
)

// File is one generated .s file: its constant tables, then its bodies.
type File struct {
	stubs  map[string]*ast.FuncDecl // bodiless declarations of the asm package's *_arm64.go
	owner  map[string]string        // stub name → the .go file that declares it
	named  map[string]ast.Expr      // the package's type declarations: name → type; nil when declared twice
	tables []*ConstTable
	funcs  []*Func
}

// newFile reads the non-test .go files of the package in pkgDir: the stub
// declarations (functions without a body) of its *_arm64.go files, which
// Implement looks up, and the types it declares, which lay out a stub's
// struct and array parameters.
func newFile(pkgDir string) (*File, error) {
	names, err := filepath.Glob(filepath.Join(pkgDir, "*.go"))
	if err != nil {
		return nil, err
	}
	f := &File{stubs: map[string]*ast.FuncDecl{}, owner: map[string]string{}, named: map[string]ast.Expr{}}
	fset := token.NewFileSet()
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		stubs := strings.HasSuffix(name, "_arm64.go")
		for _, d := range src.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if stubs && d.Body == nil && d.Recv == nil {
					f.stubs[d.Name.Name] = d
					f.owner[d.Name.Name] = filepath.Base(name)
				}
			case *ast.GenDecl:
				if d.Tok != token.TYPE {
					continue
				}
				for _, spec := range d.Specs {
					ts := spec.(*ast.TypeSpec)
					if ts.TypeParams != nil {
						continue
					}
					typ := ts.Type
					if _, twice := f.named[ts.Name.Name]; twice {
						typ = nil // per-architecture declarations: which one is meant is not known here
					}
					f.named[ts.Name.Name] = typ
				}
			}
		}
	}
	return f, nil
}

// Consts adds a read-only constant table, emitted as the file-local symbol
// sym<>(SB).
func (f *File) Consts(sym string) *ConstTable {
	t := &ConstTable{sym: sym, lanes: map[string]constLane{}, packs: map[string]int{}}
	f.tables = append(f.tables, t)
	return t
}

// Implement starts the body of the stub name, declared without a body in
// one of the package's *_arm64.go files; its frame comes from that
// declaration (layout), struct and array parameters included. doc is the
// body's comment, its first word the name.
func (f *File) Implement(name, doc string) *Func {
	fd, ok := f.stubs[name]
	if !ok {
		panic(fmt.Sprintf("arm64: no stub %s in the package's *_arm64.go files", name))
	}
	for _, g := range f.funcs {
		if g.name == name {
			panic("arm64: " + name + " implemented twice")
		}
	}
	e := &Func{name: name, doc: doc, sig: types.ExprString(fd.Type), args: map[string]argSlot{}, labels: map[string]bool{}}
	e.argSize = f.layout(name, fd.Type, e.args)
	f.funcs = append(f.funcs, e)
	return e
}

// checkImplemented fails unless every stub declared in goFile has a body.
func (f *File) checkImplemented(goFile string) error {
	done := map[string]bool{}
	for _, g := range f.funcs {
		done[g.name] = true
	}
	var missing []string
	for name, owner := range f.owner {
		if owner == goFile && !done[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("stubs in %s without a body: %v", goFile, missing)
	}
	return nil
}

// bytes is the whole .s file; header is its first comment line.
func (f *File) bytes(header string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// %s\n\n//go:build !purego\n\n#include \"textflag.h\"\n", header)
	for _, t := range f.tables {
		b.WriteString("\n")
		t.write(&b)
	}
	for _, e := range f.funcs {
		b.WriteString("\n")
		e.write(&b)
	}
	return b.Bytes()
}

// ---------------------------------------------------------------------------
// Functions.

// Func is one body. Its methods append instructions; registers come from
// small allocators that never hand out R18, R26–R30.
type Func struct {
	name, doc, sig string
	args           map[string]argSlot
	argSize        int
	lines          []string
	labels         map[string]bool
	vUsed          uint32 // bit i: Vi is allocated
	gUsed          uint32 // bit i: Ri is allocated
}

// argSlot is one named word of the argument frame, as asmdecl names it:
// x_base, x_len, x_cap for a slice x; p_f for the field f of a struct p,
// a_0, a_1, … for the elements of an array a (recursively: p_kthr_0); ret,
// ret1, … for unnamed results.
type argSlot struct{ off, size int }

// layout computes the argument frame of the stub name of type ft as go
// vet's asmdecl does: parameters in order, each aligned to its type, then
// the results from the next multiple of 8. It records the frame's words in
// args and returns the frame's size.
func (f *File) layout(name string, ft *ast.FuncType, args map[string]argSlot) int {
	off := 0
	add := func(fields *ast.FieldList, results bool) {
		if fields == nil {
			return
		}
		i := 0
		for _, fl := range fields.List {
			names := []string{""}
			if len(fl.Names) > 0 {
				names = names[:0]
				for _, id := range fl.Names {
					names = append(names, id.Name)
				}
			}
			for _, arg := range names {
				if arg == "" || arg == "_" {
					if !results {
						panic("arm64: " + name + ": unnamed parameter")
					}
					arg = "ret"
					if i > 0 {
						arg = fmt.Sprintf("ret%d", i)
					}
				}
				size, align := f.sizeAlign(fl.Type)
				off += -off & (align - 1)
				f.place(args, arg, fl.Type, off)
				off += size
				i++
			}
		}
	}
	add(ft.Params, false)
	if ft.Results != nil {
		off += -off & 7
		add(ft.Results, true)
	}
	return off
}

// basicSizes are the sizes (and alignments) on arm64 of the predeclared
// types a frame word can have.
var basicSizes = map[string]int{
	"float32": 4, "int32": 4, "uint32": 4,
	"float64": 8, "int": 8, "uint": 8, "int64": 8, "uint64": 8, "uintptr": 8,
	"int16": 2, "uint16": 2,
	"int8": 1, "uint8": 1, "byte": 1, "bool": 1,
}

// underlying is the type that t denotes: t itself, or for a type the
// package declares (type marginParams struct{…}) its definition.
func (f *File) underlying(t ast.Expr) ast.Expr {
	for {
		id, ok := t.(*ast.Ident)
		if !ok {
			return t
		}
		def, ok := f.named[id.Name]
		if !ok {
			return t // predeclared
		}
		if def == nil {
			panic(fmt.Sprintf("arm64: type %s is declared more than once in the package", id.Name))
		}
		t = def
	}
}

// sizeAlign is the size and alignment on arm64 of the parameter type t:
// a predeclared type, a pointer, a slice, or a struct or array of those.
func (f *File) sizeAlign(t ast.Expr) (size, align int) {
	switch u := f.underlying(t).(type) {
	case *ast.Ident:
		if n, ok := basicSizes[u.Name]; ok {
			return n, n
		}
	case *ast.StarExpr:
		return 8, 8
	case *ast.ArrayType:
		if u.Len == nil {
			return 24, 8
		}
		s, a := f.sizeAlign(u.Elt)
		return s * arrayLen(u), a
	case *ast.StructType:
		return f.fields(u, nil)
	}
	panic(fmt.Sprintf("arm64: parameter type %s not supported", types.ExprString(t)))
}

// fields calls visit (when not nil) with each field of st and its offset,
// and returns the struct's size (padded to its alignment) and alignment
// (its largest field's).
func (f *File) fields(st *ast.StructType, visit func(name string, t ast.Expr, off int)) (size, align int) {
	off, align := 0, 1
	for _, fl := range st.Fields.List {
		if len(fl.Names) == 0 {
			panic(fmt.Sprintf("arm64: struct %s: embedded fields are not supported", types.ExprString(st)))
		}
		s, a := f.sizeAlign(fl.Type)
		align = max(align, a)
		for _, id := range fl.Names {
			off += -off & (a - 1)
			if visit != nil {
				visit(id.Name, fl.Type, off)
			}
			off += s
		}
	}
	return off + -off&(align-1), align
}

// place records in args the frame words of the parameter (or component)
// name of type t at off: one word, a slice's three, or a struct's or an
// array's components, named as asmdecl names them.
func (f *File) place(args map[string]argSlot, name string, t ast.Expr, off int) {
	switch u := f.underlying(t).(type) {
	case *ast.StructType:
		f.fields(u, func(field string, ft ast.Expr, o int) { f.place(args, name+"_"+field, ft, off+o) })
		return
	case *ast.ArrayType:
		if u.Len == nil {
			for k, part := range []string{"_base", "_len", "_cap"} {
				args[name+part] = argSlot{off + 8*k, 8}
			}
			return
		}
		s, _ := f.sizeAlign(u.Elt)
		for i := range arrayLen(u) {
			f.place(args, name+"_"+strconv.Itoa(i), u.Elt, off+i*s)
		}
		return
	}
	size, _ := f.sizeAlign(t)
	args[name] = argSlot{off, size}
}

// arrayLen is the length of an array type written with a decimal literal.
func arrayLen(t *ast.ArrayType) int {
	if lit, ok := t.Len.(*ast.BasicLit); ok && lit.Kind == token.INT {
		if n, err := strconv.Atoi(lit.Value); err == nil {
			return n
		}
	}
	panic(fmt.Sprintf("arm64: array length %s is not a decimal literal", types.ExprString(t.Len)))
}

// arg is the memory operand of frame word name ("x_base+0(FP)").
func (e *Func) arg(name string, size int) string {
	s, ok := e.args[name]
	if !ok {
		panic(fmt.Sprintf("arm64: %s has no argument %s", e.name, name))
	}
	if s.size != size {
		panic(fmt.Sprintf("arm64: %s: argument %s has %d bytes, not %d", e.name, name, s.size, size))
	}
	return fmt.Sprintf("%s+%d(FP)", name, s.off)
}

func (e *Func) write(b *bytes.Buffer) {
	for _, l := range strings.Split(e.doc, "\n") {
		fmt.Fprintf(b, "// %s\n", l)
	}
	fmt.Fprintf(b, "//\n// func %s%s\n", e.name, strings.TrimPrefix(e.sig, "func"))
	fmt.Fprintf(b, "TEXT ·%s(SB), NOSPLIT, $0-%d\n", e.name, e.argSize)
	for _, l := range e.lines {
		b.WriteString(l)
		b.WriteString("\n")
	}
}

// I emits encoded instructions.
func (e *Func) I(ws ...Word) {
	for _, w := range ws {
		e.lines = append(e.lines, "\t"+w.String())
	}
}

// Op emits one instruction in Go syntax; args format with %v (Reg and VReg
// print their Go names, checked).
func (e *Func) Op(format string, args ...any) {
	e.lines = append(e.lines, "\t"+fmt.Sprintf(format, args...))
}

// Comment emits a comment line.
func (e *Func) Comment(format string, args ...any) {
	e.lines = append(e.lines, "\t// "+fmt.Sprintf(format, args...))
}

// Label places a label; names must be unique within the body.
func (e *Func) Label(name string) {
	if e.labels[name] {
		panic(fmt.Sprintf("arm64: %s: label %s placed twice", e.name, name))
	}
	e.labels[name] = true
	e.lines = append(e.lines, name+":")
}

// RET returns.
func (e *Func) RET() { e.Op("RET") }

// LoadArg loads the 8-byte argument word name (a slice's base or length,
// an int, a pointer) into a new general register.
func (e *Func) LoadArg(name string) Reg {
	r := e.GP()
	e.Op("MOVD %s, %v", e.arg(name, 8), r)
	return r
}

// LoadArgF loads the float32 (FMOVS) or float64 (FMOVD) argument name into
// lane 0 of a new vector register; the other lanes are zeroed.
func (e *Func) LoadArgF(name string) VReg {
	v := e.V()
	e.LoadArgFTo(name, v)
	return v
}

// LoadArgFTo loads the float argument name into lane 0 of v.
func (e *Func) LoadArgFTo(name string, v VReg) {
	if s, ok := e.args[name]; ok && s.size == 8 {
		e.Op("FMOVD %s, %s", e.arg(name, 8), v.F())
		return
	}
	e.Op("FMOVS %s, %s", e.arg(name, 4), v.F())
}

// StoreF stores lane 0 of v into the float32 result (or argument) name.
func (e *Func) StoreF(v VReg, name string) {
	e.Op("FMOVS %s, %s", v.F(), e.arg(name, 4))
}

// ---------------------------------------------------------------------------
// Register allocation.

// gpPool is the order in which GP registers are handed out: every register
// Go lets assembly use, none of R18, R26–R30.
var gpPool = func() []Reg {
	var rs []Reg
	for r := Reg(0); r <= 25; r++ {
		if !r.reserved() {
			rs = append(rs, r)
		}
	}
	return rs
}()

// GP allocates a general register.
func (e *Func) GP() Reg {
	for _, r := range gpPool {
		if e.gUsed&(1<<r) == 0 {
			e.gUsed |= 1 << r
			return r
		}
	}
	panic("arm64: " + e.name + ": out of general registers")
}

// FreeGP releases general registers.
func (e *Func) FreeGP(rs ...Reg) {
	for _, r := range rs {
		if e.gUsed&(1<<r) == 0 {
			panic(fmt.Sprintf("arm64: %s: R%d freed twice", e.name, r))
		}
		e.gUsed &^= 1 << r
	}
}

// Vs allocates k consecutive vector registers (as VLD1 and VST1 lists
// need), the lowest free run.
func (e *Func) Vs(k int) []VReg { return e.vrun(k, false) }

// VsTop allocates k consecutive vector registers, the highest free run
// (constants live at the top, working registers at the bottom).
func (e *Func) VsTop(k int) []VReg { return e.vrun(k, true) }

// V allocates one vector register.
func (e *Func) V() VReg { return e.Vs(1)[0] }

func (e *Func) vrun(k int, top bool) []VReg {
	if k < 1 || k > 32 {
		panic(fmt.Sprintf("arm64: %d vector registers", k))
	}
	mask := uint32(1)<<k - 1
	if k == 32 {
		mask = ^uint32(0)
	}
	for i := 0; i+k <= 32; i++ {
		lo := i
		if top {
			lo = 32 - k - i
		}
		if e.vUsed&(mask<<lo) == 0 {
			e.vUsed |= mask << lo
			vs := make([]VReg, k)
			for j := range vs {
				vs[j] = VReg(lo + j)
			}
			return vs
		}
	}
	panic(fmt.Sprintf("arm64: %s: no %d free consecutive vector registers", e.name, k))
}

// FreeV releases vector registers.
func (e *Func) FreeV(vs ...VReg) {
	for _, v := range vs {
		bit := uint32(1) << v.num()
		if e.vUsed&bit == 0 {
			panic(fmt.Sprintf("arm64: %s: V%d freed twice", e.name, v))
		}
		e.vUsed &^= bit
	}
}

// ---------------------------------------------------------------------------
// Loads and stores (Go syntax).

// regList is a VLD1/VST1 register list: 1 to 4 consecutive registers.
func regList(a Arr, vs []VReg) string {
	if len(vs) < 1 || len(vs) > 4 {
		panic(fmt.Sprintf("arm64: register list of %d registers, want 1..4", len(vs)))
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		if i > 0 && v.num() != vs[i-1].num()+1 {
			panic(fmt.Sprintf("arm64: register list %v is not consecutive", vs))
		}
		parts[i] = fmt.Sprintf("%v.%s", v, a.Go())
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func vecBytes(a Arr, n int) int { return n * (8 << a.q()) }

// Ld1 loads the consecutive registers vs from (base); post advances base
// past them.
func (e *Func) Ld1(base Reg, post bool, a Arr, vs ...VReg) {
	if post {
		e.Op("VLD1.P %d(%v), %s", vecBytes(a, len(vs)), base, regList(a, vs))
		return
	}
	e.Op("VLD1 (%v), %s", base, regList(a, vs))
}

// St1 stores the consecutive registers vs to (base); post advances base
// past them.
func (e *Func) St1(base Reg, post bool, a Arr, vs ...VReg) {
	if post {
		e.Op("VST1.P %s, %d(%v)", regList(a, vs), vecBytes(a, len(vs)), base)
		return
	}
	e.Op("VST1 %s, (%v)", regList(a, vs), base)
}

// LdrSPost loads one float32 from (base) into lane 0 of v (zeroing the
// other lanes) and advances base by 4.
func (e *Func) LdrSPost(v VReg, base Reg) { e.Op("FMOVS.P 4(%v), %s", base, v.F()) }

// StrSPost stores lane 0 of v to (base) and advances base by 4.
func (e *Func) StrSPost(v VReg, base Reg) { e.Op("FMOVS.P %s, 4(%v)", v.F(), base) }

// ---------------------------------------------------------------------------
// Constant tables.

// ConstTable is a read-only table of 16-byte packs, each loaded into one
// vector register: a splat (one float32 in all four lanes, for operands of
// the vector forms) or up to four different float32 lanes (for the
// by-element forms: fmlaElem(d, n, pack, S4, lane), so that four constants
// take one register).
type ConstTable struct {
	sym   string
	order []constPack
	packs map[string]int       // pack name → index
	lanes map[string]constLane // lane name → where it is
}

type constPack struct {
	name  string
	bits  [4]uint32
	notes [4]string
}

type constLane struct {
	pack, lane int
}

// C is a named float32 constant of a pack, rounded as Go rounds an untyped
// constant in a float32 expression: float32(c).
type C struct {
	Name string
	Val  float32
}

// Pack adds a pack of up to four named constants (lanes 0, 1, …; the rest
// are 0).
func (t *ConstTable) Pack(name string, cs ...C) {
	if len(cs) < 1 || len(cs) > 4 {
		panic(fmt.Sprintf("arm64: pack %s of %d constants", name, len(cs)))
	}
	p := constPack{name: name}
	for i, c := range cs {
		if _, dup := t.lanes[c.Name]; dup {
			panic("arm64: constant " + c.Name + " twice")
		}
		p.bits[i], p.notes[i] = math.Float32bits(c.Val), c.Name
		t.lanes[c.Name] = constLane{len(t.order), i}
	}
	t.add(p)
}

// Splat adds a pack holding v in all four lanes.
func (t *ConstTable) Splat(name string, v float32) { t.SplatBits(name, math.Float32bits(v)) }

// SplatBits adds a pack holding the 32-bit pattern b in all four lanes.
func (t *ConstTable) SplatBits(name string, b uint32) {
	p := constPack{name: name}
	for i := range p.bits {
		p.bits[i], p.notes[i] = b, name
	}
	t.add(p)
}

func (t *ConstTable) add(p constPack) {
	if _, dup := t.packs[p.name]; dup {
		panic("arm64: pack " + p.name + " twice")
	}
	t.packs[p.name] = len(t.order)
	t.order = append(t.order, p)
}

func (t *ConstTable) write(b *bytes.Buffer) {
	for i, p := range t.order {
		for j, bits := range p.bits {
			note := p.notes[j]
			if note == "" {
				note = "(unused)"
			}
			fmt.Fprintf(b, "DATA %s<>+%d(SB)/4, $0x%08x // %s\n", t.sym, 16*i+4*j, bits, note)
		}
	}
	fmt.Fprintf(b, "GLOBL %s<>(SB), RODATA|NOPTR, $%d\n", t.sym, 16*len(t.order))
}

// Consts are packs loaded into registers.
type Consts struct {
	t    *ConstTable
	regs map[string]VReg // pack name → register
}

// V is the register holding the pack name (a splat, for vector operands).
func (c Consts) V(name string) VReg {
	v, ok := c.regs[name]
	if !ok {
		panic("arm64: pack " + name + " not loaded")
	}
	return v
}

// L is the register and lane of the constant name (for by-element forms
// and dupElem).
func (c Consts) L(name string) (VReg, int) {
	l, ok := c.t.lanes[name]
	if !ok {
		panic("arm64: no constant " + name)
	}
	return c.V(c.t.order[l.pack].name), l.lane
}

// loadConsts loads the named packs of t into registers allocated from the
// top: one address computation per run of packs adjacent in the table,
// then VLD1 of up to four registers at a time.
func (e *Func) loadConsts(t *ConstTable, names ...string) Consts {
	c := Consts{t: t, regs: map[string]VReg{}}
	idx := make([]int, len(names))
	for i, n := range names {
		k, ok := t.packs[n]
		if !ok {
			panic("arm64: no pack " + n + " in " + t.sym)
		}
		idx[i] = k
	}
	regs := e.VsTop(len(names))
	p := e.GP()
	for i := 0; i < len(names); {
		j := i + 1
		for j < len(names) && idx[j] == idx[j-1]+1 {
			j++
		}
		e.Op("MOVD $%s<>+%d(SB), %v", t.sym, 16*idx[i], p)
		for k := i; k < j; k += 4 {
			end := min(j, k+4)
			e.Ld1(p, end < j, S4, regs[k:end]...)
		}
		i = j
	}
	e.FreeGP(p)
	for i, n := range names {
		c.regs[n] = regs[i]
	}
	return c
}

// ---------------------------------------------------------------------------
// The streaming loop.

// unroll is the number of vectors per iteration of a stream's main loop,
// each with its own accumulator where the kernel reduces.
const unroll = 4

// lanes is the number of float32 lanes of a vector register.
const lanes = 4

// Step is one position of a stream: K vectors of 4 lanes (K = unroll in the
// main loop, 1 in the single-vector loop), or in the tail one element in
// lane 0 (K = 1, Tail), the other lanes 0. Registers a step allocates (Load,
// V, Vs) are freed after it.
type Step struct {
	e      *Func
	K      int
	Tail   bool
	cursor map[Reg]Reg  // slice base → the loop's cursor
	moved  map[Reg]bool // cursors already advanced in this step
	temps  []VReg
}

func (s *Step) cur(p Reg) Reg {
	c, ok := s.cursor[p]
	if !ok {
		panic(fmt.Sprintf("arm64: %s: %v is not a stream pointer", s.e.name, p))
	}
	if s.moved[p] {
		panic(fmt.Sprintf("arm64: %s: stream pointer %v used twice in one step", s.e.name, p))
	}
	s.moved[p] = true
	return c
}

// Load reads this step's elements of the slice based at p: K consecutive
// registers, or one in the tail. No byte outside the step is read.
func (s *Step) Load(p Reg) []VReg {
	c := s.cur(p)
	vs := s.Vs(s.K)
	if s.Tail {
		s.e.LdrSPost(vs[0], c)
	} else {
		s.e.Ld1(c, true, S4, vs...)
	}
	return vs
}

// Store writes vs (K registers; in the tail lane 0 of vs[0]) to this step's
// elements of the slice based at p.
func (s *Step) Store(p Reg, vs []VReg) {
	if len(vs) != s.K {
		panic(fmt.Sprintf("arm64: %s: storing %d registers in a step of %d", s.e.name, len(vs), s.K))
	}
	c := s.cur(p)
	if s.Tail {
		s.e.StrSPost(vs[0], c)
	} else {
		s.e.St1(c, true, S4, vs...)
	}
}

// Vs allocates k consecutive vector registers for this step.
func (s *Step) Vs(k int) []VReg {
	vs := s.e.Vs(k)
	s.temps = append(s.temps, vs...)
	return vs
}

// V allocates one vector register for this step.
func (s *Step) V() VReg { return s.Vs(1)[0] }

// stream emits a loop over the n elements (n a GP register, preserved) of
// the float32 slices whose base addresses are in ptrs (preserved: the loop
// walks copies). body emits one Step; it is called three times: for the
// main loop (unroll vectors per iteration), the single-vector loop and the
// scalar tail (one element per iteration, 0 to 3 of them). beforeTail, when
// not nil, is emitted once between the vector loops and the tail; kernels
// that reduce fold their vector accumulators there, so that the tail adds
// scalars to a scalar. No element outside [0, n) is read or written.
func (e *Func) stream(tag string, n Reg, ptrs []Reg, body func(s *Step), beforeTail func()) {
	cnt := e.GP()
	e.Op("MOVD %v, %v", n, cnt)
	cursor := map[Reg]Reg{}
	var cursors []Reg
	for _, p := range ptrs {
		c := e.GP()
		e.Op("MOVD %v, %v", p, c)
		cursor[p] = c
		cursors = append(cursors, c)
	}
	run := func(k int, tail bool) {
		s := &Step{e: e, K: k, Tail: tail, cursor: cursor, moved: map[Reg]bool{}}
		body(s)
		e.FreeV(s.temps...)
	}
	L := func(s string) string { return tag + "_" + s }

	big := unroll * lanes
	e.Op("CMP $%d, %v", big, cnt)
	e.Op("BLT %s", L("one"))
	e.Label(L("loop"))
	run(unroll, false)
	e.Op("SUB $%d, %v, %v", big, cnt, cnt)
	e.Op("CMP $%d, %v", big, cnt)
	e.Op("BGE %s", L("loop"))

	e.Label(L("one"))
	e.Op("CMP $%d, %v", lanes, cnt)
	e.Op("BLT %s", L("tail"))
	e.Label(L("oneloop"))
	run(1, false)
	e.Op("SUB $%d, %v, %v", lanes, cnt, cnt)
	e.Op("CMP $%d, %v", lanes, cnt)
	e.Op("BGE %s", L("oneloop"))

	e.Label(L("tail"))
	if beforeTail != nil {
		beforeTail()
	}
	e.Op("CBZ %v, %s", cnt, L("done"))
	e.Label(L("tailloop"))
	run(1, true)
	e.Op("SUBS $1, %v, %v", cnt, cnt)
	e.Op("BNE %s", L("tailloop"))
	e.Label(L("done"))
	e.FreeGP(append(cursors, cnt)...)
}

// zeros allocates k vector registers set to 0.
func (e *Func) zeros(k int) []VReg {
	vs := make([]VReg, k)
	for i := range vs {
		vs[i] = e.V()
		e.I(moviZero(vs[i]))
	}
	return vs
}

// sumLanes adds the 4S vectors vs (clobbered) into one float: pairwise
// (vs[0]+vs[1]) + (vs[2]+vs[3]), then lanes (l0+l1) + (l2+l3). It returns
// vs[0], whose lane 0 holds the sum and other lanes 0; the others are
// freed.
func (e *Func) sumLanes(vs []VReg) VReg {
	v := e.foldPairs(vs, fadd)
	e.I(faddp(v, v, v, S4), faddpScalar(v, v, S2))
	return v
}

// maxLanes is the maximum of the 4S vectors vs (clobbered), in lane 0 of
// the register it returns (vs[0]; the other lanes 0); NaN if any lane is.
func (e *Func) maxLanes(vs []VReg) VReg {
	v := e.foldPairs(vs, fmax)
	e.I(fmaxv(v, v, S4))
	return v
}

// foldPairs combines vs pairwise with op (a tree) into vs[0] and frees the
// others.
func (e *Func) foldPairs(vs []VReg, op func(d, n, m VReg, a Arr) Word) VReg {
	for len(vs) > 1 {
		var next []VReg
		for i := 0; i+1 < len(vs); i += 2 {
			e.I(op(vs[i], vs[i], vs[i+1], S4))
			e.FreeV(vs[i+1])
			next = append(next, vs[i])
		}
		if len(vs)%2 == 1 {
			next = append(next, vs[len(vs)-1])
		}
		vs = next
	}
	return vs[0]
}

// broadcast copies lane 0 of v into a new register's four lanes.
func (e *Func) broadcast(v VReg) VReg {
	d := e.V()
	e.I(dupElem(d, v, S4, 0))
	return d
}

// loadArgSplat loads the float32 argument name into all four lanes of a
// new register.
func (e *Func) loadArgSplat(name string) VReg {
	v := e.LoadArgF(name)
	e.I(dupElem(v, v, S4, 0))
	return v
}

// ---------------------------------------------------------------------------
// The vector exp.

// expClampLo and expClampHi bound the vector exp's argument. Clamping (with
// fmax and fmin, which keep NaN) sends −Inf to e^lo, which rounds to 0, and
// +Inf to e^hi, which overflows to +Inf, so the arithmetic gives what asm's
// expf returns outside [kconst.ExpLo, kconst.ExpHi], and n = round(x·log2e)
// stays within [−150, 128], where both factors of the scaling are normal.
// checkExpClamp proves these properties when the generator runs.
var (
	expClampLo = float32(math.Floor(kconst.ExpLo))
	expClampHi = float32(math.Ceil(kconst.ExpHi))
)

// checkExpClamp panics unless the clamp bounds do what expClampLo says.
func checkExpClamp() {
	lo, hi := float64(expClampLo), float64(expClampHi)
	if !(lo <= kconst.ExpLo && math.Exp(lo) < 0x1p-150) {
		panic(fmt.Sprintf("arm64: exp clamp %v: e^lo must round to 0", lo))
	}
	if !(hi >= kconst.ExpHi && math.Exp(hi) > math.MaxFloat32) {
		panic(fmt.Sprintf("arm64: exp clamp %v: e^hi must overflow", hi))
	}
	log2e := float32(kconst.Log2e)
	nlo := math.RoundToEven(float64(expClampLo * log2e))
	nhi := math.RoundToEven(float64(expClampHi * log2e))
	if nlo < -150 || nhi > 128 {
		panic(fmt.Sprintf("arm64: exp clamp: n in [%v, %v], want within [−150, 128]", nlo, nhi))
	}
}

// expConsts adds the exp's constants to t, from their one source
// (internal/kconst), rounded to float32 as asm's expf rounds them: the
// multipliers of the by-element forms in one pack, the Horner addends in
// two, and splats of 1 and the clamp bounds.
func expConsts(t *ConstTable) {
	checkExpClamp()
	t.Pack("expMul", C{"log2e", kconst.Log2e}, C{"ln2hi", kconst.Ln2Hi}, C{"ln2lo", kconst.Ln2Lo}, C{"p0", kconst.ExpP0})
	t.Pack("expAdd", C{"p1", kconst.ExpP1}, C{"p2", kconst.ExpP2}, C{"p3", kconst.ExpP3}, C{"p4", kconst.ExpP4})
	t.Pack("expAdd5", C{"p5", kconst.ExpP5})
	t.Splat("one", 1) // also the bits of 2⁰: 127<<23
	t.Splat("explo", expClampLo)
	t.Splat("exphi", expClampHi)
}

// expRegs are the exp's constants, loaded.
type expRegs struct {
	c  Consts
	hi bool // clamp from above too (not needed when every x ≤ 0)
}

// loadExp loads the exp's constants (six registers at the top, five when
// withHi is false).
func (e *Func) loadExp(t *ConstTable, withHi bool) expRegs {
	names := []string{"expMul", "expAdd", "expAdd5", "one", "explo"}
	if withHi {
		names = append(names, "exphi")
	}
	return expRegs{c: e.loadConsts(t, names...), hi: withHi}
}

// exp replaces each 4S vector of xs by e^x, lane by lane, with the
// algorithm of asm's expf, fused where NEON fuses:
//
//	x := min(max(x, lo), hi)                  NaN stays NaN
//	n := frintn(x·log2e)                      round to nearest even
//	r := (x − n·ln2Hi) − n·ln2Lo              two fused multiply-subtracts
//	p := ((((P0·r + P1)·r + P2)·r + P3)·r + P4)·r + P5
//	x := (r + r²·p) + 1
//	return x·2^⌊n/2⌋·2^(n−⌊n/2⌋)
//
// Both factors of 2ⁿ are normal for n in [−150, 128] (checkExpClamp), the
// first product is exact and the second rounds once, so subnormal results
// round once, as expf's do. The factors are built as integers,
// (k << 23) + bits(1). Each step is emitted for every vector before the
// next, so the len(xs) dependency chains interleave. It needs three
// temporary registers per vector.
func (e *Func) exp(xs []VReg, c expRegs) {
	k := len(xs)
	t, p, q := make([]VReg, k), make([]VReg, k), make([]VReg, k)
	for j := range xs {
		t[j], p[j], q[j] = e.V(), e.V(), e.V()
	}
	each := func(f func(j int) Word) {
		for j := range xs {
			e.I(f(j))
		}
	}
	lo, one := c.c.V("explo"), c.c.V("one")
	each(func(j int) Word { return fmax(xs[j], xs[j], lo, S4) })
	if c.hi {
		hi := c.c.V("exphi")
		each(func(j int) Word { return fmin(xs[j], xs[j], hi, S4) })
	}
	mul, i := c.c.L("log2e")
	each(func(j int) Word { return fmulElem(t[j], xs[j], mul, S4, i) })
	each(func(j int) Word { return frintn(t[j], t[j], S4) })
	for _, name := range []string{"ln2hi", "ln2lo"} {
		m, i := c.c.L(name)
		each(func(j int) Word { return fmlsElem(xs[j], t[j], m, S4, i) })
	}
	each(func(j int) Word { return fcvtzs(t[j], t[j], S4) })

	// Horner: p = P1 + r·P0, then p = Pk + p·r for P2..P5, each addend
	// copied from its lane first (fmla accumulates into its destination).
	m, i := c.c.L("p1")
	each(func(j int) Word { return dupElem(p[j], m, S4, i) })
	m, i = c.c.L("p0")
	each(func(j int) Word { return fmlaElem(p[j], xs[j], m, S4, i) })
	for _, name := range []string{"p2", "p3", "p4", "p5"} {
		m, i := c.c.L(name)
		each(func(j int) Word { return dupElem(q[j], m, S4, i) })
		each(func(j int) Word { return fmla(q[j], p[j], xs[j], S4) })
		p, q = q, p
	}
	each(func(j int) Word { return fmul(q[j], xs[j], xs[j], S4) }) // r²
	each(func(j int) Word { return fmla(xs[j], p[j], q[j], S4) })  // r + r²·p
	each(func(j int) Word { return fadd(xs[j], xs[j], one, S4) })

	// 2ⁿ in two factors: n1 = n >> 1 (arithmetic), n2 = n − n1.
	each(func(j int) Word { return sshr(p[j], t[j], S4, 1) })
	each(func(j int) Word { return sub(t[j], t[j], p[j], S4) })
	for _, f := range [][]VReg{p, t} {
		each(func(j int) Word { return shl(f[j], f[j], S4, 23) })
		each(func(j int) Word { return add(f[j], f[j], one, S4) })
		each(func(j int) Word { return fmul(xs[j], xs[j], f[j], S4) })
	}
	for j := range xs {
		e.FreeV(t[j], p[j], q[j])
	}
}
