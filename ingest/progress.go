package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Progress renders a running ingest: a one-line bar redrawn in place on a terminal, or a
// structured log line every interval otherwise (CI logs, pipes, journald).
type Progress struct {
	// Out is the terminal to draw on; nil means log lines through Logger instead.
	Out io.Writer
	// Logger receives the structured progress lines when Out is nil.
	Logger *slog.Logger
	// Interval between updates (default 200 ms on a terminal, 5 s in logs).
	Interval time.Duration
}

// run draws until ctx is done, then draws one final line.
func (p Progress) run(ctx context.Context, r *Report, total func() int) {
	iv := p.Interval
	if iv <= 0 {
		iv = 5 * time.Second
		if p.Out != nil {
			iv = 200 * time.Millisecond
		}
	}
	start := time.Now()
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.draw(r, total(), time.Since(start), true)
			return
		case <-t.C:
			p.draw(r, total(), time.Since(start), false)
		}
	}
}

func (p Progress) draw(r *Report, found int, elapsed time.Duration, final bool) {
	seen, done, present, skipped, failed := r.Snapshot()
	handled := done + present + skipped + failed
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(handled) / s
	}
	eta := "?"
	if rate > 0 && found >= handled {
		eta = (time.Duration(float64(found-handled)/rate) * time.Second).Round(time.Second).String()
	}
	if p.Out == nil {
		if p.Logger != nil {
			p.Logger.Info("ingest progress", "found", found, "seen", seen, "ingested", done, "present", present,
				"skipped", skipped, "failed", failed, "files_per_s", round1(rate), "eta", eta)
		}
		return
	}
	const width = 28
	frac := 0.0
	if found > 0 {
		frac = float64(handled) / float64(found)
	}
	if frac > 1 {
		frac = 1
	}
	n := int(frac * width)
	bar := strings.Repeat("=", n) + strings.Repeat(" ", width-n)
	fmt.Fprintf(p.Out, "\r[%s] %d/%d files  %d new  %d present  %d skipped  %d failed  %.1f files/s  ETA %s   ",
		bar, handled, found, done, present, skipped, failed, rate, eta)
	if final {
		fmt.Fprintln(p.Out)
	}
}

func round1(x float64) float64 { return float64(int(x*10+0.5)) / 10 }
