package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// The JSON schema of a result file (documented in main.go's comment).
const (
	schemaName    = "marginloss-bench"
	schemaVersion = 1
)

// Results is one run: the machine, the FMA peak, the kernels and the heads.
type Results struct {
	Schema        string             `json:"schema"`
	Version       int                `json:"version"`
	Quick         bool               `json:"quick,omitempty"`
	Machine       Machine            `json:"machine"`
	FMAPeakGFLOPS float64            `json:"fma_peak_gflops"`
	FMAPeaks      map[string]float64 `json:"fma_peaks,omitempty"`
	// BF16PeakGFLOPS is the single-core VDPBF16PS peak (a pair's two
	// multiply-adds counted as four flops), 0 without AVX512_BF16.
	BF16PeakGFLOPS float64 `json:"bf16_peak_gflops,omitempty"`
	// AMXPeakGFLOPS is the single-core AMX tile peak (TDPBF16PS on
	// register tiles, flops counted as for VDPBF16PS), 0 without AMX.
	AMXPeakGFLOPS float64     `json:"amx_peak_gflops,omitempty"`
	Kernels       []KernelRow `json:"kernels"`
	Heads         []HeadRow   `json:"heads"`
}

// Machine describes where a result file was measured.
type Machine struct {
	CPU      string   `json:"cpu"`
	Features []string `json:"features"`
	L1d      int      `json:"l1d"` // bytes, 0 when unknown
	L2       int      `json:"l2"`
	L3       int      `json:"l3,omitempty"`
	GOOS     string   `json:"goos"`
	GOARCH   string   `json:"goarch"`
	Go       string   `json:"go"`
	Backend  string   `json:"backend"`
	Levels   []string `json:"levels,omitempty"`
	Cores    int      `json:"cores"`
	Date     string   `json:"date"`
	// The CPU's family and model numbers (x86 CPUID; on arm64 the MIDR's
	// implementer and part), 0 when unknown, and its clock in MHz with
	// where that came from ("cpuid": the nominal frequency; "cpuinfo": the
	// kernel's current figure; "cpufreq": the maximum in sysfs).
	CPUFamily   int     `json:"cpu_family,omitempty"`
	CPUModel    int     `json:"cpu_model,omitempty"`
	ClockMHz    float64 `json:"clock_mhz,omitempty"`
	ClockSource string  `json:"clock_source,omitempty"`
	// LibVersion is the library's version: the module version of the
	// build, else the VCS revision stamped in it, else `git describe`.
	LibVersion string            `json:"library_version,omitempty"`
	Extra      map[string]string `json:"extra,omitempty"`
}

// KernelRow is one kernel at one level and size.
type KernelRow struct {
	Family  string  `json:"family"`
	Name    string  `json:"name"`
	Level   string  `json:"level"`
	Size    string  `json:"size"`
	GFLOPS  float64 `json:"gflops,omitempty"`
	GBPS    float64 `json:"gbps,omitempty"`
	Speedup float64 `json:"speedup_vs_generic,omitempty"`
	Frac    float64 `json:"frac_peak,omitempty"`
	Ns      float64 `json:"ns,omitempty"` // the fastest batch's time per call (= NsMin)
	// The time per call of the repeated batches: fastest, median, slowest.
	NsMin    float64 `json:"ns_min,omitempty"`
	NsMedian float64 `json:"ns_median,omitempty"`
	NsMax    float64 `json:"ns_max,omitempty"`
}

// Throughput is the row's GFLOP/s or GB/s, with its unit.
func (k KernelRow) Throughput() (float64, string) {
	if k.GFLOPS > 0 {
		return k.GFLOPS, "GFLOP/s"
	}
	return k.GBPS, "GB/s"
}

// HeadRow is one loss head, forward and backward, at one size and thread
// count.
type HeadRow struct {
	Loss     string  `json:"loss"`
	N        int     `json:"n"`
	D        int     `json:"d"`
	C        int     `json:"c"`
	Threads  int     `json:"threads"`
	Ms       float64 `json:"ms"`
	GFLOPS   float64 `json:"gflops,omitempty"`
	ExtraMiB float64 `json:"extra_mib"`
	Calls    int     `json:"calls,omitempty"`
	// The timed calls: fastest (= Ms), median, slowest.
	MsMin    float64 `json:"ms_min,omitempty"`
	MsMedian float64 `json:"ms_median,omitempty"`
	MsMax    float64 `json:"ms_max,omitempty"`
}

func writeResults(path string, r *Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readResults reads a result file of schema version 1 (this program's or
// pytorch_ref.py's).
func readResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if r.Schema != schemaName || r.Version != schemaVersion {
		return nil, fmt.Errorf("%s: schema %q version %d, want %q version %d", path, r.Schema, r.Version, schemaName, schemaVersion)
	}
	return &r, nil
}

// writeReport prints r as markdown.
func writeReport(w io.Writer, r *Results, took time.Duration) {
	m := r.Machine
	fmt.Fprintf(w, "# marginloss benchmark\n\n")
	if r.Quick {
		fmt.Fprintf(w, "*Quick run (-quick): tiny sizes, a few ms per item; the numbers only show that everything runs.*\n\n")
	}
	fmt.Fprintf(w, "| machine | |\n|---|---|\n")
	fmt.Fprintf(w, "| CPU | %s |\n", m.CPU)
	if v := m.familyModel(); v != "" {
		fmt.Fprintf(w, "| family / model | %s |\n", v)
	}
	if v := m.clock(); v != "" {
		fmt.Fprintf(w, "| clock | %s |\n", v)
	}
	if m.LibVersion != "" {
		fmt.Fprintf(w, "| marginloss | %s |\n", m.LibVersion)
	}
	fmt.Fprintf(w, "| features | %s |\n", strings.Join(m.Features, " "))
	fmt.Fprintf(w, "| L1d / L2 / L3 | %s / %s / %s |\n", sizeString(m.L1d), sizeString(m.L2), sizeString(m.L3))
	fmt.Fprintf(w, "| cores | %d |\n", m.Cores)
	fmt.Fprintf(w, "| Go, GOOS/GOARCH | %s, %s/%s |\n", m.Go, m.GOOS, m.GOARCH)
	fmt.Fprintf(w, "| backend (levels timed) | %s (%s) |\n", m.Backend, strings.Join(m.Levels, ", "))
	fmt.Fprintf(w, "| date | %s |\n", m.Date)
	for _, k := range sortedKeys(m.Extra) {
		fmt.Fprintf(w, "| %s | %s |\n", k, m.Extra[k])
	}
	if took > 0 {
		fmt.Fprintf(w, "| run took | %.1f s |\n", took.Seconds())
	}
	fmt.Fprintln(w)

	if len(r.FMAPeaks) > 0 {
		fmt.Fprintf(w, "## FMA peak (one core)\n\n| level | GFLOP/s |\n|---|---:|\n")
		for _, l := range sortedKeys(r.FMAPeaks) {
			fmt.Fprintf(w, "| %s | %.1f |\n", l, r.FMAPeaks[l])
		}
		if r.BF16PeakGFLOPS > 0 {
			fmt.Fprintf(w, "| bf16 dot (VDPBF16PS) | %.1f (%.2f× the FMA peak) |\n", r.BF16PeakGFLOPS, r.BF16PeakGFLOPS/r.FMAPeakGFLOPS)
		}
		if r.AMXPeakGFLOPS > 0 {
			fmt.Fprintf(w, "| bf16 AMX tiles (TDPBF16PS) | %.1f (%.2f× the FMA peak) |\n", r.AMXPeakGFLOPS, r.AMXPeakGFLOPS/r.FMAPeakGFLOPS)
		}
		fmt.Fprintf(w, "\nfrac_peak below is against %.1f GFLOP/s (gemm-bf16 rows at level avx512-pair: against the bf16 dot peak; at avx512-amx: against the AMX peak).\n\n", r.FMAPeakGFLOPS)
	} else {
		fmt.Fprintf(w, "No FMA peak probe on this architecture.\n\n")
	}

	if len(r.Kernels) > 0 {
		fmt.Fprintf(w, "## Kernels (one goroutine)\n\n")
		fmt.Fprintf(w, "| family | kernel | size | level | throughput | × generic | of peak |\n")
		fmt.Fprintf(w, "|---|---|---|---|---:|---:|---:|\n")
		for _, k := range r.Kernels {
			v, unit := k.Throughput()
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s %s | %s | %s |\n", k.Family, k.Name, k.Size, k.Level,
				fmtNum(v), unit, ratioString(k.Speedup), pctString(k.Frac))
		}
		fmt.Fprintln(w)
	}

	if len(r.Heads) > 0 {
		fmt.Fprintf(w, "## Heads, forward + backward (dx, dw)\n\n")
		fmt.Fprintf(w, "| loss | N | D | C | threads | ms | GFLOP/s | extra MiB | calls |\n")
		fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, h := range r.Heads {
			g := "—"
			if h.GFLOPS > 0 {
				g = fmtNum(h.GFLOPS)
			}
			fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %s | %s | %.2f | %d |\n", h.Loss, h.N, h.D, h.C, h.Threads,
				fmtNum(h.Ms), g, h.ExtraMiB, h.Calls)
		}
		fmt.Fprintf(w, "\nms: fastest call. GFLOP/s: 6·N·D·C per call (margin heads only). extra MiB: Go heap allocated by the first call of a fresh head (runtime.MemStats.TotalAlloc delta), i.e. its scratch.\n")
	}
}

// num formats a positive quantity with three significant digits or more.
func fmtNum(v float64) string {
	switch {
	case v == 0:
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%#.3g", v)
}

func ratioString(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v)
}

func pctString(v float64) string {
	if v == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}

func sizeString(b int) string {
	switch {
	case b <= 0:
		return "?"
	case b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}

// familyModel is "6 / 207 (0x06 / 0xcf)", or "" when unknown.
func (m Machine) familyModel() string {
	if m.CPUFamily == 0 && m.CPUModel == 0 {
		return ""
	}
	return fmt.Sprintf("%d / %d (%#02x / %#02x)", m.CPUFamily, m.CPUModel, m.CPUFamily, m.CPUModel)
}

// clock is "2300 MHz (cpuinfo)", or "" when unknown.
func (m Machine) clock() string {
	if m.ClockMHz <= 0 {
		return ""
	}
	return fmt.Sprintf("%.0f MHz (%s)", m.ClockMHz, m.ClockSource)
}
