package main

import (
	"bufio"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/cpuid/v2"

	"github.com/marginloss/marginloss/internal/simd"
	"github.com/marginloss/marginloss/loss"
)

// reportedFeatures are the CPU features the report lists when present: the
// ones the kernels use or that tell the reader what a level can do.
var reportedFeatures = []cpuid.FeatureID{
	cpuid.AVX, cpuid.AVX2, cpuid.FMA3,
	cpuid.AVX512F, cpuid.AVX512CD, cpuid.AVX512BW, cpuid.AVX512DQ, cpuid.AVX512VL,
	cpuid.AVX512IFMA, cpuid.AVX512VBMI, cpuid.AVX512VBMI2, cpuid.AVX512VNNI,
	cpuid.AVX512BITALG, cpuid.AVX512VPOPCNTDQ, cpuid.AVX512BF16, cpuid.AVX512FP16,
	cpuid.AVX10,
	cpuid.ASIMD, cpuid.FP, cpuid.FPHP, cpuid.ASIMDHP, cpuid.ASIMDDP,
	cpuid.SVE, cpuid.SVE2,
}

// describeMachine reads the CPU (cpuid; /proc/cpuinfo and sysfs where
// cpuid knows nothing), the Go toolchain and the kernel levels.
func describeMachine() Machine {
	c := cpuid.CPU
	m := Machine{
		CPU:     strings.TrimSpace(c.BrandName),
		L1d:     max(c.Cache.L1D, 0),
		L2:      max(c.Cache.L2, 0),
		L3:      max(c.Cache.L3, 0),
		GOOS:    runtime.GOOS,
		GOARCH:  runtime.GOARCH,
		Go:      runtime.Version(),
		Backend: loss.Backend(),
		Cores:   runtime.NumCPU(),
		Date:    time.Now().UTC().Format(time.RFC3339),
	}
	for _, f := range reportedFeatures {
		if c.Supports(f) {
			m.Features = append(m.Features, f.String())
		}
	}
	for _, l := range simd.Usable() {
		m.Levels = append(m.Levels, l.String())
	}
	if m.CPU == "" {
		m.CPU = cpuinfoModel()
	}
	m.CPUFamily, m.CPUModel = c.Family, c.Model
	if m.CPUFamily == 0 && m.CPUModel == 0 {
		m.CPUFamily, m.CPUModel = cpuinfoFamilyModel()
	}
	m.ClockMHz, m.ClockSource = cpuClock(c.Hz)
	m.LibVersion = libraryVersion()
	if m.L1d == 0 || m.L2 == 0 {
		sys := sysfsCaches()
		m.L1d = cmpOr(m.L1d, sys["L1d"])
		m.L2 = cmpOr(m.L2, sys["L2"])
		m.L3 = cmpOr(m.L3, sys["L3"])
	}
	return m
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// cpuinfoModel is the model line of /proc/cpuinfo ("model name" on x86,
// "CPU part" or "Hardware" elsewhere), or "unknown".
func cpuinfoModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	found := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		k = strings.TrimSpace(k)
		if ok && found[k] == "" {
			found[k] = strings.TrimSpace(v)
		}
	}
	for _, k := range []string{"model name", "Hardware", "CPU part"} {
		if v := found[k]; v != "" {
			return v
		}
	}
	return "unknown"
}

// sysfsCaches reads cpu0's caches from Linux sysfs, keyed "L1d", "L2",
// "L3"; empty elsewhere.
func sysfsCaches() map[string]int {
	out := map[string]int{}
	dirs, _ := filepath.Glob("/sys/devices/system/cpu/cpu0/cache/index*")
	for _, d := range dirs {
		read := func(name string) string {
			b, _ := os.ReadFile(filepath.Join(d, name))
			return strings.TrimSpace(string(b))
		}
		level, typ, size := read("level"), read("type"), read("size")
		mult := 1
		switch {
		case strings.HasSuffix(size, "K"):
			mult, size = 1<<10, strings.TrimSuffix(size, "K")
		case strings.HasSuffix(size, "M"):
			mult, size = 1<<20, strings.TrimSuffix(size, "M")
		}
		n, err := strconv.Atoi(size)
		if err != nil || typ == "Instruction" {
			continue
		}
		key := "L" + level
		if level == "1" {
			key = "L1d"
		}
		out[key] = n * mult
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// cpuinfoFields reads the first value of each key of /proc/cpuinfo.
func cpuinfoFields() map[string]string {
	found := map[string]string{}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return found
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		k = strings.TrimSpace(k)
		if ok && found[k] == "" {
			found[k] = strings.TrimSpace(v)
		}
	}
	return found
}

// cpuinfoFamilyModel is /proc/cpuinfo's "cpu family" and "model" (x86), or
// "CPU implementer" and "CPU part" (arm64, hexadecimal); 0, 0 elsewhere.
func cpuinfoFamilyModel() (family, model int) {
	f := cpuinfoFields()
	parse := func(s string) int {
		v, err := strconv.ParseInt(s, 0, 64) // "0x41" or "25"
		if err != nil {
			return 0
		}
		return int(v)
	}
	if v, ok := f["cpu family"]; ok {
		return parse(v), parse(f["model"])
	}
	return parse(f["CPU implementer"]), parse(f["CPU part"])
}

// cpuClock is the CPU's clock in MHz and where it came from: cpuid's
// nominal frequency (hz, 0 when unknown), else the maximum of Linux's
// cpufreq, else /proc/cpuinfo's current "cpu MHz"; 0, "" when none says.
func cpuClock(hz int64) (float64, string) {
	if hz > 0 {
		return float64(hz) / 1e6, "cpuid"
	}
	if b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"); err == nil {
		if khz, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil && khz > 0 {
			return khz / 1e3, "cpufreq"
		}
	}
	if v, err := strconv.ParseFloat(cpuinfoFields()["cpu MHz"], 64); err == nil && v > 0 {
		return v, "cpuinfo"
	}
	return 0, ""
}

// libraryVersion is the marginloss version this bench was built from: the
// main module's version when built from a tagged module, else the VCS
// revision stamped by go build (with "-dirty" for uncommitted changes),
// else `git describe --tags --always --dirty` run here (go run stamps no
// VCS information), else "unknown".
func libraryVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		var rev, dirty string
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				rev = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "-dirty"
			}
		}
		if rev != "" {
			return rev + dirty
		}
	}
	if out, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output(); err == nil {
		if v := strings.TrimSpace(string(out)); v != "" {
			return v
		}
	}
	return "unknown"
}
