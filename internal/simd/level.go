// Package simd decides, once per process, which kernel level the machine and
// the MARGINLOSS_SIMD override allow, and keeps the registry of kernel
// implementations that tests iterate. The registry also holds named values
// (Register, Lookup): the module's tests, fuzz targets and benchmarks reach
// the kernel tables and test hooks that the kernel packages keep
// unexported through it, and nothing outside the module can.
package simd

import (
	"fmt"
	"strings"
)

// Level is a kernel instruction-set level. Higher values on the same
// architecture are wider; Generic is pure Go and always available.
type Level int

// The levels a kernel may be implemented at.
const (
	Generic Level = iota
	AVX2
	AVX512
	NEON
)

var levelNames = [...]string{Generic: "generic", AVX2: "avx2", AVX512: "avx512", NEON: "neon"}

// numLevels bounds the Level values: one per name.
const numLevels = len(levelNames)

// levelFamily is the architecture whose instructions each level uses.
// Levels of one family are ordered (a higher one includes the lower ones);
// Generic belongs to none.
var levelFamily = [numLevels]string{Generic: "", AVX2: "x86", AVX512: "x86", NEON: "arm64"}

// String returns the lower-case name used by MARGINLOSS_SIMD and loss.Backend.
func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return "unknown"
}

// ParseLevel maps a MARGINLOSS_SIMD name to its Level.
func ParseLevel(s string) (Level, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, n := range levelNames {
		if n == s {
			return Level(i), true
		}
	}
	return Generic, false
}

// EnvOverride names the environment variable that caps the level.
const EnvOverride = "MARGINLOSS_SIMD"

// detected is what the CPU supports (assembly builds only), lowest first.
var detected = detect()

// CPUSupports reports whether the CPU, in this build, can run kernels written
// for level l. Generic is always supported.
func CPUSupports(l Level) bool {
	if l == Generic {
		return true
	}
	for _, d := range detected {
		if d == l {
			return true
		}
	}
	return false
}

// resolve picks the highest supported level not above the override cap. An
// unknown override value is ignored (the highest supported level is used).
// An override naming a level of another architecture caps at generic.
func resolve(supported []Level, override string) Level {
	best := Generic
	for _, l := range supported {
		if l > best {
			best = l
		}
	}
	if override == "" {
		return best
	}
	capLevel, ok := ParseLevel(override)
	if !ok {
		return best
	}
	if capLevel == Generic {
		return Generic
	}
	// Levels of one family are ordered; another family's cap allows none.
	res := Generic
	for _, l := range supported {
		if sameFamily(l, capLevel) && l <= capLevel && l > res {
			res = l
		}
	}
	return res
}

// sameFamily reports whether a and b are assembly levels of one
// architecture family.
func sameFamily(a, b Level) bool {
	if a < 0 || int(a) >= numLevels || b < 0 || int(b) >= numLevels {
		return false
	}
	return levelFamily[a] != "" && levelFamily[a] == levelFamily[b]
}

// archFamily is the levelFamily of the assembly a GOARCH can have.
func archFamily(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86"
	case "arm64":
		return "arm64"
	}
	return ""
}

// overrideWarning is the line printed (once, on stderr) when the
// MARGINLOSS_SIMD value cannot do what it says, or "": a value that names
// no level, or a level of another architecture than goarch's (neon on
// amd64, avx2 on arm64), which caps at generic. got is the level in use.
func overrideWarning(override, goarch string, got Level) string {
	if strings.TrimSpace(override) == "" {
		return ""
	}
	l, ok := ParseLevel(override)
	valid := strings.Join(levelNames[:], ", ")
	switch {
	case !ok:
		return fmt.Sprintf("marginloss: ignoring %s=%q: not a level (valid: %s); using %s", EnvOverride, override, valid, got)
	case l != Generic && levelFamily[l] != archFamily(goarch):
		return fmt.Sprintf("marginloss: %s=%s is a level for %s, not for this %s build: using %s (valid here: %s)",
			EnvOverride, l, levelFamily[l], goarch, got, strings.Join(validFor(goarch), ", "))
	}
	return ""
}

// validFor lists the MARGINLOSS_SIMD values meaningful on goarch.
func validFor(goarch string) []string {
	v := []string{Generic.String()}
	for l := Generic + 1; int(l) < numLevels; l++ {
		if levelFamily[l] == archFamily(goarch) {
			v = append(v, l.String())
		}
	}
	return v
}

// bf16 is whether the CPU, in this build, runs the bf16 dot-product
// instructions of its top vector level (detectBF16).
var bf16 = detectBF16()

// HasBF16 reports whether the CPU, in this build, has bf16 dot-product
// instructions on top of its widest level: AVX512_BF16 with AVX-512 on
// x86. Kernels that use them register for that level and check this.
func HasBF16() bool { return bf16 }

var bf16Fast = bf16DotFast()

// BF16DotFast reports whether the CPU's bf16 dot products (HasBF16) do more
// multiply-adds per second than its float32 FMAs, by a fixed rule of the
// vendor and architecture (see bf16DotFast), so that the bf16 GEMMs choose
// the same driver on every run.
func BF16DotFast() bool { return bf16Fast }

var amxBF16 = detectAMX()

// HasAMXBF16 reports whether this process may run AMX tile instructions
// with bf16 products (AMX-TILE and AMX-BF16, Sapphire Rapids and later
// Xeons) on top of AVX-512 with AVX512_BF16: the CPU has them and the OS
// granted the process the tile data state (Linux's arch_prctl
// ARCH_REQ_XCOMP_PERM, asked once at start-up where the CPU has AMX;
// other systems: false). Kernels that use them register for the AVX-512
// level and check this.
func HasAMXBF16() bool { return amxBF16 }
