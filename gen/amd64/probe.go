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
	for _, s := range isas {
		name := "fmaPeak" + s.suffix
		implement(name, fmt.Sprintf("%s runs iters iterations of 12 independent vector FMAs.", name))
		n := Load(Param("iters"), GP64())
		acc := make([]reg.VecVirtual, 12)
		for i := range acc {
			acc[i] = s.vec()
			VXORPS(acc[i], acc[i], acc[i])
		}
		a, b := s.vec(), s.vec()
		VXORPS(a, a, a)
		VXORPS(b, b, b)
		Label(name + "_loop")
		TESTQ(n, n)
		JZ(LabelRef(name + "_done"))
		for i := range acc {
			VFMADD231PS(a, b, acc[i])
		}
		DECQ(n)
		JMP(LabelRef(name + "_loop"))
		Label(name + "_done")
		ret()
	}
}
