// Package simd decides, once per process, which kernel level the machine and
// the MARGINLOSS_SIMD override allow, and keeps the registry of kernel
// implementations that tests iterate.
package simd

import "strings"

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
	// Levels of one architecture are ordered; NEON stands alone on arm64.
	res := Generic
	for _, l := range supported {
		if sameFamily(l, capLevel) && l <= capLevel && l > res {
			res = l
		}
	}
	return res
}

func sameFamily(a, b Level) bool {
	x86 := func(l Level) bool { return l == AVX2 || l == AVX512 }
	return (x86(a) && x86(b)) || (a == NEON && b == NEON)
}
