package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// fileLabels names each result file in tables and legends: its base name
// without .json, or the path where two base names are equal.
func fileLabels(rs []*Results, files []string) []string {
	labels := make([]string, len(files))
	seen := map[string]int{}
	for i, f := range files {
		labels[i] = strings.TrimSuffix(filepath.Base(f), ".json")
		seen[labels[i]]++
	}
	for i, f := range files {
		if seen[labels[i]] > 1 {
			labels[i] = f
		}
	}
	return labels
}

// kernelRowKey matches kernel rows across files.
type kernelRowKey struct{ family, name, level, size string }

// headRowKey matches head rows across files; threads is "1" or "all".
type headRowKey struct {
	loss     string
	n, d, c  int
	nthreads string
}

func headRowKeyOf(h HeadRow) headRowKey {
	t := "all"
	if h.Threads == 1 {
		t = "1"
	}
	return headRowKey{h.Loss, h.N, h.D, h.C, t}
}

// writeCompare prints the files side by side as markdown: the machines,
// then every kernel and head row with each file's value and its ratio to
// the first file's (> 1 is faster than the baseline).
func writeCompare(w io.Writer, rs []*Results, files []string) {
	labels := fileLabels(rs, files)
	head := func(cols ...string) {
		fmt.Fprintf(w, "| %s |", strings.Join(cols, " | "))
		for i, l := range labels {
			if i == 0 {
				fmt.Fprintf(w, " %s |", l)
			} else {
				fmt.Fprintf(w, " %s | ratio |", l)
			}
		}
		fmt.Fprintln(w)
		fmt.Fprint(w, strings.Repeat("|---", len(cols)), "|")
		fmt.Fprint(w, strings.Repeat("---:|", 2*len(labels)-1), "\n")
	}

	fmt.Fprintf(w, "# marginloss benchmark comparison\n\nBaseline: %s. Each ratio is the file's speed over the baseline's "+
		"(throughput ÷ baseline throughput for kernels, baseline ms ÷ ms for heads): > 1 means that file is faster than the baseline, "+
		"< 1 slower. Rows that no file measured are left out.\n\n", labels[0])
	fmt.Fprintf(w, "| machine |")
	for _, l := range labels {
		fmt.Fprintf(w, " %s |", l)
	}
	fmt.Fprint(w, "\n|---|", strings.Repeat("---|", len(labels)), "\n")
	machineRow := func(name string, f func(r *Results) string) {
		if !slices.ContainsFunc(rs, func(r *Results) bool { v := f(r); return v != "" && v != "0" }) {
			return // no file has it
		}
		fmt.Fprintf(w, "| %s |", name)
		for _, r := range rs {
			fmt.Fprintf(w, " %s |", f(r))
		}
		fmt.Fprintln(w)
	}
	machineRow("CPU", func(r *Results) string { return r.Machine.CPU })
	machineRow("family / model", func(r *Results) string { return r.Machine.familyModel() })
	machineRow("clock", func(r *Results) string { return r.Machine.clock() })
	machineRow("marginloss", func(r *Results) string { return r.Machine.LibVersion })
	machineRow("cores", func(r *Results) string { return fmt.Sprint(r.Machine.Cores) })
	machineRow("L1d / L2", func(r *Results) string {
		return sizeString(r.Machine.L1d) + " / " + sizeString(r.Machine.L2)
	})
	machineRow("backend", func(r *Results) string { return r.Machine.Backend })
	machineRow("go", func(r *Results) string { return r.Machine.Go })
	machineRow("GOOS/GOARCH", func(r *Results) string { return r.Machine.GOOS + "/" + r.Machine.GOARCH })
	machineRow("date", func(r *Results) string { return r.Machine.Date })
	machineRow("FMA peak GFLOP/s", func(r *Results) string { return fmtNum(r.FMAPeakGFLOPS) })
	machineRow("bf16 dot peak GFLOP/s", func(r *Results) string { return fmtNum(r.BF16PeakGFLOPS) })
	machineRow("AMX tile peak GFLOP/s", func(r *Results) string { return fmtNum(r.AMXPeakGFLOPS) })
	machineRow("quick", func(r *Results) string { return fmt.Sprint(r.Quick) })
	fmt.Fprintln(w)

	// Kernels, per level.
	var kkeys []kernelRowKey
	kvals := map[kernelRowKey][]KernelRow{}
	for i, r := range rs {
		for _, k := range r.Kernels {
			key := kernelRowKey{k.Family, k.Name, k.Level, k.Size}
			if kvals[key] == nil {
				kkeys = append(kkeys, key)
				kvals[key] = make([]KernelRow, len(rs))
			}
			kvals[key][i] = k
		}
	}
	// Rows of one kernel and size together (in order of first appearance),
	// their levels in levelOrder.
	group := map[[3]string]int{}
	for _, k := range kkeys {
		g := [3]string{k.family, k.name, k.size}
		if _, ok := group[g]; !ok {
			group[g] = len(group)
		}
	}
	slices.SortStableFunc(kkeys, func(a, b kernelRowKey) int {
		ga, gb := group[[3]string{a.family, a.name, a.size}], group[[3]string{b.family, b.name, b.size}]
		if ga != gb {
			return ga - gb
		}
		return levelRank(a.level) - levelRank(b.level)
	})
	if len(kkeys) > 0 {
		fmt.Fprintf(w, "## Kernels (GFLOP/s for gemm, GB/s for the others; ratio = file ÷ baseline, > 1 faster)\n\n")
		head("family", "kernel", "size", "level")
		for _, key := range kkeys {
			if !slices.ContainsFunc(kvals[key], func(k KernelRow) bool { v, _ := k.Throughput(); return v > 0 }) {
				continue // no file measured it
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |", key.family, key.name, key.size, key.level)
			base, _ := kvals[key][0].Throughput()
			for i, k := range kvals[key] {
				v, _ := k.Throughput()
				fmt.Fprintf(w, " %s |", fmtNum(v))
				if i > 0 {
					fmt.Fprintf(w, " %s |", fmtRatio(v, base))
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)

		// The best level of each file, so that different backends (avx512
		// against openblas, or two machines) line up.
		type bestKey struct{ family, name, size string }
		var bkeys []bestKey
		best := map[bestKey][]KernelRow{}
		for _, key := range kkeys {
			bk := bestKey{key.family, key.name, key.size}
			if best[bk] == nil {
				bkeys = append(bkeys, bk)
				best[bk] = make([]KernelRow, len(rs))
			}
			for i, k := range kvals[key] {
				v, _ := k.Throughput()
				if b, _ := best[bk][i].Throughput(); v > b {
					best[bk][i] = k
				}
			}
		}
		fmt.Fprintf(w, "## Kernels, best level of each file (ratio = file ÷ baseline, > 1 faster)\n\n")
		head("family", "kernel", "size")
		for _, bk := range bkeys {
			if !slices.ContainsFunc(best[bk], func(k KernelRow) bool { v, _ := k.Throughput(); return v > 0 }) {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s |", bk.family, bk.name, bk.size)
			base, _ := best[bk][0].Throughput()
			for i, k := range best[bk] {
				v, _ := k.Throughput()
				if v > 0 {
					fmt.Fprintf(w, " %s (%s) |", fmtNum(v), k.Level)
				} else {
					fmt.Fprint(w, " — |")
				}
				if i > 0 {
					fmt.Fprintf(w, " %s |", fmtRatio(v, base))
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}

	// Heads.
	var hkeys []headRowKey
	hvals := map[headRowKey][]HeadRow{}
	for i, r := range rs {
		for _, h := range r.Heads {
			key := headRowKeyOf(h)
			if hvals[key] == nil {
				hkeys = append(hkeys, key)
				hvals[key] = make([]HeadRow, len(rs))
			}
			hvals[key][i] = h
		}
	}
	if len(hkeys) > 0 {
		fmt.Fprintf(w, "## Heads, forward + backward (ms per call; ratio = baseline ms ÷ ms, > 1 faster)\n\n")
		head("loss", "N", "D", "C", "threads")
		measured := func(key headRowKey) bool {
			return slices.ContainsFunc(hvals[key], func(h HeadRow) bool { return h.Ms > 0 })
		}
		hkeys = slices.DeleteFunc(hkeys, func(k headRowKey) bool { return !measured(k) })
		for _, key := range hkeys {
			fmt.Fprintf(w, "| %s | %d | %d | %d | %s |", key.loss, key.n, key.d, key.c, key.nthreads)
			base := hvals[key][0].Ms
			for i, h := range hvals[key] {
				fmt.Fprintf(w, " %s |", fmtNum(h.Ms))
				if i > 0 {
					fmt.Fprintf(w, " %s |", fmtRatio(base, h.Ms))
				}
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "\n### Extra memory (MiB)\n\n")
		fmt.Fprintf(w, "| loss | N | D | C | threads |")
		for _, l := range labels {
			fmt.Fprintf(w, " %s |", l)
		}
		fmt.Fprint(w, "\n|---|---|---|---|---|", strings.Repeat("---:|", len(labels)), "\n")
		for _, key := range hkeys {
			fmt.Fprintf(w, "| %s | %d | %d | %d | %s |", key.loss, key.n, key.d, key.c, key.nthreads)
			for _, h := range hvals[key] {
				if h.Ms == 0 {
					fmt.Fprint(w, " — |")
				} else {
					fmt.Fprintf(w, " %.2f |", h.ExtraMiB)
				}
			}
			fmt.Fprintln(w)
		}
		sides := groupSides(rs, labels)
		writeSpread(w, sides, hkeys, hvals)
		writePrecisionSpread(w, sides, hkeys, hvals)
	}
}

// side is one program's files among -compare's arguments: those with the
// same backend, Go or Python version and CPU (repeated, alternating runs of
// that program), in argument order.
type side struct {
	name  string // the label of its first file
	files []int
}

// groupSides groups the files into sides, in order of first appearance.
func groupSides(rs []*Results, labels []string) []*side {
	var sides []*side
	byID := map[string]*side{}
	for i, r := range rs {
		id := r.Machine.Backend + " " + r.Machine.Go + " " + r.Machine.CPU
		sd := byID[id]
		if sd == nil {
			sd = &side{name: labels[i]}
			byID[id] = sd
			sides = append(sides, sd)
		}
		sd.files = append(sd.files, i)
	}
	return sides
}

// repeated reports whether some side has several runs.
func repeated(sides []*side) bool {
	for _, sd := range sides {
		if len(sd.files) > 1 {
			return true
		}
	}
	return false
}

// extremes is spreadOf(v)'s smallest and largest, or (0, 0) for no values.
func extremes(v []float64) (lo, hi float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := spreadOf(v)
	return s.min, s.max
}

// msRange is the fastest and slowest ms of key over files (0, 0: none).
func msRange(hvals map[headRowKey][]HeadRow, key headRowKey, files []int) (lo, hi float64) {
	var v []float64
	for _, f := range files {
		if ms := hvals[key][f].Ms; ms > 0 {
			v = append(v, ms)
		}
	}
	return extremes(v)
}

// ratioRange is the range of num's ms ÷ den's ms taken run by run: the
// j-th file of numFiles against the j-th of denFiles, the runs that the
// alternation ran next to each other (0, 0: no pair measured both).
func ratioRange(hvals map[headRowKey][]HeadRow, num headRowKey, numFiles []int, den headRowKey, denFiles []int) (lo, hi float64) {
	var v []float64
	for j := 0; j < min(len(numFiles), len(denFiles)); j++ {
		if b, d := hvals[num][numFiles[j]].Ms, hvals[den][denFiles[j]].Ms; b > 0 && d > 0 {
			v = append(v, b/d)
		}
	}
	return extremes(v)
}

// fmtRange prints lo–hi as ms (fmtNum) or, with ratio, as a ratio; "—"
// when lo is 0 (nothing measured).
func fmtRange(lo, hi float64, ratio bool) string {
	switch {
	case lo == 0:
		return "—"
	case ratio:
		return fmt.Sprintf("%.2f–%.2f×", lo, hi)
	}
	return fmtNum(lo) + "–" + fmtNum(hi)
}

// writeSpread prints, when some program was run several times, each head's
// range of ms over each side's runs, and the range of the ratio to the
// first side taken run by run (ratioRange). One run of a side is no fair
// figure; the fastest of several alternating runs is.
func writeSpread(w io.Writer, sides []*side, hkeys []headRowKey, hvals map[headRowKey][]HeadRow) {
	if !repeated(sides) {
		return
	}
	fmt.Fprintf(w, "\n## Heads over repeated runs (ms: fastest–slowest run; ratio: %s's ms / the side's, run by run)\n\n", sides[0].name)
	fmt.Fprintf(w, "| loss | N | D | C | threads |")
	for i, sd := range sides {
		fmt.Fprintf(w, " %s (%d runs) |", sd.name, len(sd.files))
		if i > 0 {
			fmt.Fprint(w, " ratio |")
		}
	}
	fmt.Fprint(w, "\n|---|---|---|---|---|", strings.Repeat("---:|", 2*len(sides)-1), "\n")
	for _, key := range hkeys {
		fmt.Fprintf(w, "| %s | %d | %d | %d | %s |", key.loss, key.n, key.d, key.c, key.nthreads)
		for si, sd := range sides {
			lo, hi := msRange(hvals, key, sd.files)
			fmt.Fprintf(w, " %s |", fmtRange(lo, hi, false))
			if si > 0 {
				lo, hi := ratioRange(hvals, key, sides[0].files, key, sd.files)
				fmt.Fprintf(w, " %s |", fmtRange(lo, hi, true))
			}
		}
		fmt.Fprintln(w)
	}
}

// bf16Suffix marks a head row's loss as the BFloat16 head (the bench's and
// pytorch_ref.py's autocast rows alike).
const bf16Suffix = " bf16"

// writePrecisionSpread prints, for every bf16 head row whose float32 twin
// (the same loss without the suffix) was measured, the run-by-run ranges of
// each side's float32 ms ÷ its own bf16 ms (what BFloat16 gains there) and
// of the first side's float32 ms ÷ each other side's bf16 ms (the other
// side's bf16 head against the first side's float32 head, as issue 16's
// targets compare them). Only with repeated runs, as writeSpread.
func writePrecisionSpread(w io.Writer, sides []*side, hkeys []headRowKey, hvals map[headRowKey][]HeadRow) {
	if !repeated(sides) {
		return
	}
	var pairs [][2]headRowKey // float32, bf16
	for _, key := range hkeys {
		if f32, ok := strings.CutSuffix(key.loss, bf16Suffix); ok {
			twin := key
			twin.loss = f32
			if _, ok := hvals[twin]; ok {
				pairs = append(pairs, [2]headRowKey{twin, key})
			}
		}
	}
	if len(pairs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## BFloat16 against float32 (ratios run by run: float32 ms ÷ bf16 ms, > 1 means bf16 is faster)\n\n")
	fmt.Fprintf(w, "| loss | N | D | C | threads |")
	for _, sd := range sides {
		fmt.Fprintf(w, " %s: its float32 ÷ its bf16 |", sd.name)
	}
	for _, sd := range sides[1:] {
		fmt.Fprintf(w, " %s float32 ÷ %s bf16 |", sides[0].name, sd.name)
	}
	fmt.Fprint(w, "\n|---|---|---|---|---|", strings.Repeat("---:|", 2*len(sides)-1), "\n")
	for _, p := range pairs {
		f32, bf := p[0], p[1]
		fmt.Fprintf(w, "| %s | %d | %d | %d | %s |", f32.loss, f32.n, f32.d, f32.c, f32.nthreads)
		for _, sd := range sides {
			lo, hi := ratioRange(hvals, f32, sd.files, bf, sd.files)
			fmt.Fprintf(w, " %s |", fmtRange(lo, hi, true))
		}
		for _, sd := range sides[1:] {
			lo, hi := ratioRange(hvals, f32, sides[0].files, bf, sd.files)
			fmt.Fprintf(w, " %s |", fmtRange(lo, hi, true))
		}
		fmt.Fprintln(w)
	}
}

// ratio is num/den as "1.23×", or "—" when either is missing.
func fmtRatio(num, den float64) string {
	if num <= 0 || den <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", num/den)
}
