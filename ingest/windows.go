package ingest

import (
	"context"
	"fmt"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// loopWindows cuts a decoded loop into the windows ingest encodes: the model window,
// then for a loop longer than it one window per hop (a whole number of bars when bpm is
// known, audio.HopSeconds), at most maxWindows. Ingest, re-encode and re-score all cut
// through it, so a stored loop's windows are the same whichever made them.
func loopWindows(l *audio.Loop, windowSeconds, bpm float64, maxWindows int) [][]float32 {
	return l.Windows(windowSeconds, audio.HopSeconds(windowSeconds, bpm), maxWindows)
}

// appendWindowRows appends the rows of a loop's windows 1.. (embeds[k-1] is window k):
// the loop's row under loopid.WindowID(id, k), so a window found by a search carries its
// loop's fields and filters as the loop does.
func appendWindowRows(dst []vectordb.Row, loop vectordb.Row, embeds [][]float32) []vectordb.Row {
	for k, e := range embeds {
		w := loop
		w.ID = loopid.WindowID(loop.ID, k+1)
		w.Embedding = e
		dst = append(dst, w)
	}
	return dst
}

// windowWriter writes window rows to each instrument's companion collection, creating it
// the first time a long loop needs it, so a library of short loops has none.
type windowWriter struct {
	cfg     Config
	ensured map[string]bool
}

func newWindowWriter(cfg Config) *windowWriter {
	return &windowWriter{cfg: cfg, ensured: map[string]bool{}}
}

func (w *windowWriter) upsert(ctx context.Context, inst string, rows []vectordb.Row) error {
	if len(rows) == 0 {
		return nil
	}
	coll := loopid.WindowsCollection(w.cfg.Collection(inst))
	if !w.ensured[inst] {
		c := vectordb.Collection{Name: coll, Dim: len(rows[0].Embedding), EncoderID: w.cfg.EncoderIDs[inst]}
		if err := w.cfg.Store.EnsureCollection(ctx, c); err != nil {
			return fmt.Errorf("windows collection %s: %w", coll, err)
		}
		w.ensured[inst] = true
	}
	if err := w.cfg.Store.Upsert(ctx, coll, rows); err != nil {
		return fmt.Errorf("windows of long loops into %s: %w", coll, err)
	}
	return nil
}
