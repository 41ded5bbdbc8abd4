package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestFitLine(t *testing.T) {
	status := "arcface epoch 3/8 loss 12.3456   51234 samples/s 0m12s left"
	for _, cols := range []int{200, 100, 79, 60, 40, 20, 1, 0, -3} {
		s := fitLine(0.5, status, cols)
		if n := utf8.RuneCountInString(s); n > max(cols, 0) {
			t.Errorf("cols %d: %d characters: %q", cols, n, s)
		}
		wantBar := cols >= len(" 50% ")+len(status)+3+5
		if hasBar := strings.HasPrefix(s, "["); hasBar != wantBar {
			t.Errorf("cols %d: bar %v, want %v: %q", cols, hasBar, wantBar, s)
		}
	}
	if s := fitLine(0.5, status, 200); !strings.HasPrefix(s, "[============            ]  50% arcface") {
		t.Errorf("wide: %q", s)
	}
	if s := fitLine(1, status, 200); !strings.HasPrefix(s, "["+strings.Repeat("=", 24)+"] 100%") {
		t.Errorf("full bar: %q", s)
	}
}

// TestProgressFitsTerminal: every redraw on a 50-column terminal is at most
// 49 characters, so the line never wraps.
func TestProgressFitsTerminal(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := newProgress(&buf, "arcface", 2, 1000)
	p.tty, p.width = true, func() int { return 50 }
	p.nowFunc = func() time.Time { now = now.Add(200 * time.Millisecond); return now }
	p.start = now
	for i := 0; i < 20; i++ {
		p.Add(i/10, 100, 12.5)
	}
	p.Finish()
	draws := strings.Split(buf.String(), "\r")
	if len(draws) < 10 {
		t.Fatalf("%d redraws", len(draws))
	}
	for _, d := range draws {
		if strings.Contains(d, "\n") {
			continue // the end-of-epoch lines are plain lines
		}
		if n := utf8.RuneCountInString(d); n > 49 {
			t.Errorf("a redraw of %d characters on 50 columns: %q", n, d)
		}
	}
}

func TestPanelTitle(t *testing.T) {
	for desc, want := range map[string]string{
		"ArcFace s=10 m=0.3, after 1 epoch(s) of plain softmax": "ArcFace s=10 m=0.3  (test acc 0.9000)",
		"CosFace s=30 m=0.35":                            "CosFace s=30 m=0.35  (test acc 0.9000)",
		"CombinedMargin s=10 cos(1·θ+0.2)−0.1":           "CombinedMargin s=10 cos(1·θ+0.2)−0.1  (test acc 0.9000)",
		"SphereFace m=4 λ=max(5, 1000·(1+0.12·iter)^−1)": "SphereFace m=4  (test acc 0.9000)",
	} {
		if got := panelTitle(desc, 0.9); got != want {
			t.Errorf("panelTitle(%q) = %q, want %q", desc, got, want)
		}
	}
}

// TestProgressResume: a run resumed after one of two epochs reports epoch
// 2 from 0 %, and its rate counts only its own samples.
func TestProgressResume(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := newProgress(&buf, "arcface", 2, 1000)
	p.nowFunc = func() time.Time { return now }
	p.start = now
	p.Resume(1)
	now = now.Add(time.Second)
	p.Add(1, 500, 1)
	p.EndEpoch(1, "")
	if out := buf.String(); !strings.Contains(out, " 50% arcface epoch 2/2") || !strings.Contains(out, "   500 samples/s") {
		t.Errorf("resumed progress: %q", out)
	}
}
