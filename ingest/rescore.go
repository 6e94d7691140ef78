package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// RescoreConfig wires Rescore: the loaded bundle's anomaly models.
type RescoreConfig struct {
	Store     vectordb.Store
	StoreName string // for the report
	// Anomaly models by instrument; collections of other instruments are left alone.
	Anomaly       map[string]*onnx.Anomaly
	SampleRate    int
	WindowSeconds float64
	Limits        audio.Limits
	// Collection names an instrument's collection; nil means loopid.Collection.
	Collection func(instrument string) string
	// Workers decode in parallel (default GOMAXPROCS); Page rows are read, scored and
	// written at a time (default 256).
	Workers, Page int
	// MaxWindows bounds the window rows of a long loop that get the loop's new health
	// (default audio.DefaultMaxWindows), as ingest wrote them.
	MaxWindows int
	// All re-scores every loop, not only those scored by another model or not at all.
	All    bool
	Logger *slog.Logger
}

// RescoreReport is what Rescore did, per instrument.
type RescoreReport struct {
	Store       string              `json:"store,omitempty"`
	Instruments []RescoreInstrument `json:"instruments"`
}

// RescoreInstrument is one instrument's collection: how many loops it holds, how many
// were scored by the loaded model already, how many were re-scored (and of those how
// many are flagged now), and the loops that could not be read again (left as they were).
type RescoreInstrument struct {
	Instrument string            `json:"instrument"`
	Collection string            `json:"collection"`
	Model      string            `json:"model"`
	Status     string            `json:"status"`
	Stored     int               `json:"stored"`
	Current    int               `json:"current"`
	Rescored   int               `json:"rescored"`
	Anomalous  int               `json:"anomalous"`
	Failed     []ReencodeFailure `json:"failed"`
}

// Statuses of an instrument in a RescoreReport (ReencodeAbsent when it has no
// collection).
const (
	RescoreDone    = "rescored"    // every loop now carries the loaded model's score
	RescoreCurrent = "current"     // nothing to do
	RescorePartial = "partial"     // some loops could not be read again (see Failed)
	RescoreStopped = "interrupted" // stopped part-way; run again to finish
)

// Summary is the report for people.
func (r *RescoreReport) Summary() string {
	var b strings.Builder
	for _, in := range r.Instruments {
		if in.Status == ReencodeAbsent {
			fmt.Fprintf(&b, "%s: no collection %s, nothing to re-score\n", in.Instrument, in.Collection)
			continue
		}
		fmt.Fprintf(&b, "%s: %s: %d of %d loops re-scored by %s (%d flagged anomalous), %d already current, %d failed\n",
			in.Instrument, in.Status, in.Rescored, in.Stored, in.Model, in.Anomalous, in.Current, len(in.Failed))
		for _, f := range in.Failed {
			fmt.Fprintf(&b, "  %s %s (%s): %s\n", f.Code, f.Path, f.ID, f.Reason)
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// Rescore brings the stored anomaly scores and checks to the loaded bundle's anomaly
// models without re-encoding: each loop scored by another model (or never) is decoded
// again from its stored path, checked, scored on its model window, and written back with
// every other field (embedding included) as it was; a long loop's window rows get the
// same health. Rows are updated in place, windows before the loop's row, so an
// interrupted run leaves every loop with its old health or its new one, and running it
// again resumes where it stopped. Loops whose file is gone or changed keep their old
// values and are reported.
func Rescore(ctx context.Context, cfg RescoreConfig) (*RescoreReport, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Page <= 0 {
		cfg.Page = 256
	}
	if cfg.MaxWindows <= 0 {
		cfg.MaxWindows = audio.DefaultMaxWindows
	}
	if cfg.Collection == nil {
		cfg.Collection = loopid.Collection
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var insts []string
	for inst, a := range cfg.Anomaly {
		if a != nil {
			insts = append(insts, inst)
		}
	}
	if len(insts) == 0 {
		return nil, errors.New("rescore: the bundle has no anomaly models (role anomaly): build them with make models, or point --bundle at a bundle that has them")
	}
	sort.Strings(insts)
	rep := &RescoreReport{Store: cfg.StoreName, Instruments: []RescoreInstrument{}}
	for _, inst := range insts {
		ir, err := rescoreOne(ctx, cfg, inst)
		rep.Instruments = append(rep.Instruments, ir)
		if err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func rescoreOne(ctx context.Context, cfg RescoreConfig, inst string) (RescoreInstrument, error) {
	a := cfg.Anomaly[inst]
	coll := cfg.Collection(inst)
	ir := RescoreInstrument{Instrument: inst, Collection: coll, Model: a.ID, Failed: []ReencodeFailure{}}
	n, err := cfg.Store.Count(ctx, coll)
	if errors.Is(err, vectordb.ErrNoCollection) {
		ir.Status = ReencodeAbsent
		return ir, nil
	}
	if err != nil {
		return ir, fmt.Errorf("rescore %s: count %s: %w", inst, coll, err)
	}
	ir.Stored = n
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			ir.Status = RescoreStopped
			return ir, fmt.Errorf("rescore %s: %w: loops done so far keep their new scores; run the same command again to finish", inst, err)
		}
		page, err := cfg.Store.List(ctx, coll, after, cfg.Page)
		if err != nil {
			return ir, fmt.Errorf("rescore %s: read %s: %w", inst, coll, err)
		}
		if len(page) == 0 {
			break
		}
		after = page[len(page)-1].ID
		var todo []vectordb.Row
		for _, r := range page {
			if !cfg.All && r.AnomalyModel == a.ID {
				ir.Current++
				continue
			}
			todo = append(todo, r)
		}
		done, flagged, fails, err := rescorePage(ctx, cfg, inst, todo)
		ir.Rescored += done
		ir.Anomalous += flagged
		ir.Failed = append(ir.Failed, fails...)
		if err != nil {
			ir.Status = RescoreStopped
			return ir, err
		}
	}
	switch {
	case len(ir.Failed) > 0:
		ir.Status = RescorePartial
	case ir.Rescored == 0:
		ir.Status = RescoreCurrent
	default:
		ir.Status = RescoreDone
	}
	return ir, nil
}

// rescoreWindows cuts what the anomaly model scores of a decoded loop: its model window,
// or all its windows (as ingest cuts them, at the stored tempo) when the model's loop score
// comes from all of them.
func rescoreWindows(cfg RescoreConfig, a *onnx.Anomaly, l *audio.Loop, bpm float64) [][]float32 {
	if !a.AllWindows() {
		return [][]float32{l.Window(cfg.WindowSeconds)}
	}
	return loopWindows(l, cfg.WindowSeconds, bpm, cfg.MaxWindows)
}

// rescorePage decodes a page's loops again (in parallel), checks and scores them, and
// writes their rows back with the new health.
func rescorePage(ctx context.Context, cfg RescoreConfig, inst string, todo []vectordb.Row) (int, int, []ReencodeFailure, error) {
	if len(todo) == 0 {
		return 0, 0, nil, nil
	}
	a := cfg.Anomaly[inst]
	hs := make([]vectordb.Health, len(todo))
	wins := make([][][]float32, len(todo))
	fails := make([]*ReencodeFailure, len(todo))
	o := audio.LoadOptions{SampleRate: cfg.SampleRate, WindowSeconds: cfg.WindowSeconds, Limits: cfg.Limits}
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(cfg.Workers, len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				l, fl := loadStoredLoop(ctx, todo[i], o)
				if fl != nil {
					fails[i] = fl
					continue
				}
				wins[i], hs[i] = rescoreWindows(cfg, a, l, todo[i].BPM), loopChecks(l, todo[i].BPM)
			}
		}()
	}
	for i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, 0, nil, fmt.Errorf("rescore %s: %w: run the same command again to finish", inst, err)
	}
	var failed []ReencodeFailure
	var ok []int
	var loops [][][]float32
	var bpms, durs []float32
	for i := range todo {
		switch {
		case fails[i] != nil:
			failed = append(failed, *fails[i])
		case len(wins[i][0]) != a.Graph.InputSize():
			failed = append(failed, failure(todo[i], ReencodeEncodeFailed, fmt.Errorf("a window of %d samples, the anomaly model takes %d", len(wins[i][0]), a.Graph.InputSize())))
		default:
			ok = append(ok, i)
			loops = append(loops, wins[i])
			bpms = append(bpms, declaredBPM(todo[i].BPM, todo[i].BPMSource))
			durs = append(durs, loopSeconds(todo[i].Duration))
		}
	}
	if len(ok) == 0 {
		return 0, 0, failed, nil
	}
	ptrs := make([]*vectordb.Health, len(ok))
	for k, i := range ok {
		ptrs[k] = &hs[i]
	}
	if err := scoreLoops(ctx, a, loops, bpms, durs, ptrs); err != nil {
		return 0, 0, failed, fmt.Errorf("rescore %s: %w", inst, err)
	}
	health := map[string]vectordb.Health{}
	ids := make([]string, len(ok))
	for k, i := range ok {
		ids[k] = todo[i].ID
		health[todo[i].ID] = hs[i]
	}
	coll := cfg.Collection(inst)
	// The window rows first: a loop row with the new model's id has its windows done.
	var wids []string
	for _, id := range ids {
		for k := 1; k < cfg.MaxWindows; k++ {
			wids = append(wids, loopid.WindowID(id, k))
		}
	}
	wcoll := loopid.WindowsCollection(coll)
	wrows, err := cfg.Store.Get(ctx, wcoll, wids)
	if err != nil && !errors.Is(err, vectordb.ErrNoCollection) {
		return 0, 0, failed, fmt.Errorf("rescore %s: read the windows in %s: %w", inst, wcoll, err)
	}
	if len(wrows) > 0 {
		for i := range wrows {
			if id, _, ok := loopid.ParseWindowID(wrows[i].ID); ok {
				wrows[i].Health = health[id]
			}
		}
		if err := cfg.Store.Upsert(ctx, wcoll, wrows); err != nil {
			return 0, 0, failed, fmt.Errorf("rescore %s: write the windows in %s: %w: run the same command again to finish", inst, wcoll, err)
		}
	}
	rows, err := cfg.Store.Get(ctx, coll, ids)
	if err != nil {
		return 0, 0, failed, fmt.Errorf("rescore %s: read %s: %w", inst, coll, err)
	}
	flagged := 0
	for i := range rows {
		rows[i].Health = health[rows[i].ID]
		if rows[i].Anomalous {
			flagged++
		}
	}
	if err := cfg.Store.Upsert(ctx, coll, rows); err != nil {
		return 0, 0, failed, fmt.Errorf("rescore %s: write %s: %w: run the same command again to finish", inst, coll, err)
	}
	return len(rows), flagged, failed, nil
}
