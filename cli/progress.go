package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// lineProgress draws a one-line progress bar on a terminal (redrawn in
// place, at most 10 times a second) and prints a plain line every few
// seconds otherwise, so logs of headless runs stay readable.
type lineProgress struct {
	w       io.Writer
	tty     bool
	label   string
	mu      sync.Mutex
	last    time.Time
	started time.Time
	drawn   bool
}

func newLineProgress(w io.Writer, label string) *lineProgress {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &lineProgress{w: w, tty: tty, label: label, started: time.Now()}
}

// update reports done of total units; detail is appended (e.g. a tensor name).
func (p *lineProgress) update(done, total float64, detail string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	interval := 5 * time.Second
	if p.tty {
		interval = 100 * time.Millisecond
	}
	if done < total && now.Sub(p.last) < interval {
		return
	}
	p.last = now
	frac := 0.0
	if total > 0 {
		frac = min(1, done/total)
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s %3.0f%% %s\n", p.label, 100*frac, detail)
		return
	}
	const width = 30
	fill := int(frac * width)
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	eta := ""
	if frac > 0.02 && frac < 1 {
		el := now.Sub(p.started)
		eta = " eta " + (time.Duration(float64(el)/frac) - el).Round(time.Second).String()
	}
	line := fmt.Sprintf("%s %s %3.0f%%%s %s", p.label, bar, 100*frac, eta, detail)
	if w, _, err := term.GetSize(int(p.w.(*os.File).Fd())); err == nil && len([]rune(line)) > w-1 && w > 10 {
		line = string([]rune(line)[:w-1])
	}
	fmt.Fprintf(p.w, "\r\033[K%s", line)
	p.drawn = true
}

// done clears the bar.
func (p *lineProgress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
