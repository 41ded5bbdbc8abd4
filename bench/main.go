// Command bench measures marginloss on this machine and prints a markdown
// report: the CPU, the FMA peak, every kernel at every level the CPU
// supports, and the full loss heads, forward and backward, on one core and
// on all of them. About a minute on a 2-core machine:
//
//	go run ./bench                       # report on stdout, progress on stderr
//	go run ./bench -json new.json        # and save the results
//	go run ./bench -quick                # tiny sizes, a few seconds (tests, CI)
//	go run ./bench -filter 'heads/ArcFace'
//	go run ./bench -compare old.json new.json torch.json
//	go run ./bench -compare t1.json t2.json t3.json g1.json g2.json g3.json  # + ranges over repeated runs
//	go run ./bench -plot out.png old.json new.json
//	go run ./bench -plot out.png         # run, then plot this run
//	go run ./bench -plot out.png -linear a.json  # a linear throughput axis
//
// bench/pytorch_ref.py runs the margin heads, focal and center loss in
// PyTorch (float32, N×C logits) and the OpenBLAS sgemm at the head's GEMM
// shapes, and writes the same JSON, so that -compare states us against
// PyTorch on the same machine:
//
//	go run ./bench -json go.json
//	python3 bench/pytorch_ref.py --json torch.json
//	go run ./bench -compare torch.json go.json
//
// The package's benchmarks (the _test.go files) time the same kernels
// through b.ReportMetric, so benchstat can compare runs:
//
//	go test ./bench -run '^$' -bench . -count 5 | tee new.txt
//	benchstat old.txt new.txt
//
// Compare levels as ratios taken in one run; absolute times on a shared
// machine swing by up to 2× between runs.
//
// # What is measured
//
// Kernels run on one goroutine, each level's body called directly from its
// table (no dispatch), on slices that fit in L1/L2: the GEMMs at the
// head's per-tile shapes (N×ct×D logits, N×D×ct for dX̂, ct×D×N for dŴ, ct
// the head's class tile for N, 128 at N = 256) in GFLOP/s, the
// memory-bound kernels at a row length (512) and a class tile (4096) in
// GB/s (the bytes of the slices read and written, once each). Each is the
// best of a few batches of about 40 ms after a warm-up call. speedup is
// over the generic (pure Go) body of the same kernel and size; frac_peak
// (GEMM only) is the fraction of fma_peak_gflops, the single-core FMA peak
// of the widest level, measured by asm's FMAPeakLoop probe (AVX2 and
// AVX-512 on x86, NEON on arm64). The gemm-bf16 rows time asm's bfloat16
// GEMMs at the same shapes:
// each level's own bf16 driver, and on AVX512_BF16 CPUs both AVX-512
// drivers forced (avx512-pair: VDPBF16PS, its frac_peak against the
// bf16 dot-product peak of BF16PeakLoop; avx512-round: the float32 kernel
// on rounded packs).
//
// Heads run at the active level (the backend) with N = 256, D = 512 and
// C ∈ {1k, 10k, 100k}, once with GOMAXPROCS = 1 and once with all cores.
// Each (head, C, threads) gets a fresh head value; its first call is the
// warm-up and the memory measurement, then calls repeat until about 0.3 s
// has passed (at least one); ms is the fastest call. GFLOP/s counts the
// 6·N·D·C flops of the three GEMMs of the margin heads (the backward pass
// recomputes the logit tiles beyond the head's TileBudget, so 8·N·D·C
// execute there); focal (softmax form, γ = 2, on N×C logits) and center
// loss (Loss with dx, then Update) have none. extra_mib is the Go heap
// allocated during the first call (runtime.MemStats.TotalAlloc delta,
// after two GCs so that pools start empty): the head's scratch, which
// later calls reuse.
//
// # JSON schema
//
// -json writes one object, schema "marginloss-bench" version 1; fields
// marked (opt) may be absent, and readers ignore fields they do not know:
//
//	{
//	  "schema": "marginloss-bench", "version": 1,
//	  "quick": false,                    // (opt) -quick sizes
//	  "machine": {
//	    "cpu": "AMD EPYC 9R14",          // brand string
//	    "features": ["AVX2", "FMA3", "AVX512F", ...],
//	    "l1d": 32768, "l2": 1048576,     // bytes per core, 0 when unknown
//	    "l3": 33554432,                  // (opt)
//	    "goos": "linux", "goarch": "amd64",
//	    "go": "go1.26.0",                // or the Python version for PyTorch files
//	    "backend": "avx512",             // active level, or "pytorch 2.1.2"
//	    "levels": ["generic", "avx2", "avx512"], // (opt) levels timed
//	    "cores": 2,                      // logical CPUs (runtime.NumCPU)
//	    "date": "2025-01-02T15:04:05Z",  // RFC 3339, UTC
//	    "cpu_family": 25, "cpu_model": 17, // (opt) CPUID family/model (arm64: MIDR implementer/part)
//	    "clock_mhz": 2600,               // (opt) the CPU clock,
//	    "clock_source": "cpuid",         //   from cpuid (nominal), cpufreq (max) or cpuinfo (current)
//	    "library_version": "v0.1.0-12-g8a89ad6-dirty", // (opt) module version, VCS stamp or git describe
//	    "extra": {"blas": "..."}         // (opt) free-form strings
//	  },
//	  "fma_peak_gflops": 123.4,          // 0 when no probe
//	  "fma_peaks": {"avx2": 61.7, "avx512": 123.4}, // (opt) per level
//	  "bf16_peak_gflops": 89.5,          // (opt) VDPBF16PS, 12 chains, AVX512_BF16 only
//	  "kernels": [{
//	    "family": "gemm",                // gemm, gemm-bf16, normalize, lse, exp, margin
//	    "name": "NT",                    // kernel (and variant)
//	    "level": "avx512",               // generic, avx2, avx512, neon, openblas;
//	                                     // gemm-bf16 also avx512-pair (VDPBF16PS) and
//	                                     // avx512-round (float32 kernel, rounded packs)
//	    "size": "m=256 n=128 k=512",     // or "n=4096"
//	    "gflops": 98.1,                  // (opt) GEMM
//	    "gbps": 40.2,                    // (opt) the others
//	    "speedup_vs_generic": 12.5,      // (opt) absent without a generic row
//	    "frac_peak": 0.79,               // (opt) gflops / fma_peak_gflops (avx512-pair:
//	                                     // / bf16_peak_gflops)
//	    "ns": 171234,                    // per call, the fastest batch
//	    "ns_min": 171234, "ns_median": 172010, "ns_max": 180554 // (opt) over the repeated batches
//	  }],
//	  "heads": [{
//	    "loss": "ArcFace(64,0.5)",       // CosFace(64,0.35), CombinedMargin(64,1,0.3,0.2),
//	                                     // SphereFace(4,0), LargeMargin(4,0), Focal(2), Center(0.5);
//	                                     // "… bf16": the margin head at Precision = BFloat16
//	                                     // (PyTorch: under autocast to bfloat16)
//	    "n": 256, "d": 512, "c": 10000,
//	    "threads": 1,                    // GOMAXPROCS (torch threads)
//	    "ms": 123.4,                     // fastest call, forward + backward
//	    "gflops": 63.7,                  // (opt) 6·N·D·C / time, margin heads
//	    "extra_mib": 10.3,               // first call's heap allocation (peak RSS delta for PyTorch)
//	    "calls": 3,                      // (opt) timed calls
//	    "ms_min": 123.4, "ms_median": 125.0, "ms_max": 131.9 // (opt) over the timed calls
//	  }]
//	}
//
// -compare matches kernel rows by (family, name, level, size) and head rows
// by (loss, n, d, c, threads), threads counting only as 1 or all, so that
// machines with different core counts compare; the first file is the
// baseline and each ratio is stated so that > 1 means faster than it (the
// report says so above its tables); rows that no file measured are left
// out.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		os.Exit(2)
	}
}

// run is the command: it parses args, then compares, plots or measures,
// writing the report to stdout and progress to stderr.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		quick   = fs.Bool("quick", false, "tiny sizes and a few ms per item (tests, CI)")
		jsonOut = fs.String("json", "", "save the results (and the machine) to `FILE`")
		compare = fs.Bool("compare", false, "print a side-by-side table of the result files given as arguments (the first is the baseline)")
		plotOut = fs.String("plot", "", "draw kernel throughput per level into `FILE.png`, from the result files given as arguments or from this run")
		linear  = fs.Bool("linear", false, "with -plot: a linear throughput axis instead of a log one")
		filter  = fs.String("filter", "", "run only the items whose name (as in the progress line, e.g. kernels/gemm/NT/…/avx2, heads/ArcFace(64,0.5)/C=1000/threads=1) matches `REGEXP`")
	)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: bench [-quick] [-filter REGEXP] [-json FILE] [-plot FILE.png]")
		fmt.Fprintln(stderr, "       bench -compare base.json other.json ...")
		fmt.Fprintln(stderr, "       bench -plot FILE.png a.json [b.json ...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	files := fs.Args()
	if *compare || (*plotOut != "" && len(files) > 0) {
		if len(files) == 0 {
			return errors.New("-compare needs at least one result file")
		}
		rs := make([]*Results, len(files))
		for i, f := range files {
			r, err := readResults(f)
			if err != nil {
				return err
			}
			rs[i] = r
		}
		if *compare {
			writeCompare(stdout, rs, files)
		}
		if *plotOut != "" {
			if err := plotResults(*plotOut, rs, fileLabels(rs, files), !*linear); err != nil {
				return err
			}
			fmt.Fprintln(stderr, "wrote", *plotOut)
		}
		return nil
	}
	if len(files) > 0 {
		return fmt.Errorf("unexpected arguments %q (result files go with -compare or -plot)", files)
	}
	var re *regexp.Regexp
	if *filter != "" {
		var err error
		if re, err = regexp.Compile(*filter); err != nil {
			return fmt.Errorf("-filter: %v", err)
		}
	}
	cfg := defaultConfig
	if *quick {
		cfg = quickConfig
	}
	start := time.Now()
	res, err := measure(cfg, re, newProgress(stderr))
	if err != nil {
		return err
	}
	writeReport(stdout, res, time.Since(start))
	if *jsonOut != "" {
		if err := writeResults(*jsonOut, res); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "wrote", *jsonOut)
	}
	if *plotOut != "" {
		if err := plotResults(*plotOut, []*Results{res}, []string{"this run"}, !*linear); err != nil {
			return err
		}
		fmt.Fprintln(stderr, "wrote", *plotOut)
	}
	return nil
}
