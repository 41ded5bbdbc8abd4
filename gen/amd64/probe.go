package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["probe"] = probe }

// probe emits the FMA peak probes: loops of 12 independent FMA chains (more
// than latency × ports, so the FMA units never wait), 12 FMAs per iteration.
func probe() {
	for _, isa := range []struct {
		name string
		vec  func() reg.VecVirtual
	}{{"fmaPeakAVX2", YMM}, {"fmaPeakAVX512", ZMM}} {
		TEXT(isa.name, NOSPLIT, "func(iters int)")
		Doc(fmt.Sprintf("%s runs iters iterations of 12 independent vector FMAs.", isa.name))
		n := Load(Param("iters"), GP64())
		acc := make([]reg.VecVirtual, 12)
		for i := range acc {
			acc[i] = isa.vec()
			VXORPS(acc[i], acc[i], acc[i])
		}
		a, b := isa.vec(), isa.vec()
		VXORPS(a, a, a)
		VXORPS(b, b, b)
		Label(isa.name + "_loop")
		TESTQ(n, n)
		JZ(LabelRef(isa.name + "_done"))
		for i := range acc {
			VFMADD231PS(a, b, acc[i])
		}
		DECQ(n)
		JMP(LabelRef(isa.name + "_loop"))
		Label(isa.name + "_done")
		VZEROUPPER()
		RET()
	}
	_ = Imm
}
