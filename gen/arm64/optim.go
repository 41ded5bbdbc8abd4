package main

func init() { families["optim"] = optim }

// The flag bits of asm.SGDFlags (asm/optim.go).
const (
	sgdWeightDecay = 1 << iota
	sgdMomentum
	sgdFirst
	sgdNesterov
)

// optim emits the NEON bodies of asm's optimizer family, sgdStep and
// adamWStep, the algorithms of gen/amd64/optim.go: elementwise chains of
// correctly rounded operations in the twins' order (FMLA where the twin
// calls fma32), so every level gives the twin's bits. The scalar tail runs
// the same vector instructions on lane 0 (the other lanes hold zeros and are
// never stored).
func optim(f *File) {
	sgdStepBody(f)
	adamWStepBody(f)
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
// weight decay and momentum mode.
func sgdStepBody(f *File) {
	e := f.Implement("sgdStepNEON", "sgdStepNEON is the NEON body of SGDStep: len(g) = len(p), and len(buf) = len(p) with SGDMomentum.")
	flags := e.GP()
	e.Op("MOVWU %s, %v", e.arg("c_Flags", 4), flags)
	e.Op("TBZ $%d, %v, plain_dispatch", bitIndex(sgdMomentum), flags)
	e.Op("TBNZ $%d, %v, first_or_nfirst", bitIndex(sgdFirst), flags)
	e.Op("TBNZ $%d, %v, nlater_dispatch", bitIndex(sgdNesterov), flags)
	e.Op("B later_dispatch")
	e.Label("first_or_nfirst")
	e.Op("TBNZ $%d, %v, nfirst_dispatch", bitIndex(sgdNesterov), flags)
	e.Op("B first_dispatch")
	for _, m := range sgdModes {
		e.Label(m.name + "_dispatch")
		e.Op("TBNZ $%d, %v, %s_wd", bitIndex(sgdWeightDecay), flags, m.name)
		e.Op("B %s_nowd", m.name)
	}
	e.FreeGP(flags)
	for _, m := range sgdModes {
		for _, wd := range []bool{false, true} {
			tag := m.name + "_nowd"
			if wd {
				tag = m.name + "_wd"
			}
			e.Label(tag)
			sgdLoop(e, tag, m, wd)
		}
	}
}

// bitIndex is the index of the single set bit of b.
func bitIndex(b int) int {
	for i := 0; i < 32; i++ {
		if b == 1<<i {
			return i
		}
	}
	panic("arm64: not a single bit")
}

// sgdLoop is the loop of one SGD variant, then RET. It frees what it
// allocates, so the next variant starts from the same registers.
func sgdLoop(e *Func, tag string, m sgdMode, wd bool) {
	pr, pw := e.LoadArg("p_base"), e.LoadArg("p_base")
	gp, n := e.LoadArg("g_base"), e.LoadArg("p_len")
	gps := []Reg{pr, gp, pw, n}
	ptrs := []Reg{pr, gp}
	var br, bw Reg
	if m.momentum {
		br, bw = e.LoadArg("buf_base"), e.LoadArg("buf_base")
		gps = append(gps, br, bw)
		if !m.first {
			ptrs = append(ptrs, br)
		}
		ptrs = append(ptrs, bw)
	}
	ptrs = append(ptrs, pw)
	nlr := e.loadArgSplat("c_NegLR")
	consts := []VReg{nlr}
	var wdv, mu, damp VReg
	if wd {
		wdv = e.loadArgSplat("c_WeightDecay")
		consts = append(consts, wdv)
	}
	if m.momentum && (!m.first || m.nester) {
		mu = e.loadArgSplat("c_Momentum")
		consts = append(consts, mu)
	}
	if m.momentum && !m.first {
		damp = e.loadArgSplat("c_Dampening1")
		consts = append(consts, damp)
	}
	e.stream(tag, n, ptrs, func(st *Step) {
		ps, ds := st.Load(pr), st.Load(gp)
		if wd {
			for j, p := range ps {
				e.I(fmla(ds[j], p, wdv, S4)) // d = p·wd + g
			}
		}
		if m.momentum {
			bs := ds
			if !m.first {
				bs = st.Load(br)
				for _, b := range bs {
					e.I(fmul(b, b, mu, S4)) // μ·buf
				}
				for j, b := range bs {
					e.I(fmla(b, ds[j], damp, S4)) // d·(1−dampening) + μ·buf
				}
			}
			st.Store(bw, bs)
			if m.nester {
				for j, d := range ds {
					e.I(fmla(d, bs[j], mu, S4)) // d = buf·μ + d
				}
			} else {
				ds = bs
			}
		}
		for j, p := range ps {
			e.I(fmla(p, ds[j], nlr, S4)) // p = d·(−lr) + p
		}
		st.Store(pw, ps)
	}, nil)
	e.RET()
	e.FreeV(consts...)
	e.FreeGP(gps...)
}

// adamWStepBody: q = p·decay, m = fma(g, 1−β1, β1·m), v = fma((1−β2)·g, g,
// β2·v), p = q + (−step·m)/(sqrt(v)/bc2 + ε), in the twin's order.
func adamWStepBody(f *File) {
	e := f.Implement("adamWStepNEON", "adamWStepNEON is the NEON body of AdamWStep: g, m and v are as long as p.")
	pr, pw := e.LoadArg("p_base"), e.LoadArg("p_base")
	gp := e.LoadArg("g_base")
	mr, mw := e.LoadArg("m_base"), e.LoadArg("m_base")
	vr, vw := e.LoadArg("v_base"), e.LoadArg("v_base")
	n := e.LoadArg("p_len")
	c := func(name string) VReg { return e.loadArgSplat("c_" + name) }
	decay, b1, b1c, b2, b2c := c("Decay"), c("Beta1"), c("Beta1c"), c("Beta2"), c("Beta2c")
	bc2, eps, step := c("BC2Sqrt"), c("Eps"), c("NegStep")
	e.stream("adamw", n, []Reg{pr, gp, mr, vr, mw, vw, pw}, func(st *Step) {
		gs, ms, vs, ps := st.Load(gp), st.Load(mr), st.Load(vr), st.Load(pr)
		ts := st.Vs(len(gs))
		for _, m := range ms {
			e.I(fmul(m, m, b1, S4)) // β1·m
		}
		for j, m := range ms {
			e.I(fmla(m, gs[j], b1c, S4)) // g·(1−β1) + β1·m
		}
		st.Store(mw, ms)
		for _, v := range vs {
			e.I(fmul(v, v, b2, S4)) // β2·v
		}
		for j, g := range gs {
			e.I(fmul(ts[j], g, b2c, S4)) // (1−β2)·g
		}
		for j, v := range vs {
			e.I(fmla(v, ts[j], gs[j], S4)) // ((1−β2)·g)·g + β2·v
		}
		st.Store(vw, vs)
		for _, v := range vs {
			e.I(fsqrt(v, v, S4))
		}
		for _, v := range vs {
			e.I(fdiv(v, v, bc2, S4)) // sqrt(v)/bc2
		}
		for _, v := range vs {
			e.I(fadd(v, v, eps, S4))
		}
		for _, m := range ms {
			e.I(fmul(m, m, step, S4)) // −step·m
		}
		for j, m := range ms {
			e.I(fdiv(m, m, vs[j], S4)) // (−step·m)/den
		}
		for _, p := range ps {
			e.I(fmul(p, p, decay, S4))
		}
		for j, p := range ps {
			e.I(fadd(p, p, ms[j], S4))
		}
		st.Store(pw, ps)
	}, nil)
	e.RET()
}
