package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// sampleResults is a small result file as the command writes it.
func sampleResults(backend string, scale float64) *Results {
	return &Results{
		Schema:  schemaName,
		Version: schemaVersion,
		Quick:   true,
		Machine: Machine{
			CPU: "Test CPU", Features: []string{"AVX2", "FMA3"}, L1d: 48 << 10, L2: 1 << 20,
			GOOS: "linux", GOARCH: "amd64", Go: "go1.26.0", Backend: backend,
			Levels: []string{"generic", "avx2"}, Cores: 2, Date: "2025-01-02T03:04:05Z",
			CPUFamily: 6, CPUModel: 207, ClockMHz: 2300, ClockSource: "cpuinfo", LibVersion: "v0.1.0-3-gabcdef0",
		},
		FMAPeakGFLOPS: 100,
		FMAPeaks:      map[string]float64{"avx2": 100},
		Kernels: []KernelRow{
			{Family: "gemm", Name: "NT", Level: "generic", Size: "m=32 n=512 k=64", GFLOPS: 4 * scale, Ns: 1000, NsMin: 1000, NsMedian: 1100, NsMax: 1500},
			{Family: "gemm", Name: "NT", Level: "avx2", Size: "m=32 n=512 k=64", GFLOPS: 80 * scale, Speedup: 20, Frac: 0.8, Ns: 50},
			{Family: "lse", Name: "MaxSumExp", Level: "generic", Size: "n=256", GBPS: 1.5 * scale, Ns: 700},
			{Family: "lse", Name: "MaxSumExp", Level: "avx2", Size: "n=256", GBPS: 12 * scale, Speedup: 8, Ns: 85},
		},
		Heads: []HeadRow{
			{Loss: "ArcFace(64,0.5)", N: 32, D: 64, C: 100, Threads: 1, Ms: 0.5 / scale, GFLOPS: 2.4 * scale, ExtraMiB: 0.1, Calls: 3,
				MsMin: 0.5 / scale, MsMedian: 0.6 / scale, MsMax: 0.9 / scale},
			{Loss: "ArcFace(64,0.5)", N: 32, D: 64, C: 100, Threads: 2, Ms: 0.3 / scale, GFLOPS: 4 * scale, ExtraMiB: 0.1, Calls: 3},
			{Loss: "Focal(2)", N: 32, D: 64, C: 100, Threads: 1, Ms: 0.05 / scale, Calls: 5},
		},
	}
}

func TestJSONRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	want := sampleResults("avx2", 1)
	want.Machine.Extra = map[string]string{"blas": "libopenblas.so.0"}
	if err := writeResults(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// The documented field names.
	b, _ := os.ReadFile(path)
	for _, f := range []string{`"schema": "marginloss-bench"`, `"version": 1`, `"fma_peak_gflops"`, `"l1d"`, `"speedup_vs_generic"`,
		`"frac_peak"`, `"gflops"`, `"gbps"`, `"extra_mib"`, `"threads"`, `"backend"`, `"cores"`, `"date"`,
		`"cpu_family": 6`, `"cpu_model": 207`, `"clock_mhz": 2300`, `"clock_source"`, `"library_version": "v0.1.0-3-gabcdef0"`,
		`"ns_min"`, `"ns_median": 1100`, `"ns_max"`, `"ms_min"`, `"ms_median"`, `"ms_max"`} {
		if !bytes.Contains(b, []byte(f)) {
			t.Errorf("JSON lacks %s", f)
		}
	}
}

func TestReadResultsRejectsOtherSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, []byte(`{"schema": "marginloss-bench", "version": 2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readResults(path); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("readResults of version 2: err = %v, want a version error", err)
	}
}

func writeSamples(t *testing.T) (a, b string) {
	dir := t.TempDir()
	a, b = filepath.Join(dir, "base.json"), filepath.Join(dir, "new.json")
	nb := sampleResults("pytorch 2.1.2", 2)
	nb.Kernels = append(nb.Kernels, KernelRow{Family: "gemm", Name: "NT", Level: "openblas", Size: "m=32 n=512 k=64", GFLOPS: 240})
	nb.Heads[1].Threads = 16 // "all" matches across core counts
	// Rows that no file measured (zero values) are left out of -compare.
	nb.Kernels = append(nb.Kernels, KernelRow{Family: "exp", Name: "Exp", Level: "neon", Size: "n=256"})
	nb.Heads = append(nb.Heads, HeadRow{Loss: "Center(0.5)", N: 32, D: 64, C: 100, Threads: 1})
	nb.Machine.CPUFamily, nb.Machine.CPUModel, nb.Machine.ClockMHz, nb.Machine.LibVersion = 0, 0, 0, ""
	for path, r := range map[string]*Results{a: sampleResults("avx2", 1), b: nb} {
		if err := writeResults(path, r); err != nil {
			t.Fatal(err)
		}
	}
	return a, b
}

func TestCompare(t *testing.T) {
	a, b := writeSamples(t)
	var out, errOut bytes.Buffer
	if err := run([]string{"-compare", a, b}, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	s := out.String()
	for _, want := range []string{
		"| machine | base | new |",
		"| backend | avx2 | pytorch 2.1.2 |",
		"| gemm | NT | m=32 n=512 k=64 | avx2 | 80.0 | 160 | 2.00× |",
		"| lse | MaxSumExp | n=256 | generic | 1.50 | 3.00 | 2.00× |",
		"| gemm | NT | m=32 n=512 k=64 | openblas | — | 240 | — |",
		"| gemm | NT | m=32 n=512 k=64 | 80.0 (avx2) | 240 (openblas) | 3.00× |",
		"| ArcFace(64,0.5) | 32 | 64 | 100 | 1 | 0.500 | 0.250 | 2.00× |",
		"| ArcFace(64,0.5) | 32 | 64 | 100 | all | 0.300 | 0.150 | 2.00× |",
		"| Focal(2) | 32 | 64 | 100 | 1 | 0.0500 | 0.0250 | 2.00× |",
		"| family / model | 6 / 207 (0x06 / 0xcf) |  |",
		"| clock | 2300 MHz (cpuinfo) |  |",
		"> 1 means that file is faster than the baseline",
		"ratio = baseline ms ÷ ms, > 1 faster",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("compare output lacks %q:\n%s", want, s)
		}
	}
	for _, hidden := range []string{"| exp | Exp |", "Center(0.5)"} {
		if strings.Contains(s, hidden) {
			t.Errorf("compare output shows %q, which no file measured:\n%s", hidden, s)
		}
	}
	// A machine row that no file has is left out.
	one := sampleResults("avx2", 1)
	one.Machine.ClockMHz = 0
	var buf bytes.Buffer
	writeCompare(&buf, []*Results{one, one}, []string{"x.json", "y.json"})
	if strings.Contains(buf.String(), "| clock |") {
		t.Errorf("a clock row though no file has a clock:\n%s", buf.String())
	}
}

func TestPlot(t *testing.T) {
	a, b := writeSamples(t)
	for _, args := range [][]string{{a}, {a, b}, {"-linear", a, b}} {
		path := filepath.Join(t.TempDir(), "k.png")
		var out, errOut bytes.Buffer
		if err := run(append([]string{"-plot", path}, args...), &out, &errOut); err != nil {
			t.Fatalf("run %v: %v\n%s", args, err, errOut.String())
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%v: decoding the PNG: %v", args, err)
		}
		if r := img.Bounds(); r.Dx() < 400 || r.Dy() < 200 {
			t.Errorf("%v: image is %v, want a readable size", args, r)
		}
	}
}

func TestReport(t *testing.T) {
	var out bytes.Buffer
	writeReport(&out, sampleResults("avx2", 1), 0)
	s := out.String()
	for _, want := range []string{
		"| CPU | Test CPU |",
		"| L1d / L2 / L3 | 48 KiB / 1 MiB / ? |",
		"| gemm | NT | m=32 n=512 k=64 | avx2 | 80.0 GFLOP/s | 20.00× | 80% |",
		"| ArcFace(64,0.5) | 32 | 64 | 100 | 2 | 0.300 | 4.00 | 0.10 | 3 |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}

func TestBadArgs(t *testing.T) {
	var out, errOut bytes.Buffer
	for _, args := range [][]string{{"-compare"}, {"stray.json"}, {"-filter", "("}, {"-compare", "/nonexistent.json"}} {
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}

// TestPlan checks the plan's item names (what -filter matches) without
// running anything.
func TestPlan(t *testing.T) {
	seen := map[string]bool{}
	var kernels, heads int
	for _, it := range append(append(peakItems(quickConfig), kernelItems(quickConfig)...), headPlanItems(quickConfig)...) {
		if seen[it.name] {
			t.Errorf("item %q twice", it.name)
		}
		seen[it.name] = true
		switch {
		case strings.HasPrefix(it.name, "kernels/"):
			kernels++
		case strings.HasPrefix(it.name, "heads/"):
			heads++
		}
	}
	if kernels < 3*2 || heads != len(cmdHeads)*len(quickConfig.classes)*min(2, runtime.GOMAXPROCS(0)) {
		t.Errorf("%d kernel items, %d head items", kernels, heads)
	}
	for _, want := range []string{"kernels/gemm/NT/m=32 n=512 k=64/generic", "heads/ArcFace(64,0.5)/C=100/threads=1"} {
		if !seen[want] {
			t.Errorf("no item %q", want)
		}
	}
}

func TestSpreadOf(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want spread
	}{
		{[]float64{5}, spread{5, 5, 5}},
		{[]float64{3, 1, 2}, spread{1, 2, 3}},
		{[]float64{4, 1, 3, 2}, spread{1, 2.5, 4}},
	} {
		if got := spreadOf(c.in); got != c.want {
			t.Errorf("spreadOf(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestCompareSpread: files of one side (same backend, Go and CPU) given
// several times are grouped; each head gets its fastest–slowest ms per side
// and the range of the run-by-run ratio to the first side; with one file per
// side there is no such table.
func TestCompareSpread(t *testing.T) {
	var rs []*Results
	for _, s := range []struct {
		backend string
		scale   float64
	}{{"pytorch 1.13", 1}, {"avx512", 2}, {"pytorch 1.13", 0.5}, {"avx512", 4}} {
		rs = append(rs, sampleResults(s.backend, s.scale))
	}
	s := compareOf(t, rs, "t1", "g1", "t2", "g2")
	for _, want := range []string{
		"| loss | N | D | C | threads | t1 (2 runs) | g1 (2 runs) | ratio |",
		// t: 0.5 and 1 ms; g: 0.25 and 0.125 ms; ratios run by run 2× and 8×
		"| ArcFace(64,0.5) | 32 | 64 | 100 | 1 | 0.500–1.00 | 0.125–0.250 | 2.00–8.00× |",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("compare output lacks %q:\n%s", want, s)
		}
	}
	a, b := writeSamples(t)
	var out, errOut bytes.Buffer
	if err := run([]string{"-compare", a, b}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "repeated runs") {
		t.Errorf("a spread table for single runs:\n%s", out.String())
	}
}

// TestComparePrecision: with bf16 head rows and their float32 twins in
// repeated runs, -compare prints each side's float32 ÷ bf16 and the first
// side's float32 ÷ the other side's bf16, run by run; without bf16 rows it
// prints no such table.
func TestComparePrecision(t *testing.T) {
	var rs []*Results
	for _, s := range []struct {
		backend  string
		f32, b16 float64
	}{{"pytorch 1.13", 10, 8}, {"avx512", 4, 2}, {"pytorch 1.13", 12, 6}, {"avx512", 6, 4}} {
		r := sampleResults(s.backend, 1)
		r.Heads = []HeadRow{
			{Loss: "ArcFace(64,0.5)", N: 32, D: 64, C: 100, Threads: 1, Ms: s.f32, Calls: 3},
			{Loss: "ArcFace(64,0.5)" + bf16Suffix, N: 32, D: 64, C: 100, Threads: 1, Ms: s.b16, Calls: 3},
			{Loss: "CosFace(64,0.35)" + bf16Suffix, N: 32, D: 64, C: 100, Threads: 1, Ms: 1, Calls: 3}, // no twin
		}
		rs = append(rs, r)
	}
	s := compareOf(t, rs, "t1", "g1", "t2", "g2")
	_, table, ok := strings.Cut(s, "## BFloat16 against float32")
	if !ok {
		t.Fatalf("no precision table:\n%s", s)
	}
	for _, want := range []string{
		"| loss | N | D | C | threads | t1: its float32 ÷ its bf16 | g1: its float32 ÷ its bf16 | t1 float32 ÷ g1 bf16 |",
		// t: 10/8, 12/6; g: 4/2, 6/4; t's float32 ÷ g's bf16: 10/2, 12/4
		"| ArcFace(64,0.5) | 32 | 64 | 100 | 1 | 1.25–2.00× | 1.50–2.00× | 3.00–5.00× |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("precision table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "CosFace") {
		t.Errorf("a bf16 row without its float32 twin in the precision table:\n%s", table)
	}
	rs = rs[:0]
	for i, b := range []string{"pytorch 1.13", "avx512", "pytorch 1.13", "avx512"} {
		rs = append(rs, sampleResults(b, float64(i+1)))
	}
	if s := compareOf(t, rs, "t1", "g1", "t2", "g2"); strings.Contains(s, "BFloat16 against") {
		t.Errorf("a precision table without bf16 rows:\n%s", s)
	}
}

// compareOf writes rs[i] to names[i].json in a fresh directory and returns
// what `-compare` prints for those files, in that order.
func compareOf(t *testing.T, rs []*Results, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	var files []string
	for i, r := range rs {
		f := filepath.Join(dir, names[i]+".json")
		if err := writeResults(f, r); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	var out, errOut bytes.Buffer
	if err := run(append([]string{"-compare"}, files...), &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	return out.String()
}
