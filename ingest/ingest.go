package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loopmatch/loopmatch/analysis"
	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Config wires a run.
type Config struct {
	Store     vectordb.Store
	StoreName string // for the report
	BundleID  string // the whole bundle's id, for the report
	// EncoderIDs by instrument (onnx.Bundle.EncoderIDs): what each collection and row
	// records, and what decides whether a stored loop needs encoding again.
	EncoderIDs map[string]string
	// Collection names an instrument's collection; nil means loopid.Collection, the
	// names the read side serves. Tests on a shared Milvus use their own prefix.
	Collection    func(instrument string) string
	SampleRate    int
	WindowSeconds float64
	// Encoders by instrument; files of other instruments are skipped.
	Encoders map[string]onnx.Graph
	// Classifier, when set, is the bundle's instrument classifier: it decides the
	// instrument of loops whose names and manifest do not say, and checks the others.
	// Without it such loops are skipped (unknown-instrument).
	Classifier *onnx.Classifier
	// SkipNamedCheck leaves loops whose names or manifest say their instrument to the
	// name alone: the classifier then runs only on the others (no disagreement counts).
	SkipNamedCheck bool
	// Anomaly models by instrument (onnx.Runtime.OpenAnomaly): each stored loop gets its
	// model window's score and flag. Instruments without one store no scores (a later
	// ingest --rescore fills them in); the simple checks are stored either way.
	Anomaly map[string]*onnx.Anomaly
	// Embedders by instrument (onnx.Runtime.OpenEmbedder; ingest --embedders): each
	// loop's model window is also embedded by each into its collection
	// (loopid.EmbedderCollection), and loops already stored get the rows they lack
	// (decoded again, not re-encoded). None: only the encoder's latent is stored.
	Embedders map[string][]*onnx.Embedder
	// NoEstimates turns off the tempo and key estimates from the audio (package
	// analysis), which otherwise fill what names and manifests leave unknown.
	NoEstimates bool
	Rules       Rules
	Manifest    *Manifest
	Limits      audio.Limits
	// Workers decode in parallel (default GOMAXPROCS). BatchSize rows go to the encoder
	// at once (default 16); UpsertBatch rows to the store (default 256).
	Workers, BatchSize, UpsertBatch int
	// EncodeWorkers run encoder batches at once (default GOMAXPROCS): with RuntimeOptions'
	// single-threaded sessions each takes one core, so the encoders use every core when
	// decoding is ahead and leave the cores to the decoders when it is behind.
	EncodeWorkers int
	// MaxWindows caps the windows of a loop longer than the model's window (0 means
	// audio.DefaultMaxWindows, 1 keeps the first window only): window 0 is the loop's row
	// in its collection, windows 1.. go to the companion collection
	// (loopid.WindowsCollection) as rows loopid.WindowID(id, k), audio.HopSeconds apart.
	MaxWindows int
	// OneShots, when set, stores drum one-shots in their own collection (oneshot.go).
	OneShots *OneShots
	Progress *Progress
	Logger   *slog.Logger
}

type job struct {
	path   string
	id     string
	meta   Meta
	size   int64
	wins   [][]float32 // the loop's windows; wins[0] is the model window
	info   audio.Info
	embeds [][]float32 // one per window
	// fromAudio is the classifier's label when it decided the instrument.
	fromAudio onnx.Label
	health    vectordb.Health // checks from decode, the anomaly score from encode
	// extra holds the embedders' vectors of the model window (embedJobs).
	extra map[*onnx.Embedder][]float32
	// fill: a loop already stored that lacks these embedders' rows; it is decoded for
	// them alone, and stored (its row) gives the fields of the rows written.
	fill   []*onnx.Embedder
	stored *vectordb.Row
	// oneShot: a one-shot candidate (meta.Instrument is loopid.OneShots); oneShotMarked:
	// its folder or name says so outright; loopMeta: what it is as a loop, should it be
	// too long for a one-shot without being marked.
	oneShot, oneShotMarked bool
	loopMeta               Meta
}

// Run ingests the roots. It returns an error only when nothing can be done (no encoder,
// the store refuses the collections); every per-file problem is in the report.
func Run(ctx context.Context, cfg Config, roots []string) (*Report, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 16
	}
	if cfg.UpsertBatch <= 0 {
		cfg.UpsertBatch = 256
	}
	if cfg.EncodeWorkers <= 0 {
		cfg.EncodeWorkers = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Collection == nil {
		cfg.Collection = loopid.Collection
	}
	if len(cfg.Encoders) == 0 {
		return nil, errors.New("ingest: the bundle has no encoders")
	}
	cfg, err := withOneShots(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkAnomaly(cfg); err != nil {
		return nil, err
	}
	if err := checkClassifier(cfg); err != nil {
		return nil, err
	}
	for inst, e := range cfg.Encoders {
		if cfg.EncoderIDs[inst] == "" {
			return nil, fmt.Errorf("ingest: no encoder id for %s: pass the bundle's EncoderIDs()", inst)
		}
		err := cfg.Store.EnsureCollection(ctx, vectordb.Collection{Name: cfg.Collection(inst), Dim: e.OutputSize(), EncoderID: cfg.EncoderIDs[inst]})
		if err != nil {
			return nil, fmt.Errorf("ingest: collection for %s: %w", inst, err)
		}
	}
	if err := ensureEmbedders(ctx, cfg); err != nil {
		return nil, err
	}
	rep := newReport(cfg.StoreName, cfg.BundleID)
	var found atomic.Int64
	progCtx, stopProg := context.WithCancel(context.Background())
	progDone := make(chan struct{})
	if cfg.Progress != nil {
		go func() { cfg.Progress.run(progCtx, rep, func() int { return int(found.Load()) }); close(progDone) }()
	} else {
		close(progDone)
	}

	// Stages: walk -> identify (sniff, hash, metadata) -> dedupe against the store ->
	// decode -> encode in batches -> upsert in batches. Channels are small, so memory
	// stays bounded whatever the library size.
	cands := make(chan Candidate, 64)
	ided := make(chan *job, 64)
	fresh := make(chan *job, 64)
	decoded := make(chan *job, 2*cfg.BatchSize)
	classified := make(chan *job, 2*cfg.BatchSize)
	encoded := make(chan *job, cfg.UpsertBatch)
	fatal := make(chan error, 4)

	var walkErr error
	go func() {
		defer close(cands)
		walkErr = Walk(ctx, roots, func(c Candidate) error {
			found.Add(1)
			select {
			case cands <- c:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, func(p string, err error) { rep.fail(p, err) })
	}()

	var wg sync.WaitGroup
	for i := 0; i < cfg.Workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); identify(ctx, cfg, rep, cands, ided) }()
	}
	go func() { wg.Wait(); close(ided) }()

	go func() { defer close(fresh); dedupe(ctx, cfg, rep, ided, fresh, fatal) }()

	var dwg sync.WaitGroup
	for i := 0; i < cfg.Workers; i++ {
		dwg.Add(1)
		go func() { defer dwg.Done(); decode(ctx, cfg, rep, fresh, decoded) }()
	}
	go func() { dwg.Wait(); close(decoded) }()

	go func() { defer close(classified); classify(ctx, cfg, rep, decoded, classified) }()
	go func() { defer close(encoded); encode(ctx, cfg, rep, classified, encoded) }()
	upsertErr := upsert(cfg, rep, encoded)

	stopProg()
	<-progDone
	interrupted := ctx.Err() != nil
	rep.finish(interrupted)
	select {
	case err := <-fatal:
		return rep, err
	default:
	}
	if upsertErr != nil {
		return rep, upsertErr
	}
	if walkErr != nil && !errors.Is(walkErr, context.Canceled) {
		return rep, fmt.Errorf("ingest: %w", walkErr)
	}
	return rep, nil
}

func identify(ctx context.Context, cfg Config, rep *Report, in <-chan Candidate, out chan<- *job) {
	for c := range in {
		if ctx.Err() != nil {
			continue // drain: the run is stopping
		}
		rep.seen()
		j, reason, err := identifyOne(cfg, c)
		switch {
		case err != nil:
			rep.fail(c.Path, err)
		case reason != nil:
			rep.skip(c.Path, reason)
		default:
			out <- j
		}
	}
}

func identifyOne(cfg Config, c Candidate) (*job, *skipReason, error) {
	f, err := os.Open(c.Path)
	if err != nil {
		return nil, nil, failWith(CodeUnreadable, fmt.Errorf("open: %w", err))
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	if n == 0 {
		return nil, nil, failWith(CodeEmpty, errors.New("empty file (0 bytes): re-export or remove it"))
	}
	if audio.Sniff(head[:n]) == audio.Unknown {
		return nil, &skipReason{CodeNotAudio, "not an audio file (content is not WAV, AIFF, FLAC or Ogg Vorbis)"}, nil
	}
	meta := cfg.Manifest.Apply(c.Path, cfg.Rules.Infer(c.Root, c.Path))
	var one job
	if cfg.OneShots != nil {
		kind, cand, marked := oneShotName(c.Root, c.Path)
		decided := meta.InstrumentSource == vectordb.SourceManifest || meta.InstrumentSource == vectordb.SourceFlag
		if marked || (cand && !decided) {
			one = job{oneShot: true, oneShotMarked: marked, loopMeta: meta}
			meta = Meta{Instrument: loopid.OneShots, InstrumentSource: vectordb.SourceName, Pack: meta.Pack, Kind: kind}
			if kind != "" {
				meta.KindSource = vectordb.SourceName
			}
		}
	}
	if !one.oneShot { // a one-shot's kind comes from its name, or from the audio once decoded
		if reason := loopInstrument(cfg, meta); reason != nil {
			return nil, reason, nil
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, err
	}
	id, err := loopid.ID(f)
	if err != nil {
		return nil, nil, failWith(CodeUnreadable, fmt.Errorf("read: %w", err))
	}
	one.path, one.id, one.meta, one.size = c.Path, id, meta, c.Size
	return &one, nil, nil
}

// loopInstrument says why a loop cannot be stored for its instrument (nil when it can,
// or when the classifier will decide it once the audio is decoded).
func loopInstrument(cfg Config, meta Meta) *skipReason {
	switch {
	case meta.Instrument == "" && cfg.Classifier == nil && cfg.OneShots == nil:
		return unknownInstrument()
	case meta.Instrument == "":
		return nil // the classifier, or the audio's being a single hit, decides once decoded
	}
	if _, ok := cfg.Encoders[meta.Instrument]; !ok || meta.Instrument == loopid.OneShots {
		return &skipReason{CodeNoEncoder, fmt.Sprintf("no encoder for instrument %q in the bundle", meta.Instrument)}
	}
	return nil
}

func unknownInstrument() *skipReason {
	return &skipReason{CodeUnknownInstrument, "instrument unknown: name its folder or file with drum/bass keywords, list it in a --manifest, or force --instrument (or use a bundle with an instrument classifier)"}
}

// dedupe drops loops already stored by this encoder (without decoding them) and
// duplicates within the run, asking the store in batches.
func dedupe(ctx context.Context, cfg Config, rep *Report, in <-chan *job, out chan<- *job, fatal chan<- error) {
	seen := map[string]bool{}
	var batch []*job
	flush := func() {
		if len(batch) == 0 {
			return
		}
		byInst := map[string][]string{}
		for _, j := range batch {
			if j.meta.Instrument == "" { // not known before the classifier: any collection may hold it
				for inst := range cfg.Encoders {
					byInst[inst] = append(byInst[inst], j.id)
				}
				continue
			}
			byInst[j.meta.Instrument] = append(byInst[j.meta.Instrument], j.id)
			if li := j.loopMeta.Instrument; j.oneShot && !j.oneShotMarked && li != "" && li != j.meta.Instrument {
				byInst[li] = append(byInst[li], j.id) // stored as a loop by an earlier run: too long for a one-shot
			}
		}
		stored := map[string]string{}
		for inst, ids := range byInst {
			has, err := cfg.Store.Has(ctx, cfg.Collection(inst), ids)
			if err != nil {
				if ctx.Err() == nil {
					select {
					case fatal <- fmt.Errorf("ingest: ask the store what it holds: %w", err):
					default:
					}
				}
				batch = batch[:0]
				return
			}
			for id, b := range has {
				stored[inst+"/"+id] = b
			}
		}
		present := map[string][]*job{} // by instrument: stored loops that may lack embedder rows
		for _, j := range batch {
			key := j.meta.Instrument + "/" + j.id
			switch {
			case stored[key] != "" && vectordb.SameEncoder(stored[key], cfg.EncoderIDs[j.meta.Instrument]):
				rep.present(1)
				if !seen[key] {
					seen[key] = true
					present[j.meta.Instrument] = append(present[j.meta.Instrument], j)
				}
			case j.meta.Instrument == "" && storedAnywhere(cfg, stored, j.id):
				rep.present(1)
				if inst := storedIn(cfg, stored, j.id); !seen[inst+"/"+j.id] {
					seen[inst+"/"+j.id] = true
					present[inst] = append(present[inst], j)
				}
			case j.oneShot && !j.oneShotMarked && storedAs(cfg, stored, j.loopMeta.Instrument, j.id):
				rep.present(1)
			case seen[key]:
				rep.duplicate()
			default:
				seen[key] = true
				out <- j
			}
		}
		batch = batch[:0]
		if len(cfg.Embedders) == 0 {
			return
		}
		fill, err := missingEmbeddings(ctx, cfg, present)
		if err != nil {
			if ctx.Err() == nil {
				select {
				case fatal <- fmt.Errorf("ingest: %w", err):
				default:
				}
			}
			return
		}
		for _, j := range fill {
			out <- j
		}
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case j, ok := <-in:
			if !ok {
				flush()
				return
			}
			batch = append(batch, j)
			if len(batch) >= 128 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

func decode(ctx context.Context, cfg Config, rep *Report, in <-chan *job, out chan<- *job) {
	o := audio.LoadOptions{SampleRate: cfg.SampleRate, WindowSeconds: cfg.WindowSeconds, Limits: cfg.Limits}
	for j := range in {
		if ctx.Err() != nil {
			continue
		}
		// a one-shot, or a file that may turn out to be one, may be a tick shorter than a loop
		mayBeOneShot := cfg.OneShots != nil && (j.oneShot || j.meta.Instrument == "")
		jo := o
		if mayBeOneShot {
			jo.MinDuration = audio.OneShotMinDuration
		}
		l, err := audio.LoadLoop(ctx, j.path, jo)
		if err != nil {
			if ctx.Err() == nil {
				rep.fail(j.path, err)
			}
			continue
		}
		if j.fill != nil { // stored already: the embedders' window is all it needs
			j.wins, j.info = [][]float32{l.Window(cfg.WindowSeconds)}, l.Info
			out <- j
			continue
		}
		hearOneShot(cfg, j, l) // short, unnamed, and a single hit: a one-shot after all
		if j.oneShot {
			reason, loop, err := oneShotWindow(ctx, cfg, j, l)
			switch {
			case err != nil:
				rep.fail(j.path, err)
				continue
			case reason != nil:
				rep.skip(j.path, reason)
				continue
			case !loop:
				out <- j
				continue
			}
			// named for a kind, but too long for a one-shot: a loop after all
			j.oneShot, j.meta = false, j.loopMeta
			if reason := loopInstrument(cfg, j.meta); reason != nil {
				rep.skip(j.path, reason)
				continue
			}
		}
		if mayBeOneShot { // a loop after all: the loops' minimum holds
			if err := audio.CheckSignal(l.Mono, l.Rate); err != nil {
				rep.fail(j.path, fmt.Errorf("%s: %w", j.path, err))
				continue
			}
		}
		if j.meta.Instrument == "" && cfg.Classifier == nil { // not a hit, and nothing to hear its instrument
			rep.skip(j.path, unknownInstrument())
			continue
		}
		// The tempo from the first window (as the estimators were measured) sets the hop
		// of a long loop's windows, so it is estimated before they are cut.
		j.wins, j.info = [][]float32{l.Window(cfg.WindowSeconds)}, l.Info
		if !cfg.NoEstimates {
			estimate(j, cfg.SampleRate)
		}
		j.wins = loopWindows(l, cfg.WindowSeconds, j.meta.BPM, cfg.MaxWindows)
		j.health = loopChecks(l, j.meta.BPM)
		out <- j
	}
}

// estimate fills a loop's tempo and key from its decoded window where its manifest and
// name left them unknown (manifests win over names, names over the audio). Drum loops
// get no key; a loop whose instrument is not known yet gets one, which the write
// drops if the classifier hears drums.
func estimate(j *job, rate int) {
	needTempo := j.meta.BPM == 0
	needKey := j.meta.Key == "" && j.meta.Instrument != "drum"
	if !needTempo && !needKey {
		return
	}
	a, err := analysis.Analyze(j.wins[0], rate, j.info.Duration.Seconds(), analysis.Options{Key: needKey})
	if err != nil {
		return // the window was checked by the decoder; nothing to estimate from
	}
	if needTempo && a.TempoErr == nil {
		j.meta.BPM, j.meta.BPMSource, j.meta.BPMConfidence = math.Round(a.Tempo.BPM*100)/100, vectordb.SourceAudio, a.Tempo.Confidence
	}
	if needKey && a.KeyErr == nil {
		j.meta.Key, j.meta.KeySource, j.meta.KeyConfidence = a.Key.Key, vectordb.SourceAudio, a.Key.Confidence
	}
}

// encode batches windows per instrument through the encoder. Work already decoded when
// the run is interrupted is still encoded and stored, so Ctrl-C loses nothing done.
func encode(ctx context.Context, cfg Config, rep *Report, in <-chan *job, out chan<- *job) {
	pending := map[string][]*job{}
	pendingRows := map[string]int{} // windows waiting, so a batch holds BatchSize windows
	// Batches run on EncodeWorkers goroutines at once: with single-threaded sessions
	// (RuntimeOptions) each takes one core, and the decoders the rest.
	slots := make(chan struct{}, cfg.EncodeWorkers)
	var running sync.WaitGroup
	defer running.Wait()
	run := func(inst string) {
		b := pending[inst]
		if len(b) == 0 {
			return
		}
		pending[inst] = nil
		slots <- struct{}{}
		running.Add(1)
		go func() {
			defer func() { <-slots; running.Done() }()
			runBatch(ctx, cfg, rep, inst, b, out)
		}()
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case j, ok := <-in:
			if !ok {
				for inst := range pending {
					run(inst)
				}
				return
			}
			inst := j.meta.Instrument
			if n := cfg.Encoders[inst].InputSize(); len(j.wins) == 0 || len(j.wins[0]) != n {
				rep.fail(j.path, failWith(CodeEncodeFailed, fmt.Errorf("windows of %d samples, the encoder takes %d", len(slices.Concat(j.wins...))/max(1, len(j.wins)), n)))
				continue
			}
			pending[inst] = append(pending[inst], j)
			pendingRows[inst] += len(j.wins)
			if pendingRows[inst] >= cfg.BatchSize {
				pendingRows[inst] = 0
				run(inst)
			}
		case <-tick.C:
			// A partial batch waits at most one tick, so a slow walk never stalls rows.
			for inst := range pending {
				pendingRows[inst] = 0
				run(inst)
			}
		}
	}
}

// runBatch encodes one batch of one instrument's loops and passes them on.
func runBatch(ctx context.Context, cfg Config, rep *Report, inst string, all []*job, out chan<- *job) {
	enc := cfg.Encoders[inst]
	embedJobs(context.WithoutCancel(ctx), cfg, inst, all)
	var b []*job // the loops to encode; the others only lacked embedder rows
	for _, j := range all {
		if j.fill != nil {
			j.wins = nil
			out <- j
		} else {
			b = append(b, j)
		}
	}
	if len(b) == 0 {
		return
	}
	rows := 0
	for _, j := range b {
		rows += len(j.wins)
	}
	flat := make([]float32, 0, rows*enc.InputSize())
	for _, j := range b {
		for _, w := range j.wins {
			flat = append(flat, w...)
		}
	}
	res, err := enc.Run(context.WithoutCancel(ctx), flat)
	if err != nil {
		for _, j := range b {
			rep.fail(j.path, failWith(CodeEncodeFailed, fmt.Errorf("encode: %w", err)))
		}
		return
	}
	scoreJobs(context.WithoutCancel(ctx), cfg, inst, b)
	d := enc.OutputSize()
	i := 0
	for _, j := range b {
		j.embeds = make([][]float32, len(j.wins))
		for k := range j.wins {
			j.embeds[k] = res[i*d : (i+1)*d : (i+1)*d]
			i++
		}
		j.wins = nil
		out <- j
	}
}

// upsert writes encoded rows in batches per collection. It runs to the end even when the
// run is interrupted (with its own deadline), so everything encoded is stored.
func upsert(cfg Config, rep *Report, in <-chan *job) error {
	pending := map[string][]*job{}
	windowStore := newWindowWriter(cfg)
	var firstErr error
	write := func(inst string) {
		b := pending[inst]
		if len(b) == 0 {
			return
		}
		pending[inst] = nil
		if firstErr != nil {
			for _, j := range b {
				rep.fail(j.path, failWith(CodeStoreFailed, fmt.Errorf("not stored: %w", firstErr)))
			}
			return
		}
		rows := make([]vectordb.Row, 0, len(b))
		var windows []vectordb.Row
		extra := map[string][]vectordb.Row{} // embedder collection -> rows
		now := time.Now().UTC()
		for _, j := range b {
			if j.fill != nil {
				embedderRows(cfg, inst, *j.stored, j, extra)
				continue
			}
			if inst == "drum" && j.meta.KeySource == vectordb.SourceAudio {
				j.meta.Key, j.meta.KeySource, j.meta.KeyConfidence = "", "", 0 // drums have no key
			}
			if j.oneShot {
				rep.oneShot(j.meta)
			} else {
				rep.sources(j.meta)
			}
			row := vectordb.Row{ID: j.id, Instrument: inst, Pack: j.meta.Pack, Path: j.path, BPM: j.meta.BPM,
				Key: j.meta.Key, Duration: j.info.Duration.Seconds(), SampleRate: j.info.SampleRate,
				EncoderID: cfg.EncoderIDs[inst], IngestedAt: now, Embedding: j.embeds[0],
				BPMSource: j.meta.BPMSource, BPMConfidence: j.meta.BPMConfidence, KeySource: j.meta.KeySource,
				KeyConfidence: j.meta.KeyConfidence, InstrumentSource: j.meta.InstrumentSource, Health: j.health,
				Kind: j.meta.Kind, KindSource: j.meta.KindSource, KindConfidence: j.meta.KindConfidence}
			rep.health(inst, j.health)
			windows = appendWindowRows(windows, row, j.embeds[1:])
			embedderRows(cfg, inst, row, j, extra)
			rows = append(rows, row)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// A loop's further windows and embedder rows are written before its row: a loop
		// whose row is stored is whole, and a run cut short between them stores it again
		// on the next run.
		err := windowStore.upsert(ctx, inst, windows)
		if err == nil {
			err = upsertEmbedderRows(ctx, cfg, rep, extra)
		}
		if err == nil && len(rows) > 0 {
			err = cfg.Store.Upsert(ctx, cfg.Collection(inst), rows)
		}
		if err != nil {
			firstErr = fmt.Errorf("ingest: store %d rows: %w", len(rows), err)
			for _, j := range b {
				rep.fail(j.path, failWith(CodeStoreFailed, fmt.Errorf("not stored: %w", err)))
			}
			return
		}
		rep.ingested(inst, len(rows))
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case j, ok := <-in:
			if !ok {
				for inst := range pending {
					write(inst)
				}
				return firstErr
			}
			pending[j.meta.Instrument] = append(pending[j.meta.Instrument], j)
			if len(pending[j.meta.Instrument]) >= cfg.UpsertBatch {
				write(j.meta.Instrument)
			}
		case <-tick.C:
			for inst := range pending {
				write(inst)
			}
		}
	}
}

// storedAnywhere: some instrument's collection holds the loop, encoded by this bundle's
// encoder (a loop the classifier placed in an earlier run).
func storedAnywhere(cfg Config, stored map[string]string, id string) bool {
	for inst := range cfg.Encoders {
		if e := stored[inst+"/"+id]; e != "" && vectordb.SameEncoder(e, cfg.EncoderIDs[inst]) {
			return true
		}
	}
	return false
}

// storedIn is the instrument whose collection holds the loop (storedAnywhere).
func storedIn(cfg Config, stored map[string]string, id string) string {
	for inst := range cfg.Encoders {
		if e := stored[inst+"/"+id]; e != "" && vectordb.SameEncoder(e, cfg.EncoderIDs[inst]) {
			return inst
		}
	}
	return ""

}

// storedAs: the instrument's collection holds the loop, encoded by this bundle's encoder.
func storedAs(cfg Config, stored map[string]string, inst, id string) bool {
	e := stored[inst+"/"+id]
	return inst != "" && e != "" && vectordb.SameEncoder(e, cfg.EncoderIDs[inst])
}

// checkClassifier: a classifier reads the encoders' window.
func checkClassifier(cfg Config) error {
	if cfg.Classifier == nil {
		return nil
	}
	n := int(math.Round(float64(cfg.SampleRate) * cfg.WindowSeconds))
	if got := cfg.Classifier.Graph.InputSize(); got != n {
		return fmt.Errorf("ingest: the instrument classifier takes %d samples, the bundle's window is %d: rebuild the bundle with make models", got, n)
	}
	return nil
}

// encoderList names the instruments the bundle encodes, sorted.
func encoderList(cfg Config) string {
	names := make([]string, 0, len(cfg.Encoders))
	for inst := range cfg.Encoders {
		names = append(names, inst)
	}
	slices.Sort(names)
	return strings.Join(names, " and ")
}

// RuntimeOptions are the ONNX Runtime settings for a process that ingests: decoding runs
// beside the encoder on the same cores, so the encoder's idle threads must not spin, and
// each session runs single-threaded: Run's EncodeWorkers call it at once, one per core,
// which costs less CPU per window than one call split across the cores (5.6-6.1 against
// 7.6 CPU-ms per window on the 2-core machine) and leaves no thread waiting on another.
func RuntimeOptions() onnx.RuntimeOptions {
	return onnx.RuntimeOptions{NoSpin: true, IntraOpThreads: 1}
}
