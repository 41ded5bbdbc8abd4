package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
)

// progress draws training progress: on a terminal, one line redrawn with \r
// a few times a second, never wider than the terminal (a wider line wraps,
// and each redraw would then start a new line); otherwise a plain line
// every `every` and at the end of each epoch.
type progress struct {
	w       io.Writer
	tty     bool
	every   time.Duration
	label   string
	epochs  int
	perEp   int // samples per epoch
	total   int // samples over all epochs
	start   time.Time
	last    time.Time
	lastLen int
	done    int     // samples processed so far
	base    int     // samples done before this process started (a resumed run)
	lossEMA float64 // smoothed batch loss
	nLoss   int
	nowFunc func() time.Time
	width   func() int // the terminal's columns, asked at every redraw (it may be resized)
}

// isTerminal reports whether w is a terminal (golang.org/x/term), and
// returns its file descriptor.
func isTerminal(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// defaultColumns is the width assumed when the terminal reports none.
const defaultColumns = 80

func newProgress(w io.Writer, label string, epochs, perEpoch int) *progress {
	fd, tty := isTerminal(w)
	p := &progress{w: w, tty: tty, every: 10 * time.Second, label: label,
		epochs: epochs, perEp: perEpoch, total: epochs * perEpoch, nowFunc: time.Now,
		width: func() int {
			if c, _, err := term.GetSize(fd); err == nil && c > 0 {
				return c
			}
			return defaultColumns
		}}
	p.start = p.nowFunc()
	p.last = p.start
	return p
}

// Add records a finished batch of n samples with the given loss.
func (p *progress) Add(epoch, n int, lossValue float32) {
	p.done += n
	const k = 0.05
	if p.nLoss == 0 {
		p.lossEMA = float64(lossValue)
	} else {
		p.lossEMA += k * (float64(lossValue) - p.lossEMA)
	}
	p.nLoss++
	now := p.nowFunc()
	endOfEpoch := p.done%p.perEp == 0
	switch {
	case p.tty:
		if now.Sub(p.last) >= 100*time.Millisecond || endOfEpoch {
			p.draw(epoch, now)
		}
	case now.Sub(p.last) >= p.every:
		p.line(epoch, now, "")
	}
}

// Resume starts the count at the samples of the epochs a resumed run has
// done already (they count for the position, not for the rate).
func (p *progress) Resume(epochs int) { p.done, p.base = epochs*p.perEp, epochs*p.perEp }

// Pause excludes d (time spent on something else, such as evaluation) from
// the rate and the time-left estimate.
func (p *progress) Pause(d time.Duration) { p.start = p.start.Add(d) }

// EndEpoch reports the end of an epoch with an optional note (e.g. the
// test accuracy after it).
func (p *progress) EndEpoch(epoch int, note string) {
	now := p.nowFunc()
	if p.tty {
		p.clear()
	}
	p.line(epoch, now, note)
}

func (p *progress) status(epoch int, now time.Time) string {
	el := now.Sub(p.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(p.done-p.base) / el
	}
	left := "?"
	if rate > 0 {
		left = fmtDuration(time.Duration(float64(p.total-p.done) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("%s epoch %d/%d loss %.4f %6.0f samples/s %s left", p.label, epoch+1, p.epochs, p.lossEMA, rate, left)
}

func (p *progress) draw(epoch int, now time.Time) {
	p.last = now
	inEpoch := p.done - epoch*p.perEp
	frac := float64(inEpoch) / float64(p.perEp)
	s := fitLine(frac, p.status(epoch, now), p.width()-1) // the last column would wrap on some terminals
	n := utf8.RuneCountInString(s)
	pad := ""
	if n < p.lastLen {
		pad = strings.Repeat(" ", p.lastLen-n)
	}
	fmt.Fprint(p.w, "\r"+s+pad)
	p.lastLen = n
}

// fitLine is the redrawn line, "[=====     ]  42% status", in at most cols
// characters: the bar shrinks first (24 cells at most, dropped below 5),
// then the status is cut at cols.
func fitLine(frac float64, status string, cols int) string {
	pct := fmt.Sprintf("%3.0f%% ", 100*frac)
	rest := utf8.RuneCountInString(pct + status)
	bar := min(24, cols-rest-3) // "[" + bar + "] "
	s := pct + status
	if bar >= 5 {
		fill := min(max(int(frac*float64(bar)+0.5), 0), bar)
		s = "[" + strings.Repeat("=", fill) + strings.Repeat(" ", bar-fill) + "] " + s
	}
	if cols < 1 {
		return ""
	}
	if utf8.RuneCountInString(s) > cols {
		s = string([]rune(s)[:cols])
	}
	return s
}

func (p *progress) clear() {
	if p.lastLen > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.lastLen)+"\r")
		p.lastLen = 0
	}
}

func (p *progress) line(epoch int, now time.Time, note string) {
	p.last = now
	inEpoch := p.done - epoch*p.perEp
	s := fmt.Sprintf("%3.0f%% %s", 100*float64(inEpoch)/float64(p.perEp), p.status(epoch, now))
	if note != "" {
		s += "  " + note
	}
	fmt.Fprintln(p.w, s)
}

// Finish clears a terminal line so later output starts at column 0.
func (p *progress) Finish() {
	if p.tty {
		p.clear()
	}
}

func fmtDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}
