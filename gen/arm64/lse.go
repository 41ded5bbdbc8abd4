package main

func init() { families["lse"] = lse }

// lse emits the NEON bodies of asm's lse family: exp, maxSumExp and
// softmaxScaled, all built on the vector exp (emit.go), the algorithms of
// gen/amd64/lse.go.
func lse(f *File) {
	t := f.Consts("lseConst")
	expConsts(t)
	expBody(f, t)
	maxSumExpBody(f, t)
	softmaxScaledBody(f, t)
}

// expBody: dst_k = e^x_k.
func expBody(f *File, t *ConstTable) {
	e := f.Implement("expNEON", "expNEON is the NEON body of Exp: dst[k] = e^x[k] for k < len(x); len(dst) ≥ len(x).")
	dp, xp, n := e.LoadArg("dst_base"), e.LoadArg("x_base"), e.LoadArg("x_len")
	c := e.loadExp(t, true)
	e.stream("exp", n, []Reg{xp, dp}, func(st *Step) {
		xs := st.Load(xp)
		e.exp(xs, c)
		st.Store(dp, xs)
	}, nil)
	e.RET()
}

// softmaxScaledBody: dst_k = e^(z_k − lse)·scale.
func softmaxScaledBody(f *File, t *ConstTable) {
	e := f.Implement("softmaxScaledNEON",
		"softmaxScaledNEON is the NEON body of SoftmaxScaled: dst[k] = e^(z[k]−lse)·scale for k < len(z); len(dst) ≥ len(z).")
	dp, zp, n := e.LoadArg("dst_base"), e.LoadArg("z_base"), e.LoadArg("z_len")
	lse, scale := e.loadArgSplat("lse"), e.loadArgSplat("scale")
	c := e.loadExp(t, true)
	e.stream("softmax", n, []Reg{zp, dp}, func(st *Step) {
		ds := st.Load(zp)
		for _, d := range ds {
			e.I(fsub(d, d, lse, S4))
		}
		e.exp(ds, c)
		for _, d := range ds {
			e.I(fmul(d, d, scale, S4))
		}
		st.Store(dp, ds)
	}, nil)
	e.RET()
}

// maxSumExpBody: m' = max(m, max z), then t = Σ e^(z_k − m') and, when
// s ≠ 0, t += s·e^(m − m'). An empty z returns (m, s) unchanged.
func maxSumExpBody(f *File, t *ConstTable) {
	e := f.Implement("maxSumExpNEON", "maxSumExpNEON is the NEON body of MaxSumExp.")
	zp, n := e.LoadArg("z_base"), e.LoadArg("z_len")
	e.Op("CBNZ %v, nonempty", n)
	v := e.LoadArgF("m")
	e.StoreF(v, "ret")
	e.LoadArgFTo("s", v)
	e.StoreF(v, "ret1")
	e.RET()
	e.FreeV(v)
	e.Label("nonempty")

	// Pass 1: the maximum, from m in every lane of four accumulators; the
	// tail folds scalars into their maximum.
	m := e.LoadArgF("m")
	acc := []VReg{m, e.V(), e.V(), e.V()}
	for _, a := range acc {
		e.I(dupElem(a, m, S4, 0))
	}
	var mx VReg
	e.stream("max", n, []Reg{zp}, func(st *Step) {
		zs := st.Load(zp)
		if st.Tail {
			e.I(fmax(mx, mx, zs[0], S))
			return
		}
		for j, z := range zs {
			e.I(fmax(acc[j], acc[j], z, S4))
		}
	}, func() { mx = e.maxLanes(acc) })
	mxv := e.broadcast(mx)

	// Pass 2: Σ e^(z_k − m'). Every argument is ≤ 0: no upper clamp.
	c := e.loadExp(t, false)
	sum := e.zeros(unroll)
	var total VReg
	e.stream("sum", n, []Reg{zp}, func(st *Step) {
		ds := st.Load(zp)
		for _, d := range ds {
			e.I(fsub(d, d, mxv, S4))
		}
		e.exp(ds, c)
		if st.Tail {
			e.I(fadd(total, total, ds[0], S))
			return
		}
		for j, d := range ds {
			e.I(fadd(sum[j], sum[j], d, S4))
		}
	}, func() { total = e.sumLanes(sum) })

	// The old state: t += s·e^(m − m') unless s == 0 (a NaN s is added).
	s := e.LoadArgF("s")
	e.I(fcmpZero(s, S))
	e.Op("BEQ store")
	d := e.LoadArgF("m")
	e.I(fsub(d, d, mx, S)) // m − m' in lane 0; the other lanes 0
	e.exp([]VReg{d}, c)
	e.I(fmadd(total, s, d, total, S))
	e.Label("store")
	e.StoreF(mx, "ret")
	e.StoreF(total, "ret1")
	e.RET()
}
