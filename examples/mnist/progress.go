package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws training progress: on a terminal, one line redrawn with \r
// a few times a second; otherwise a plain line every `every` and at the end
// of each epoch.
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
	lossEMA float64 // smoothed batch loss
	nLoss   int
	nowFunc func() time.Time
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newProgress(w io.Writer, label string, epochs, perEpoch int) *progress {
	p := &progress{w: w, tty: isTerminal(w), every: 10 * time.Second, label: label,
		epochs: epochs, perEp: perEpoch, total: epochs * perEpoch, nowFunc: time.Now}
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
		rate = float64(p.done) / el
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
	const width = 24
	fill := int(frac*width + 0.5)
	fill = min(max(fill, 0), width)
	s := fmt.Sprintf("[%s%s] %3.0f%% %s", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), 100*frac, p.status(epoch, now))
	pad := ""
	if len(s) < p.lastLen {
		pad = strings.Repeat(" ", p.lastLen-len(s))
	}
	fmt.Fprint(p.w, "\r"+s+pad)
	p.lastLen = len(s)
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
