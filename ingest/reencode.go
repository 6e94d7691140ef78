package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// ReencodeConfig wires Reencode: the loaded bundle's encoders and their ids.
type ReencodeConfig struct {
	Store     vectordb.Store
	StoreName string // for the report
	// Encoders and EncoderIDs by instrument (onnx.Bundle.EncoderIDs). Collections of
	// instruments without an encoder are left alone.
	Encoders      map[string]onnx.Graph
	EncoderIDs    map[string]string
	SampleRate    int
	WindowSeconds float64
	Limits        audio.Limits
	// Collection names an instrument's collection; nil means loopid.Collection.
	Collection func(instrument string) string
	// Workers decode in parallel (default GOMAXPROCS); BatchSize windows go to the
	// encoder at once (default 16); Page rows are read, encoded and written at a time
	// (default 256).
	Workers, BatchSize, Page int
	// MaxWindows caps the windows of a long loop, as Config.MaxWindows does; the
	// companion collection of windows is rebuilt with the loops.
	MaxWindows int
	Logger     *slog.Logger
}

// ReencodeSuffix names the collection a re-encode builds beside the old one before
// it takes the old one's name.
const ReencodeSuffix = "__reencode"

// Stable codes of loops Reencode could not carry over.
const (
	ReencodeMissing      = "missing-file"  // the stored path no longer exists
	ReencodeChanged      = "file-changed"  // the file's bytes are not the stored loop's any more
	ReencodeUnreadable   = "unreadable"    // the file exists but cannot be read
	ReencodeUndecodable  = "decode-failed" // the audio reader refused it
	ReencodeEncodeFailed = "encode-failed" // the encoder failed on its window
)

// Statuses of an instrument in a ReencodeReport.
const (
	ReencodeCurrent = "current"     // recorded by the loaded encoder already: nothing done
	ReencodeDone    = "reencoded"   // rebuilt with the loaded encoder
	ReencodeAbsent  = "absent"      // no collection yet: nothing to re-encode
	ReencodeKept    = "kept"        // not replaced: no loop could be re-encoded (see Error)
	ReencodeStopped = "interrupted" // stopped part-way; the old collection is untouched
)

// ReencodeReport is what Reencode did, per instrument.
type ReencodeReport struct {
	Store       string             `json:"store,omitempty"`
	Instruments []InstrumentReport `json:"instruments"`
}

// InstrumentReport is one instrument's collection before and after.
type InstrumentReport struct {
	Instrument  string `json:"instrument"`
	Collection  string `json:"collection"`
	Status      string `json:"status"`
	FromEncoder string `json:"from_encoder,omitempty"`
	FromDim     int    `json:"from_dim,omitempty"`
	ToEncoder   string `json:"to_encoder"`
	ToDim       int    `json:"to_dim"`
	// Stored is how many loops the old collection held; Reencoded how many the new one
	// holds; Failed lists the others (their rows are not carried over).
	Stored    int               `json:"stored"`
	Reencoded int               `json:"reencoded"`
	Failed    []ReencodeFailure `json:"failed"`
	Error     string            `json:"error,omitempty"`
}

// ReencodeFailure is one stored loop that was not carried over, with a stable code.
type ReencodeFailure struct {
	ID     string `json:"id"`
	Path   string `json:"path"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Summary is the report for people, one line per instrument and one per failure.
func (r *ReencodeReport) Summary() string {
	var b strings.Builder
	for _, in := range r.Instruments {
		switch in.Status {
		case ReencodeCurrent:
			fmt.Fprintf(&b, "%s: already encoded by %s (%d loops), nothing to do\n", in.Instrument, in.ToEncoder, in.Stored)
		case ReencodeAbsent:
			fmt.Fprintf(&b, "%s: no collection %s, nothing to re-encode\n", in.Instrument, in.Collection)
		default:
			fmt.Fprintf(&b, "%s: %s: %d of %d loops re-encoded from %s (dim %d) to %s (dim %d), %d failed\n", in.Instrument, in.Status,
				in.Reencoded, in.Stored, orNotRecorded(in.FromEncoder), in.FromDim, in.ToEncoder, in.ToDim, len(in.Failed))
		}
		for _, f := range in.Failed {
			fmt.Fprintf(&b, "  %s %s (%s): %s\n", f.Code, f.Path, f.ID, f.Reason)
		}
		if in.Error != "" {
			fmt.Fprintf(&b, "  %s\n", in.Error)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func orNotRecorded(id string) string {
	if id == "" {
		return "(no encoder recorded)"
	}
	return id
}

// Reencode rebuilds every instrument collection whose recorded encoder id (or
// dimension) is not the loaded encoder's: each stored loop is decoded again from its
// stored path and encoded by the loaded encoder, keeping every stored field but the
// embedding and the encoder id.
//
// Crash safety: the new rows go to a collection of their own (the instrument's name +
// ReencodeSuffix); the old collection is untouched until every loop has been tried,
// and then the new one takes its name in one ReplaceCollection. An interrupted run
// leaves the old collection serving as before; running Reencode again resumes (rows
// already in the new collection are not encoded twice). Loops whose file is missing,
// changed or undecodable are reported with a stable code and not carried over, so no
// row of the old encoder survives in the new collection. When not one loop can be
// re-encoded (a library moved elsewhere, say) the old collection is kept and the
// instrument's Error says so.
//
// It returns an error when the store fails; per-loop problems are in the report.
func Reencode(ctx context.Context, cfg ReencodeConfig) (*ReencodeReport, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 16
	}
	if cfg.Page <= 0 {
		cfg.Page = 256
	}
	if cfg.Collection == nil {
		cfg.Collection = loopid.Collection
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(cfg.Encoders) == 0 {
		return nil, errors.New("reencode: the bundle has no encoders")
	}
	insts := make([]string, 0, len(cfg.Encoders))
	for inst := range cfg.Encoders {
		if cfg.EncoderIDs[inst] == "" {
			return nil, fmt.Errorf("reencode: no encoder id for %s: pass the bundle's EncoderIDs()", inst)
		}
		insts = append(insts, inst)
	}
	sort.Strings(insts)
	rep := &ReencodeReport{Store: cfg.StoreName, Instruments: []InstrumentReport{}}
	for _, inst := range insts {
		ir, err := reencodeOne(ctx, cfg, inst)
		rep.Instruments = append(rep.Instruments, ir)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func reencodeOne(ctx context.Context, cfg ReencodeConfig, inst string) (InstrumentReport, error) {
	enc := cfg.Encoders[inst]
	coll, tmp := cfg.Collection(inst), cfg.Collection(inst)+ReencodeSuffix
	ir := InstrumentReport{Instrument: inst, Collection: coll, ToEncoder: cfg.EncoderIDs[inst], ToDim: enc.OutputSize(), Failed: []ReencodeFailure{}}
	cs, err := cfg.Store.Collections(ctx)
	if err != nil {
		return ir, fmt.Errorf("reencode %s: list collections: %w", inst, err)
	}
	find := func(name string) (vectordb.Collection, bool) {
		i := slices.IndexFunc(cs, func(c vectordb.Collection) bool { return c.Name == name })
		if i < 0 {
			return vectordb.Collection{}, false
		}
		return cs[i], true
	}
	old, hasOld := find(coll)
	done, hasTmp := find(tmp)
	if !hasOld {
		// Only a ReplaceCollection cut short between its steps (Milvus parks the old
		// collection first) leaves the new collection without the old one: finish it.
		if hasTmp && vectordb.SameEncoder(done.EncoderID, ir.ToEncoder) && done.Dim == ir.ToDim {
			if _, parked := find(coll + vectordb.ParkedSuffix); parked {
				if err := cfg.Store.ReplaceCollection(ctx, tmp, coll); err != nil {
					return ir, fmt.Errorf("reencode %s: finish the interrupted swap of %s: %w", inst, coll, err)
				}
				ir.Status, ir.Stored, ir.Reencoded = ReencodeDone, done.Count, done.Count
				return ir, nil
			}
		}
		ir.Status = ReencodeAbsent
		return ir, nil
	}
	ir.FromEncoder, ir.FromDim, ir.Stored = old.EncoderID, old.Dim, old.Count
	if vectordb.SameEncoder(old.EncoderID, ir.ToEncoder) && old.Dim == ir.ToDim {
		ir.Status, ir.Reencoded = ReencodeCurrent, old.Count
		if hasTmp { // left by a re-encode towards yet another bundle
			if err := dropBuilt(ctx, cfg.Store, tmp); err != nil {
				return ir, fmt.Errorf("reencode %s: drop the leftover %s: %w", inst, tmp, err)
			}
		}
		return ir, nil
	}
	want := vectordb.Collection{Name: tmp, Dim: ir.ToDim, EncoderID: ir.ToEncoder}
	if err := cfg.Store.EnsureCollection(ctx, want); err != nil {
		if !errors.Is(err, vectordb.ErrEncoderMismatch) && !errors.Is(err, vectordb.ErrDimensionMismatch) {
			return ir, fmt.Errorf("reencode %s: create %s: %w", inst, tmp, err)
		}
		// A half-built collection of another encoder: start again.
		if err := dropBuilt(ctx, cfg.Store, tmp); err != nil {
			return ir, fmt.Errorf("reencode %s: drop the stale %s: %w", inst, tmp, err)
		}
		if err := cfg.Store.EnsureCollection(ctx, want); err != nil {
			return ir, fmt.Errorf("reencode %s: create %s: %w", inst, tmp, err)
		}
	}
	cfg.Logger.Info("re-encoding", "instrument", inst, "collection", coll, "loops", old.Count,
		"from", old.EncoderID, "from_dim", old.Dim, "to", ir.ToEncoder, "to_dim", ir.ToDim)
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			ir.Status = ReencodeStopped
			return ir, fmt.Errorf("reencode %s: %w: the old collection is untouched; run the same command again to resume", inst, err)
		}
		page, err := cfg.Store.List(ctx, coll, after, cfg.Page)
		if err != nil {
			return ir, fmt.Errorf("reencode %s: read %s: %w", inst, coll, err)
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
		n, fails, err := reencodePage(ctx, cfg, inst, tmp, page)
		ir.Reencoded += n
		ir.Failed = append(ir.Failed, fails...)
		if err != nil {
			ir.Status = ReencodeStopped
			return ir, err
		}
	}
	if ir.Reencoded == 0 && len(ir.Failed) > 0 {
		ir.Status = ReencodeKept
		ir.Error = fmt.Sprintf("not one of the %d stored loops could be re-encoded (first: %s %s), so %s is kept as it was: restore the files at their stored paths and run loopmatch ingest --reencode again, or ingest the library afresh into a new store",
			len(ir.Failed), ir.Failed[0].Code, ir.Failed[0].Path, coll)
		if err := dropBuilt(ctx, cfg.Store, tmp); err != nil {
			return ir, fmt.Errorf("reencode %s: drop %s: %w", inst, tmp, err)
		}
		return ir, nil
	}
	// The windows first: until the loops' collection is swapped the instrument is
	// refused as another encoder's anyway, and a rerun finds its rows done.
	if err := swapWindows(ctx, cfg, inst, tmp, coll, ir.ToEncoder); err != nil {
		ir.Status = ReencodeStopped
		return ir, err
	}
	if err := cfg.Store.ReplaceCollection(ctx, tmp, coll); err != nil {
		ir.Status = ReencodeStopped
		return ir, fmt.Errorf("reencode %s: put the new collection in place of %s: %w", inst, coll, err)
	}
	ir.Status = ReencodeDone
	return ir, nil
}

// dropBuilt drops a collection a re-encode built and its windows.
func dropBuilt(ctx context.Context, s vectordb.Store, tmp string) error {
	if err := s.DropCollection(ctx, loopid.WindowsCollection(tmp)); err != nil {
		return err
	}
	return s.DropCollection(ctx, tmp)
}

// swapWindows puts the re-encoded windows of long loops in place of the old ones, or
// drops old windows of another encoder when no loop has further windows now.
func swapWindows(ctx context.Context, cfg ReencodeConfig, inst, tmp, coll, encoder string) error {
	tmpW, collW := loopid.WindowsCollection(tmp), loopid.WindowsCollection(coll)
	cs, err := cfg.Store.Collections(ctx)
	if err != nil {
		return fmt.Errorf("reencode %s: list collections: %w", inst, err)
	}
	var hasTmp, oldOther bool
	for _, c := range cs {
		hasTmp = hasTmp || c.Name == tmpW
		oldOther = oldOther || (c.Name == collW && !vectordb.SameEncoder(c.EncoderID, encoder))
	}
	switch {
	case hasTmp:
		if err := cfg.Store.ReplaceCollection(ctx, tmpW, collW); err != nil {
			return fmt.Errorf("reencode %s: put the new windows in place of %s: %w", inst, collW, err)
		}
	case oldOther:
		if err := cfg.Store.DropCollection(ctx, collW); err != nil {
			return fmt.Errorf("reencode %s: drop the old windows %s: %w", inst, collW, err)
		}
	}
	return nil
}

// reencodePage decodes a page of stored loops (in parallel), encodes them in batches
// and writes them to the new collection, skipping those already there (a resumed run).
func reencodePage(ctx context.Context, cfg ReencodeConfig, inst, tmp string, page []vectordb.Row) (int, []ReencodeFailure, error) {
	ids := make([]string, len(page))
	for i, r := range page {
		ids[i] = r.ID
	}
	have, err := cfg.Store.Has(ctx, tmp, ids)
	if err != nil {
		return 0, nil, fmt.Errorf("reencode %s: ask %s what it holds: %w", inst, tmp, err)
	}
	want := cfg.EncoderIDs[inst]
	n := 0
	var todo []vectordb.Row
	for _, r := range page {
		if e, ok := have[r.ID]; ok && vectordb.SameEncoder(e, want) {
			n++
			continue
		}
		todo = append(todo, r)
	}
	wins := make([][][]float32, len(todo))
	fails := make([]*ReencodeFailure, len(todo))
	o := audio.LoadOptions{SampleRate: cfg.SampleRate, WindowSeconds: cfg.WindowSeconds, Limits: cfg.Limits}
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(cfg.Workers, max(len(todo), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				wins[i], fails[i] = loadStored(ctx, todo[i], o, cfg.MaxWindows)
			}
		}()
	}
	for i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return n, nil, fmt.Errorf("reencode %s: %w: the old collection is untouched; run the same command again to resume", inst, err)
	}
	enc := cfg.Encoders[inst]
	var out, windows []vectordb.Row
	var failed []ReencodeFailure
	var batch []int
	rows := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		flat := make([]float32, 0, rows*enc.InputSize())
		for _, i := range batch {
			for _, w := range wins[i] {
				flat = append(flat, w...)
			}
		}
		res, err := enc.Run(ctx, flat)
		d := enc.OutputSize()
		at := 0
		for _, i := range batch {
			if err != nil {
				failed = append(failed, failure(todo[i], ReencodeEncodeFailed, fmt.Errorf("encode: %w", err)))
				continue
			}
			r := todo[i]
			embeds := make([][]float32, len(wins[i]))
			for k := range embeds {
				embeds[k] = res[at*d : (at+1)*d : (at+1)*d]
				at++
			}
			r.EncoderID, r.Embedding = want, embeds[0]
			out = append(out, r)
			windows = appendWindowRows(windows, r, embeds[1:])
		}
		batch, rows = batch[:0], 0
	}
	for i := range todo {
		switch {
		case fails[i] != nil:
			failed = append(failed, *fails[i])
		case len(wins[i]) == 0 || len(wins[i][0]) != enc.InputSize():
			failed = append(failed, failure(todo[i], ReencodeEncodeFailed, fmt.Errorf("windows of the wrong size, the encoder takes %d samples", enc.InputSize())))
		default:
			batch = append(batch, i)
			rows += len(wins[i])
			if rows >= cfg.BatchSize {
				flush()
			}
		}
	}
	flush()
	if len(windows) > 0 {
		// Before the loops' rows, so a loop found in tmp has its windows (a resumed run
		// skips it).
		c := vectordb.Collection{Name: loopid.WindowsCollection(tmp), Dim: enc.OutputSize(), EncoderID: want}
		if err := cfg.Store.EnsureCollection(ctx, c); err != nil {
			return n, failed, fmt.Errorf("reencode %s: create %s: %w", inst, c.Name, err)
		}
		if err := cfg.Store.Upsert(ctx, c.Name, windows); err != nil {
			return n, failed, fmt.Errorf("reencode %s: store %d windows in %s: %w: the old collection is untouched; run the same command again to resume", inst, len(windows), c.Name, err)
		}
	}
	if len(out) > 0 {
		if err := cfg.Store.Upsert(ctx, tmp, out); err != nil {
			return n, failed, fmt.Errorf("reencode %s: store %d rows in %s: %w: the old collection is untouched; run the same command again to resume", inst, len(out), tmp, err)
		}
	}
	return n + len(out), failed, nil
}

// loadStored reads a stored loop's windows again (its tempo sets the hop, as at
// ingest), after checking that the file at its path is still the loop the row describes
// (same content id).
func loadStored(ctx context.Context, r vectordb.Row, o audio.LoadOptions, maxWindows int) ([][]float32, *ReencodeFailure) {
	l, fl := loadStoredLoop(ctx, r, o)
	if fl != nil {
		return nil, fl
	}
	return loopWindows(l, o.WindowSeconds, r.BPM, maxWindows), nil
}

// loadStoredLoop decodes a stored loop again from its path, after checking that the
// file there is still the loop the row describes (same content id).
func loadStoredLoop(ctx context.Context, r vectordb.Row, o audio.LoadOptions) (*audio.Loop, *ReencodeFailure) {
	f, err := os.Open(r.Path)
	if err != nil {
		code := ReencodeUnreadable
		if errors.Is(err, fs.ErrNotExist) {
			code = ReencodeMissing
		}
		fl := failure(r, code, fmt.Errorf("open the stored path: %w", err))
		return nil, &fl
	}
	id, err := loopid.ID(f)
	f.Close()
	if err != nil {
		fl := failure(r, ReencodeUnreadable, fmt.Errorf("read: %w", err))
		return nil, &fl
	}
	if id != r.ID {
		fl := failure(r, ReencodeChanged, fmt.Errorf("the file now has content id %s, the stored loop %s: ingest it again as a new loop", id, r.ID))
		return nil, &fl
	}
	l, err := audio.LoadLoop(ctx, r.Path, o)
	if err != nil {
		fl := failure(r, ReencodeUndecodable, err)
		return nil, &fl
	}
	return l, nil
}

func failure(r vectordb.Row, code string, err error) ReencodeFailure {
	return ReencodeFailure{ID: r.ID, Path: r.Path, Code: code, Reason: err.Error()}
}
