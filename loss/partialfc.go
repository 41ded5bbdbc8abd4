package loss

import (
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/par"
)

// PartialFC is Partial FC (An et al., "Partial FC: Training 10 Million
// Identities on a Single Machine", 2021): each call to Loss computes Head's
// loss over a sampled subset S of the C classes instead of all of them, so
// that a step costs O(N·|S|·D) rather than O(N·C·D) when C is in the
// millions.
//
// S holds every class that occurs in the batch's labels (the positives)
// plus negatives drawn uniformly without replacement from the other
// classes, until
//
//	|S| = max(P, ⌈SampleRate·C⌉),   P the number of distinct labels,
//
// where ⌈SampleRate·C⌉ is the smallest k whose k/C, rounded to float32,
// is at least SampleRate: the decimal rate you wrote, not the float32 value
// just above it (SampleRate 0.1 of 1000 classes samples 100, not 101). With
// SubCenters = K > 1 on the head, w has C·K rows and class c owns rows
// c·K … c·K+K−1: S is a set of classes, and each class in it brings its K
// rows.
//
// The draw is deterministic: the k-th successful call on a value (k = 0, 1,
// …) draws from a SplitMix64 stream seeded from Seed and k (initial state
// mix(Seed ⊕ mix(k + γ)), mix SplitMix64's output function, γ its
// increment; classes drawn with Lemire's unbiased multiply), so a run
// replays exactly, and the result is the same for any GOMAXPROCS. A call
// that returns an error does not count: it consumes no draw and leaves
// Sampled as it was. Sampling costs O(C/64) for a bitset plus expected
// O(|S|) draws (rejection draws the negatives while they are at most half
// of the free classes, the classes to leave out otherwise).
//
// A PartialFC keeps scratch buffers between calls (they never hold
// references to the caller's matrices once a call returns), so steady-state
// calls do not allocate; calls on one value from several goroutines are
// serialised. Its exported fields may be changed between calls.
type PartialFC struct {
	// Head is the margin loss computed over the sampled classes (ArcFace,
	// CosFace, …). Its options (Reduction, Accumulate, SubCenters, …)
	// apply; its LabelSmoothing spreads ε over the |S| sampled classes.
	Head *MarginSoftmax
	// SampleRate is the fraction of the classes sampled per call, in
	// (0, 1]; 1 gives Head's loss over all classes, bitwise.
	SampleRate float32
	// Seed selects the sequence of draws.
	Seed uint64
	// KeepUnsampled: dw rows outside S are left as they are; update only
	// the Sampled() rows. By default they are zeroed (the sampled loss does
	// not depend on them), the one part of a call whose cost grows with C
	// rather than |S|: set KeepUnsampled when the optimiser reads only the
	// rows of Sampled() (a sparse update). With Head.Accumulate rows
	// outside S are always left as they are (their gradient is 0).
	KeepUnsampled bool

	mu      sync.Mutex
	calls   uint64  // successful calls so far: the index of the next draw
	sampled []int32 // S of the last successful call, ascending
	ws      pfcWorkspace
}

// pfcChunk is the number of sampled classes (or, for the zeroing scatter,
// of classes; a multiple of 64) per parallel chunk. It depends on nothing
// but the shape, and each chunk writes its own rows, so the gather and the
// scatter are the same for any GOMAXPROCS.
const pfcChunk = 256

// Phases of a PartialFC call, run by par.Do.
const (
	pfcPhaseGather = iota
	pfcPhaseScatter
	pfcPhaseScatterZero
	pfcPhaseScatterW // Head.FusedStep: the stepped rows of wS back into w
)

// pfcWorkspace holds one call's scratch; buffers only grow.
type pfcWorkspace struct {
	phase  int
	c      int // classes
	rowLen int // floats per class: K·D
	d      int
	accum  bool

	pos   []uint64 // bitset of C bits: the classes in S
	excl  []uint64 // bitset of C bits: the classes left out (dense draws)
	rank  []int32  // rank[i]: classes of S below class 64·i
	s     []int32  // S being drawn, ascending
	lab   []int32  // labels remapped to positions in S
	wS    []float32
	dwS   []float32
	dwM   Matrix // dwS as the head's dw (kept here so that it need not escape per call)
	badW  []int  // per gather chunk: first non-finite row of wS, or −1
	badDW []int  // per gather chunk: first non-finite element of dwS, or −1

	w  Matrix  // the caller's w during the call
	dw *Matrix // the caller's dw during the call

	// Head.FusedStep: the W rows of S (K per class) and the stepper that
	// maps the head's gathered rows to them (fused.go).
	stepRows []int32
	stepper  rowStepper
}

var (
	errNilPartialFC = fmt.Errorf("%w: nil *PartialFC", ErrParam)
	errNilPFCHead   = fmt.Errorf("%w: PartialFC.Head is nil (set it to ArcFace, CosFace, …)", ErrParam)
)

// Validate reports whether the configuration is usable: a non-nil Head
// that passes Head.Validate and 0 < SampleRate ≤ 1. It returns nil or an
// error wrapping ErrParam, the same one Loss would return.
func (p *PartialFC) Validate() error {
	if p == nil {
		return errNilPartialFC
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.check()
}

func (p *PartialFC) check() error {
	if p.Head == nil {
		return errNilPFCHead
	}
	if !(p.SampleRate > 0 && p.SampleRate <= 1) {
		return fmt.Errorf("%w: PartialFC SampleRate = %g, want 0 < rate ≤ 1", ErrParam, p.SampleRate)
	}
	return p.Head.Validate()
}

// Calls returns the number of successful calls to Loss so far: the index
// k of the next call's draw. Save it with a checkpoint; SetCalls restores
// it.
func (p *PartialFC) Calls() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// SetCalls sets the draw counter to n, so that the next successful call
// draws exactly what the (n+1)-th successful call of a value with the same
// Seed and SampleRate drew (and its result, given the same x, w and
// labels). Use it to resume a run from a checkpoint that saved Calls.
// Sampled is left as it was (the S of this value's last call).
func (p *PartialFC) SetCalls(n uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = n
}

// Sampled returns S of the last successful call to Loss: the sampled class
// indices in ascending order (positions in it are the classes' positions in
// the head's call), for sparse optimiser updates of the rows of w (class c
// owns rows c·K … c·K+K−1 with sub-centers). It is a fresh copy; see
// AppendSampled for one that does not allocate. It returns nil before the
// first successful call.
func (p *PartialFC) Sampled() []int32 { return p.AppendSampled(nil) }

// AppendSampled appends S of the last successful call (what Sampled
// returns) to dst and returns the extended slice, allocating only when dst
// lacks the capacity.
func (p *PartialFC) AppendSampled(dst []int32) []int32 {
	if p == nil {
		return dst
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append(dst, p.sampled...)
}

// Loss samples S (see PartialFC) and returns Head's loss over the classes
// in S only, for embeddings x (N×D), class weights w (C×D, or C·K×D with
// SubCenters = K > 1) and labels (N class indices in [0, C)): the rows of
// the classes in S are gathered, in ascending class order, into a scratch
// matrix wS, the labels are mapped to positions in S, and the result is
// Head.Loss(x, wS, labelsS, dx, dwS), bitwise. When S is every class, w
// itself is passed through.
//
// Where dx (N×D) is non-nil it receives Head's gradient (through the
// sampled logits only), overwritten or, with Head.Accumulate, added to.
// Where dw (C×D, or C·K×D) is non-nil, the rows of the classes in S get
// their gradient (overwritten, or added to with Head.Accumulate) and the
// other rows are zeroed, unless KeepUnsampled or Head.Accumulate leaves
// them as they are. Apart from that zeroing (and O(C/64) for the
// sampling bitset), the cost grows with |S|, not C; rows of w outside S
// are not read (a NaN there is not reported).
//
// With Head.FusedStep set, the W rows of the classes in S (K per class)
// are stepped in place inside the backward pass, each as its own
// parameter (optim's StepRows rule: its own state and step count), and dw
// may be nil; the other rows of w and their state are untouched. The
// stepper sees the rows of w (BeginWeightStep gets w and the rows of S).
//
// dx may be x itself; any other sharing of memory between dx, dw, x, w and
// labels is an error wrapping ErrOverlap. On bad input (a nil Head, a
// SampleRate outside (0, 1], NaN included, or whatever Head.Loss rejects
// on the sampled problem) it returns an error wrapping ErrParam, ErrShape,
// ErrLabel, ErrNonFinite or ErrOverlap and leaves dx and dw untouched; a
// nil error comes with a finite loss and finite gradients. An empty batch
// still samples ⌈SampleRate·C⌉ classes and validates their rows.
func (p *PartialFC) Loss(x, w Matrix, labels []int32, dx, dw *Matrix) (float32, error) {
	if p == nil {
		return 0, errNilPartialFC
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.check(); err != nil {
		return 0, err
	}
	head := p.Head
	k := head.subCenters()
	if err := checkMatrix("x", x); err != nil {
		return 0, err
	}
	if err := checkMatrix("w", w); err != nil {
		return 0, err
	}
	if w.Rows < 1 || w.Cols < 1 {
		return 0, fmt.Errorf("%w: w is %d×%d, want at least one class and one dimension", ErrShape, w.Rows, w.Cols)
	}
	if w.Rows%k != 0 {
		return 0, fmt.Errorf("%w: w has %d rows, not a multiple of SubCenters = %d (C classes × K sub-centers)", ErrShape, w.Rows, k)
	}
	n, c, d := x.Rows, w.Rows/k, w.Cols
	if c > math.MaxInt32 {
		return 0, fmt.Errorf("%w: w holds %d classes, more than the int32 class indices of labels and Sampled reach", ErrShape, c)
	}
	if x.Cols != d && !(n == 0 && x.Cols == 0) {
		return 0, fmt.Errorf("%w: x has %d columns but w has %d (both are D)", ErrShape, x.Cols, d)
	}
	if err := checkLabels(labels, n, c); err != nil {
		return 0, err
	}
	if err := checkGrad("dx", dx, n, x.Cols); err != nil {
		return 0, err
	}
	if err := checkGrad("dw", dw, w.Rows, d); err != nil {
		return 0, err
	}
	outs := [...]span{gradSpan("dx", dx, "x"), gradSpan("dw", dw, "")}
	ins := [...]span{spanOf("x", x.Data), spanOf("w", w.Data), spanOf("labels", labels)}
	if err := checkOverlap(outs[:], ins[:]); err != nil {
		return 0, err
	}
	if err := checkStepOverlap(head.FusedStep, x, w, labels); err != nil {
		return 0, err
	}

	h := &p.ws
	m := h.sample(labels, c, p.SampleRate, p.Seed, p.calls)
	var step WeightStepper // nil: the head's own FusedStep, if any
	if head.FusedStep != nil {
		// Only the rows of S are stepped, each with its own state.
		h.stepRows = grow(h.stepRows, m*k)
		for i, cl := range h.s {
			for q := 0; q < k; q++ {
				h.stepRows[i*k+q] = cl*int32(k) + int32(q)
			}
		}
		h.stepper = rowStepper{user: head.FusedStep, w: w, rows: h.stepRows}
		step = &h.stepper
		defer func() { h.stepper = rowStepper{} }()
	}
	if m == c {
		// S is every class: Head's own call, bitwise.
		l, err := head.lossStep(x, w, labels, dx, dw, step)
		if err != nil {
			return 0, err
		}
		p.commit()
		return l, nil
	}
	for i, y := range labels {
		h.lab[i] = h.position(y)
	}
	h.c, h.d, h.rowLen, h.accum = c, d, k*d, head.Accumulate
	h.w, h.dw = w, dw
	defer h.release()
	if err := h.gather(k); err != nil {
		return 0, err
	}
	wS := Matrix{Rows: m * k, Cols: d, Data: h.wS}
	var dwS *Matrix
	if dw != nil {
		h.dwM = Matrix{Rows: m * k, Cols: d, Data: h.dwS}
		dwS = &h.dwM
	}
	l, err := head.lossStep(x, wS, h.lab, dx, dwS, step)
	if err != nil {
		return 0, err
	}
	if step != nil {
		h.phase = pfcPhaseScatterW
		par.Do(par.Chunks(m, pfcChunk), h)
	}
	if dw != nil {
		if h.accum || p.KeepUnsampled {
			h.phase = pfcPhaseScatter
			par.Do(par.Chunks(m, pfcChunk), h)
		} else {
			h.phase = pfcPhaseScatterZero
			par.Do(par.Chunks(c, pfcChunk), h)
		}
	}
	p.commit()
	return l, nil
}

// commit makes the S just drawn the Sampled set and counts the call.
func (p *PartialFC) commit() {
	p.sampled, p.ws.s = p.ws.s, p.sampled[:0]
	p.calls++
}

// release drops every reference to the caller's memory.
func (h *pfcWorkspace) release() { h.w, h.dw = Matrix{}, nil }

// sample draws S for a call whose labels are valid class indices in [0, c)
// and sizes the per-call buffers (h.s holds S, ascending; h.lab has room
// for the remapped labels). It returns |S|.
// sampleCount is ⌈rate·c⌉ for the decimal rate a float32 stands for: the
// smallest k with float32(k/c) ≥ rate (k = ⌈rate·c⌉ computed exactly, or
// one less when that already reaches rate in float32).
func sampleCount(rate float32, c int) int {
	k := int(math.Ceil(float64(rate) * float64(c)))
	if k > 0 && float32(float64(k-1)/float64(c)) >= rate {
		k--
	}
	return k
}

func (h *pfcWorkspace) sample(labels []int32, c int, rate float32, seed, call uint64) int {
	words := (c + 63) / 64
	h.pos = grow(h.pos, words)
	clear(h.pos)
	pos := h.pos
	distinct := 0
	for _, y := range labels {
		wi, b := y>>6, uint64(1)<<(y&63)
		if pos[wi]&b == 0 {
			pos[wi] |= b
			distinct++
		}
	}
	target := min(c, max(distinct, sampleCount(rate, c)))
	free, need := c-distinct, target-distinct
	g := newSplitMix64(seed, call)
	if 2*need <= free {
		// Sparse: draw the negatives by rejection (each try succeeds with
		// probability ≥ 1/2·free/C).
		for need > 0 {
			j := g.intn(uint64(c))
			wi, b := j>>6, uint64(1)<<(j&63)
			if pos[wi]&b == 0 {
				pos[wi] |= b
				need--
			}
		}
	} else {
		// Dense: draw the free classes to leave out, then take the rest.
		out := free - need
		h.excl = grow(h.excl, words)
		clear(h.excl)
		excl := h.excl
		for out > 0 {
			j := g.intn(uint64(c))
			wi, b := j>>6, uint64(1)<<(j&63)
			if (pos[wi]|excl[wi])&b == 0 {
				excl[wi] |= b
				out--
			}
		}
		for i, e := range excl {
			pos[i] = ^e
		}
		if r := c & 63; r != 0 {
			pos[words-1] &= uint64(1)<<r - 1
		}
	}
	h.rank = grow(h.rank, words+1)
	h.s = grow(h.s, target)[:0]
	for i, v := range pos {
		h.rank[i] = int32(len(h.s))
		for v != 0 {
			h.s = append(h.s, int32(i*64+bits.TrailingZeros64(v)))
			v &= v - 1
		}
	}
	h.rank[words] = int32(len(h.s))
	h.lab = grow(h.lab, len(labels))
	return len(h.s)
}

// position returns the index in S of class y, which S holds.
func (h *pfcWorkspace) position(y int32) int32 {
	wi := y >> 6
	below := h.pos[wi] & (uint64(1)<<(y&63) - 1)
	return h.rank[wi] + int32(bits.OnesCount64(below))
}

// gather copies the rows of the classes in S into wS (and, with
// Accumulate, those of dw into dwS) and reports the first row of w with a
// non-finite norm, or the first non-finite element of dw that Accumulate
// would add to, naming the caller's row and the class.
func (h *pfcWorkspace) gather(k int) error {
	m := len(h.s)
	h.wS = grow(h.wS, m*h.rowLen)
	if h.dw != nil {
		h.dwS = grow(h.dwS, m*h.rowLen)
	}
	chunks := par.Chunks(m, pfcChunk)
	h.badW, h.badDW = grow(h.badW, chunks), grow(h.badDW, chunks)
	h.phase = pfcPhaseGather
	par.Do(chunks, h)
	for ch := range chunks {
		if r := h.badW[ch]; r >= 0 {
			row := int(h.s[r/k])*k + r%k
			return fmt.Errorf("%w: w row %d (class %d) has norm %v (a NaN or ±Inf element, or a norm beyond float32)",
				ErrNonFinite, row, h.s[r/k], asm.L2Norm(h.w.Row(row)))
		}
	}
	for ch := range chunks {
		if e := h.badDW[ch]; e >= 0 {
			r := e / h.d
			row := int(h.s[r/k])*k + r%k
			return fmt.Errorf("%w: dw row %d column %d is %v, and Accumulate adds to it", ErrNonFinite, row, e%h.d, h.dwS[e])
		}
	}
	return nil
}

// RunChunk implements par.Job for every phase.
func (h *pfcWorkspace) RunChunk(ch int) {
	switch h.phase {
	case pfcPhaseGather:
		h.gatherChunk(ch)
	case pfcPhaseScatter:
		lo, hi := par.Range(ch, pfcChunk, len(h.s))
		for i := lo; i < hi; i++ {
			h.copyOut(i)
		}
	case pfcPhaseScatterZero:
		lo, hi := par.Range(ch, pfcChunk, h.c) // lo is a multiple of 64
		next := lo                             // first class not yet written
		for i := h.rank[lo/64]; i < h.rank[(hi+63)/64]; i++ {
			j := int(h.s[i])
			clear(h.dw.Data[next*h.rowLen : j*h.rowLen])
			h.copyOut(int(i))
			next = j + 1
		}
		clear(h.dw.Data[next*h.rowLen : hi*h.rowLen])
	case pfcPhaseScatterW:
		lo, hi := par.Range(ch, pfcChunk, len(h.s))
		rl := h.rowLen
		for i := lo; i < hi; i++ {
			j := int(h.s[i])
			copy(h.w.Data[j*rl:(j+1)*rl], h.wS[i*rl:(i+1)*rl])
		}
	}
}

// copyOut writes the gradient of the i-th class of S into dw.
func (h *pfcWorkspace) copyOut(i int) {
	j := int(h.s[i])
	copy(h.dw.Data[j*h.rowLen:(j+1)*h.rowLen], h.dwS[i*h.rowLen:(i+1)*h.rowLen])
}

func (h *pfcWorkspace) gatherChunk(ch int) {
	lo, hi := par.Range(ch, pfcChunk, len(h.s))
	h.badW[ch], h.badDW[ch] = -1, -1
	rl, d := h.rowLen, h.d
	for i := lo; i < hi; i++ {
		j := int(h.s[i])
		dst := h.wS[i*rl : (i+1)*rl]
		copy(dst, h.w.Data[j*rl:(j+1)*rl])
		if h.badW[ch] < 0 {
			for r := 0; r*d < rl; r++ {
				if !isFinite(asm.L2Norm(dst[r*d : (r+1)*d])) {
					h.badW[ch] = i*rl/d + r
					break
				}
			}
		}
		if h.dw != nil && h.accum {
			g := h.dwS[i*rl : (i+1)*rl]
			copy(g, h.dw.Data[j*rl:(j+1)*rl])
			if h.badDW[ch] < 0 {
				for e, v := range g {
					if !isFinite(v) {
						h.badDW[ch] = i*rl + e
						break
					}
				}
			}
		}
	}
}

// splitMix64 is Steele, Lea and Flood's SplitMix64 generator (2014), the
// seeding generator of the xoshiro family: small, fast, and the same on
// every platform.
type splitMix64 struct{ s uint64 }

const splitMixGamma = 0x9e3779b97f4a7c15

// newSplitMix64 returns the generator of call k for seed: its state starts
// at mix(seed ⊕ mix(k)), so every (seed, call) pair has its own stream.
func newSplitMix64(seed, k uint64) splitMix64 {
	return splitMix64{s: splitMixMix(seed ^ splitMixMix(k+splitMixGamma))}
}

// splitMixMix is SplitMix64's output function (a bijection of uint64).
func splitMixMix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (g *splitMix64) next() uint64 {
	g.s += splitMixGamma
	return splitMixMix(g.s)
}

// intn returns a uniform integer in [0, n), n > 0, without bias (Lemire's
// multiply-and-reject, as math/rand/v2 does).
func (g *splitMix64) intn(n uint64) uint64 {
	hi, lo := bits.Mul64(g.next(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(g.next(), n)
		}
	}
	return hi
}
