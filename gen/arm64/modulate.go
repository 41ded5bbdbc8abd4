package main

func init() { families["modulate"] = modulate }

// modulate emits the NEON bodies of asm's modulate family, the algorithms
// of gen/amd64/modulate.go: clampGrad and hardNegatives. fcmgt is false for
// NaN, as the generic twin's Go comparisons are, and every arithmetic step
// is the twin's one rounding, so each body is bitwise its twin. The tail
// runs the same vector code on one element in lane 0.
func modulate(f *File) {
	t := f.Consts("modConst")
	t.Splat("one", 1)
	clampGradBody(f, t)
	hardNegativesBody(f, t)
}

// clampGradBody: z = v > hi ? hi : v < lo ? lo : v; dz = 1 unless clamped.
// z is read through one cursor and written through another, each step's
// elements read before they are written.
func clampGradBody(f *File, t *ConstTable) {
	e := f.Implement("clampGradNEON", "clampGradNEON is the NEON body of ClampGrad: z clamped to [lo, hi] in place, dz its 0/1 derivative; len(dz) ≥ len(z).")
	zr, dp, n := e.LoadArg("z_base"), e.LoadArg("dz_base"), e.LoadArg("z_len")
	zw := e.GP()
	e.Op("MOVD %v, %v", zr, zw)
	c := e.loadConsts(t, "one")
	one := c.V("one")
	lo, hi := e.loadArgSplat("lo"), e.loadArgSplat("hi")
	e.stream("clamp", n, []Reg{zr, zw, dp}, func(st *Step) {
		vs := st.Load(zr)
		gt, lt, ds := st.Vs(len(vs)), st.Vs(len(vs)), st.Vs(len(vs))
		for j, v := range vs {
			e.I(fcmgt(gt[j], v, hi, S4), fcmgt(lt[j], lo, v, S4)) // v > hi, lo > v
		}
		for j, v := range vs {
			e.I(bic(ds[j], one, gt[j], B16), bic(ds[j], ds[j], lt[j], B16))
			e.I(bit(v, hi, gt[j], B16), bit(v, lo, lt[j], B16))
		}
		st.Store(zw, vs)
		st.Store(dp, ds)
	}, nil)
	e.RET()
}

// hardNegativesBody: where v > thr, c = v·inv, v = v·(t + c) and
// dz = t + (c + c); elsewhere v and dz = 1.
func hardNegativesBody(f *File, tab *ConstTable) {
	e := f.Implement("hardNegativesNEON", "hardNegativesNEON is the NEON body of HardNegatives: z above thr mapped to z·(t + z·inv) in place, dz its derivative; len(dz) ≥ len(z).")
	zr, dp, n := e.LoadArg("z_base"), e.LoadArg("dz_base"), e.LoadArg("z_len")
	zw := e.GP()
	e.Op("MOVD %v, %v", zr, zw)
	c := e.loadConsts(tab, "one")
	one := c.V("one")
	thr, t, inv := e.loadArgSplat("thr"), e.loadArgSplat("t"), e.loadArgSplat("inv")
	e.stream("hard", n, []Reg{zr, zw, dp}, func(st *Step) {
		vs := st.Load(zr)
		k := len(vs)
		hard, cs, zm, ds := st.Vs(k), st.Vs(k), st.Vs(k), st.Vs(k)
		for j, v := range vs {
			e.I(fcmgt(hard[j], v, thr, S4), fmul(cs[j], v, inv, S4)) // hard = v > thr, c = v·inv
		}
		for j, v := range vs {
			e.I(fadd(zm[j], t, cs[j], S4), fmul(zm[j], v, zm[j], S4))     // v·(t + c)
			e.I(fadd(cs[j], cs[j], cs[j], S4), fadd(ds[j], t, cs[j], S4)) // t + (c + c)
		}
		for j, v := range vs {
			e.I(bit(v, zm[j], hard[j], B16), bif(ds[j], one, hard[j], B16))
		}
		st.Store(zw, vs)
		st.Store(dp, ds)
	}, nil)
	e.RET()
}
