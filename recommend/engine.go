package recommend

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Pair names a mapper: the seed's instrument and the target instrument.
type Pair struct{ From, To string }

func (p Pair) String() string { return p.From + "->" + p.To }

// Observer receives timings, so the Engine stays free of any metrics library.
type Observer interface {
	ObserveInference(role, instrument string, d time.Duration)
	ObserveSearch(collection string, d time.Duration)
}

// Config wires an Engine.
type Config struct {
	Store vectordb.Store
	// BundleID is the whole bundle's id (onnx.Bundle.ID): what previews depend on.
	BundleID string
	// EncoderIDs are the bundle's encoder ids by instrument (onnx.Bundle.EncoderIDs):
	// a collection is served only when it records its instrument's one.
	EncoderIDs map[string]string
	// Library names the store (its --store value) in what a refused collection's error
	// tells the user to run; empty leaves it out.
	Library string
	// SampleRate and WindowSeconds describe the encoders' input (for uploaded seeds).
	SampleRate    int
	WindowSeconds float64
	Encoders      map[string]onnx.Graph
	Mappers       map[Pair]onnx.Graph
	Decoders      map[string]onnx.Graph
	// Embedders by instrument and name (onnx role embedder): the representations other
	// than the latent that similar and profile can rank by, from the collections ingest
	// --embedders fills. None: the latent only.
	Embedders map[string]map[string]*onnx.Embedder
	// Collection names an instrument's collection; nil means loopid.Collection, the
	// names ingest writes. Tests on a shared Milvus use their own prefix.
	Collection func(instrument string) string
	// MaxCandidates bounds how many rows an MMR re-rank fetches (default 800).
	MaxCandidates int
	// CollectionCheckEvery is how long a collection's verified encoder id is trusted
	// before it is asked again (default 5 s): a per-request Collections call would cost a
	// round trip on Milvus, and a re-encode is rare.
	CollectionCheckEvery time.Duration
	Observer             Observer
	// Rerank is the second stage (zero: the bundle has no scorer).
	Rerank RerankConfig
	// Hub is the first stage's hubness correction (zero: the bundle has none).
	Hub HubConfig
	// Aggregate is how a long loop's windows make its score (default DefaultAggregate);
	// MaxWindows the most windows ingest stores per loop (default
	// audio.DefaultMaxWindows), which bounds how many window rows a search fetches.
	Aggregate  Aggregate
	MaxWindows int
	// SampleMatch, when set, ranks one-shots for contexts (context.go); OneShotEncoderID
	// (onnx.Bundle.OneShotEncoderID) is what the one-shot collection must record.
	SampleMatch      *onnx.SampleMatch
	OneShotEncoderID string
}

// Engine runs recommendations. It is safe for concurrent use.
type Engine struct {
	cfg Config

	mu      sync.Mutex
	checked map[string]collectionCheck

	features *featureCache // the reranker's pairfront features of stored loops
	coldWork chan struct{} // bounds the requests computing features at once

	hubMu    sync.Mutex
	hubs     map[Pair]*hubSeeds   // the first stage's mapped seeds, by pair
	hubBuild map[Pair]*sync.Mutex // one build of a pair's seeds at a time
}

type collectionCheck struct {
	at  time.Time
	err error // nil when the collection matched its instrument's encoder
}

// Limits of a request.
const (
	MaxK = 200
	// DefaultK is used when a request names no k.
	DefaultK = 10
)

// Errors callers test with errors.Is; the HTTP server maps each to a status.
var (
	// ErrInvalid: the request itself is wrong (bad k, bad lambda, both or neither seed).
	ErrInvalid = errors.New("invalid recommend request")
	// ErrNoMapper: the bundle has no mapper for the asked pair.
	ErrNoMapper = errors.New("no mapper for this instrument pair")
	// ErrNoDecoder: the bundle has no decoder for the instrument, so no preview.
	ErrNoDecoder = errors.New("no decoder for this instrument")
	// ErrSeedNotFound: the seed id is not in the source collection.
	ErrSeedNotFound = errors.New("seed loop not found")
	// ErrNotIngested: the collection does not exist yet.
	ErrNotIngested = errors.New("collection not ingested yet")
	// ErrEncoderMismatch: the collection was encoded by another encoder than the
	// loaded bundle's for its instrument.
	ErrEncoderMismatch = errors.New("collection was encoded by another encoder")
)

// NewEngine checks the wiring: every model's sizes agree with the latent dimension.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("recommend: Config.Store is nil")
	}
	if cfg.BundleID == "" {
		return nil, errors.New("recommend: Config.BundleID is empty: pass the loaded bundle's ID()")
	}
	if len(cfg.EncoderIDs) == 0 {
		return nil, errors.New("recommend: Config.EncoderIDs is empty: pass the loaded bundle's EncoderIDs()")
	}
	if len(cfg.Mappers) == 0 {
		return nil, errors.New("recommend: the bundle has no mapper, so nothing can be recommended: use a bundle with a mapper (role \"mapper\")")
	}
	if cfg.Collection == nil {
		cfg.Collection = loopid.Collection
	}
	if cfg.MaxCandidates <= 0 {
		cfg.MaxCandidates = 800
	}
	if cfg.CollectionCheckEvery <= 0 {
		cfg.CollectionCheckEvery = 5 * time.Second
	}
	dim := -1
	check := func(what string, n int) error {
		if dim == -1 {
			dim = n
		}
		if n != dim {
			return fmt.Errorf("recommend: %s works on latents of %d values, others on %d: the bundle is inconsistent", what, n, dim)
		}
		return nil
	}
	for p, m := range cfg.Mappers {
		if err := check("mapper "+p.String(), m.InputSize()); err != nil {
			return nil, err
		}
		if err := check("mapper "+p.String(), m.OutputSize()); err != nil {
			return nil, err
		}
	}
	for inst, m := range cfg.Encoders {
		if err := check("encoder "+inst, m.OutputSize()); err != nil {
			return nil, err
		}
	}
	for inst, m := range cfg.Decoders {
		if err := check("decoder "+inst, m.InputSize()); err != nil {
			return nil, err
		}
	}
	if err := checkRerankConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.SampleMatch != nil {
		if cfg.OneShotEncoderID == "" {
			return nil, errors.New("recommend: Config.SampleMatch without its OneShotEncoderID: pass the bundle's OneShotEncoderID()")
		}
		ids := maps.Clone(cfg.EncoderIDs)
		ids[loopid.OneShots] = cfg.OneShotEncoderID
		cfg.EncoderIDs = ids
	}
	if h := cfg.Hub; h.K < 0 || h.Depth < 0 || h.MaxSeeds < 0 || math.IsNaN(h.Beta) || math.IsInf(h.Beta, 0) || h.Beta < 0 {
		return nil, fmt.Errorf("recommend: Config.Hub %+v: give K, Depth and MaxSeeds >= 0 and a finite Beta >= 0", h)
	}
	return &Engine{cfg: cfg, checked: map[string]collectionCheck{}, features: newFeatureCache(cfg.Rerank.CacheBytes),
		coldWork: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)), hubs: map[Pair]*hubSeeds{}, hubBuild: map[Pair]*sync.Mutex{}}, nil
}

// checkRerankConfig fills the second stage's defaults and checks its models agree: every
// scorer input is its instrument's pairfront output, every pairfront reads the window.
func checkRerankConfig(cfg *Config) error {
	rc := &cfg.Rerank
	if rc.N == 0 {
		rc.N = DefaultRerankN
	}
	if rc.CacheBytes <= 0 {
		rc.CacheBytes = DefaultFeatureCacheBytes
	}
	if rc.N < 1 || rc.N > MaxRerankN {
		rc.N = min(max(rc.N, 1), MaxRerankN) // the manifest allows more than a request may ask
	}
	if rc.Scorer == nil {
		rc.Default = false
		return nil
	}
	sizes := rc.Scorer.InputSizes()
	if len(sizes) != len(rc.ScorerInputs) || len(sizes) != 2 {
		return fmt.Errorf("recommend: the scorer takes %d inputs, named %v: a scorer takes a drum's and a bass's features", len(sizes), rc.ScorerInputs)
	}
	window := audio.WindowSamples(cfg.SampleRate, cfg.WindowSeconds)
	for i, inst := range rc.ScorerInputs {
		pf := rc.PairFronts[inst]
		if pf == nil {
			return fmt.Errorf("recommend: the scorer reads %s features and the bundle has no %s pairfront", inst, inst)
		}
		if pf.OutputSize() != sizes[i] {
			return fmt.Errorf("recommend: the %s pairfront makes %d values, the scorer's %s input takes %d: the bundle is inconsistent", inst, pf.OutputSize(), inst, sizes[i])
		}
		if pf.InputSize() != window {
			return fmt.Errorf("recommend: the %s pairfront reads %d samples, the window is %d: the bundle is inconsistent", inst, pf.InputSize(), window)
		}
	}
	return nil
}

// BundleID is the id of the bundle the engine's models come from.
func (e *Engine) BundleID() string { return e.cfg.BundleID }

// EncoderID is the loaded bundle's encoder id for the instrument ("" when it has no
// encoder for it).
func (e *Engine) EncoderID(instrument string) string { return e.cfg.EncoderIDs[instrument] }

// EncodedByLoaded reports whether a collection of the instrument recording encoderID
// was filled by the loaded bundle's encoder, so the engine serves it.
func (e *Engine) EncodedByLoaded(instrument, encoderID string) bool {
	want, ok := e.cfg.EncoderIDs[instrument]
	return ok && vectordb.SameEncoder(encoderID, want)
}

// Store is the engine's vector store.
func (e *Engine) Store() vectordb.Store { return e.cfg.Store }

// Collection names an instrument's collection.
func (e *Engine) Collection(instrument string) string { return e.cfg.Collection(instrument) }

// AudioOptions are the decode settings for an uploaded seed of the engine's encoders.
func (e *Engine) AudioOptions(lim audio.Limits) audio.LoadOptions {
	return audio.LoadOptions{SampleRate: e.cfg.SampleRate, WindowSeconds: e.cfg.WindowSeconds, Limits: lim}
}

// Pairs lists the instrument pairs with a mapper, sorted.
func (e *Engine) Pairs() []Pair {
	ps := make([]Pair, 0, len(e.cfg.Mappers))
	for p := range e.cfg.Mappers {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
	return ps
}

// HasDecoder reports whether previews can be decoded for the instrument.
func (e *Engine) HasDecoder(instrument string) bool { return e.cfg.Decoders[instrument] != nil }

// HasEncoder reports whether seeds of the instrument can be uploaded.
func (e *Engine) HasEncoder(instrument string) bool { return e.cfg.Encoders[instrument] != nil }

// Request is one recommendation.
type Request struct {
	// SeedID names a stored loop of From; SeedAudio is an uploaded seed already windowed
	// (AudioOptions). Exactly one is set.
	SeedID    string
	SeedAudio []float32
	// SeedAudioID is the uploaded file's content id, when known: if that loop is stored,
	// its pack serves ExcludeSeedPack and it is left out of the results.
	SeedAudioID string
	// SeedOffset chooses the seed's window of a long loop, in seconds into it: a stored
	// seed's window that holds it (windows start HopSeconds apart), or for SeedAudio
	// where the caller cut it (recorded in the response). 0 is the first window.
	SeedOffset float64
	// SeedDuration is the uploaded file's length in seconds (0 when unknown): an
	// uploaded seed that is not stored gets its tempo from its audio and this length.
	SeedDuration float64
	From, To     string
	K            int
	Filter       Filter
	// MMRLambda in (0, 1] re-ranks for diversity (1 is pure relevance); 0 means off.
	MMRLambda float64
	// Rerank turns the second stage on or off; nil means the bundle's default.
	Rerank *bool
	// RerankN is how many of the cosine search's best the scorer rescores; 0 means the
	// bundle's default (DefaultRerankN when it names none).
	RerankN int
	// Hub turns the first stage's hubness correction on or off; nil means the bundle's
	// default.
	Hub *bool
}

// Seed describes the seed a response answers.
type Seed struct {
	ID     string  `json:"id,omitempty"`
	Stored bool    `json:"stored"`
	Pack   string  `json:"pack,omitempty"`
	BPM    float64 `json:"bpm,omitempty"`
	Key    string  `json:"key,omitempty"`
	// BPMSource and KeySource: where BPM and Key came from (vectordb.Source*): the
	// stored loop's own sources, or audio for an upload estimated from its audio.
	BPMSource string `json:"bpm_source,omitempty"`
	KeySource string `json:"key_source,omitempty"`
	// WindowOffset is where the seed's window starts, in seconds into the seed loop.
	WindowOffset float64 `json:"window_offset"`

	row vectordb.Row // a stored seed's row (its file feeds the reranker)
}

// Result is one ranked loop.
type Result struct {
	vectordb.Row
	Rank int `json:"rank"`
	// Score is what ranked the loop in its stage: the cosine for StageANN, the final pair
	// score (the scorer's logit, plus the bundle's ann_weight times the cosine) for
	// StageRerank.
	Score float32 `json:"score"`
	// AnnScore is the cosine similarity to the predicted latent, and AnnRank the loop's
	// place in the cosine search (the first stage).
	AnnScore float32 `json:"ann_score"`
	AnnRank  int     `json:"ann_rank"`
	// PairScore is the scorer's logit for the pair (higher fits better); nil when the
	// loop was not rescored.
	PairScore *float32 `json:"pair_score,omitempty"`
	// HubScore is the loop's hub score (the mean of its K highest cosines to the
	// library's mapped seeds) when the first stage was corrected: its first-stage score is
	// AnnScore minus Beta times it. Nil otherwise.
	HubScore *float32 `json:"hub_score,omitempty"`
	// Stage is StageANN or StageRerank: which stage put the loop where it is.
	Stage string `json:"stage"`
	// Note says why a loop among the best N has no pair score.
	Note string `json:"note,omitempty"`
	// WindowOffset is where, in seconds into the loop, the window that matched best
	// starts (0 for loops no longer than the model's window).
	WindowOffset float64 `json:"window_offset"`
}

// Response is a recommendation: the ranked loops and the mapped latent (the predicted
// target loop, which a decoder turns into the preview).
type Response struct {
	BundleID string
	Pair     Pair
	Seed     Seed
	Results  []Result
	Mapped   []float32
	// Applied is the tempo and key filter as resolved against the seed.
	Applied Applied
	// ExcludedUnknown counts what the tempo and key filters left out for want of the
	// field; nil when they left nothing out for that reason.
	ExcludedUnknown *ExcludedUnknown
	Rerank          RerankInfo
	// Hub says whether the first stage was hubness-corrected.
	Hub HubInfo
}

// Validate checks a request against the engine's models and the API's bounds.
func (e *Engine) Validate(r *Request) error {
	if r.From == "" {
		r.From = "drum"
	}
	if r.To == "" {
		r.To = "bass"
	}
	if err := checkRanking(&r.K, r.MMRLambda, r.Filter); err != nil {
		return err
	}
	if (r.SeedID == "") == (r.SeedAudio == nil) {
		return fmt.Errorf("%w: give exactly one seed: a stored loop's id or an uploaded file", ErrInvalid)
	}
	if math.IsNaN(r.SeedOffset) || math.IsInf(r.SeedOffset, 0) || r.SeedOffset < 0 {
		return fmt.Errorf("%w: seed_offset is %v: give the seconds into the seed loop where its window starts (0 or more)", ErrInvalid, r.SeedOffset)
	}
	if _, ok := e.cfg.Mappers[Pair{r.From, r.To}]; !ok {
		var have []string
		for _, p := range e.Pairs() {
			have = append(have, p.String())
		}
		return fmt.Errorf("%w: %s->%s; the bundle maps %s", ErrNoMapper, r.From, r.To, strings.Join(have, ", "))
	}
	if err := e.validateRerank(r); err != nil {
		return err
	}
	if r.Hub != nil && *r.Hub {
		if err := e.HubAvailable(r.From, r.To); err != nil {
			return err
		}
	}
	return e.checkSeedAudio(r.From, r.SeedAudio, ErrNoMapper)
}

// checkRanking checks what every ranked answer shares: k (0 takes DefaultK), the MMR
// lambda and the filter.
func checkRanking(k *int, mmrLambda float64, f Filter) error {
	if *k == 0 {
		*k = DefaultK
	}
	if *k < 1 || *k > MaxK {
		return fmt.Errorf("%w: k is %d: ask for 1 to %d loops", ErrInvalid, *k, MaxK)
	}
	if math.IsNaN(mmrLambda) || mmrLambda < 0 || mmrLambda > 1 {
		return fmt.Errorf("%w: mmr_lambda is %v: use a value in (0, 1] (1 = pure relevance), or leave it out", ErrInvalid, mmrLambda)
	}
	return f.Check()
}

// checkSeedAudio checks an uploaded seed (nil: none) against the instrument's encoder;
// noEncoder is the error a missing encoder wraps.
func (e *Engine) checkSeedAudio(instrument string, pcm []float32, noEncoder error) error {
	if pcm == nil {
		return nil
	}
	enc := e.cfg.Encoders[instrument]
	if enc == nil {
		return fmt.Errorf("%w: the bundle has no %s encoder, so an uploaded %s seed cannot be embedded: send a stored seed_id", noEncoder, instrument, instrument)
	}
	if len(pcm) != enc.InputSize() {
		return fmt.Errorf("%w: seed audio has %d samples, the %s encoder takes %d: window it with AudioOptions", ErrInvalid, len(pcm), instrument, enc.InputSize())
	}
	return nil
}

// Recommend runs the whole query: seed latent, mapper, search (and MMR).
func (e *Engine) Recommend(ctx context.Context, r Request) (*Response, error) {
	if err := e.Validate(&r); err != nil {
		return nil, err
	}
	z, seed, err := e.SeedLatent(ctx, r)
	if err != nil {
		return nil, err
	}
	mapped, err := e.MapSeed(ctx, r.From, r.To, z)
	if err != nil {
		return nil, err
	}
	seed, vf, applied, err := e.seedFilter(r, seed)
	if err != nil {
		return nil, err
	}
	resp := &Response{BundleID: e.cfg.BundleID, Pair: Pair{r.From, r.To}, Seed: seed, Mapped: mapped}
	on, n, reason := e.rerankPlan(r)
	if on {
		resp.Results, resp.Rerank, resp.Hub, err = e.searchReranked(ctx, r, seed, r.SeedAudio, mapped, vf, n)
	} else {
		resp.Rerank.Reason = reason
		resp.Results, resp.Hub, err = e.firstStage(ctx, Pair{r.From, r.To}, e.hubOn(r), mapped, r.K, vf, r.MMRLambda)
	}
	if err != nil {
		return nil, err
	}
	if resp.ExcludedUnknown, err = e.ExcludedUnknown(ctx, r.To, vf); err != nil {
		return nil, err
	}
	resp.Applied = applied
	return resp, nil
}

// seedFilter resolves a request's filter against its seed (an upload that is not stored
// gets the tempo and key its audio says first), and leaves out the seed itself and, when
// asked, the seed's pack.
func (e *Engine) seedFilter(r Request, seed Seed) (Seed, vectordb.Filter, Applied, error) {
	if !seed.Stored && r.SeedAudio != nil {
		seed = e.estimateSeed(seed, r)
	}
	vf, applied, err := r.Filter.Resolve(seed.BPM, seed.Key)
	if err != nil {
		return seed, vf, applied, err
	}
	if seed.ID != "" {
		vf.ExcludeIDs = []string{seed.ID}
	}
	if r.Filter.ExcludeSeedPack {
		if seed.Pack == "" {
			return seed, vf, applied, fmt.Errorf("%w: exclude_seed_pack needs a seed whose pack is known: this uploaded seed is not in the %s collection, so leave exclude_seed_pack out or list exclude_packs", ErrInvalid, r.From)
		}
		vf.ExcludePacks = append(vf.ExcludePacks, seed.Pack)
	}
	return seed, vf, applied, nil
}

// ExcludedUnknown counts the loops of the instrument's collection that f left out
// because their tempo or key is unknown (nil when it left none out for that reason),
// so an empty or short answer explains itself.
func (e *Engine) ExcludedUnknown(ctx context.Context, instrument string, f vectordb.Filter) (*ExcludedUnknown, error) {
	var out ExcludedUnknown
	coll := e.cfg.Collection(instrument)
	for _, field := range []string{"bpm", "key"} {
		g, ok := f.LeftOutUnknown(field)
		if !ok {
			continue
		}
		n, err := e.cfg.Store.CountMatching(ctx, coll, g)
		if err != nil {
			return nil, fmt.Errorf("count the %s loops of unknown %s: %w", instrument, field, e.storeErr(coll, err))
		}
		if field == "bpm" {
			out.BPM = &n
		} else {
			out.Key = &n
		}
	}
	if out.BPM == nil && out.Key == nil {
		return nil, nil
	}
	return &out, nil
}

// SeedLatent returns the seed's latent: the stored embedding of a seed id, or the
// encoder's output for uploaded audio.
func (e *Engine) SeedLatent(ctx context.Context, r Request) ([]float32, Seed, error) {
	coll := e.cfg.Collection(r.From)
	if r.SeedID != "" {
		if err := e.checkCollection(ctx, r.From); err != nil {
			return nil, Seed{}, err
		}
		row, err := e.getRow(ctx, coll, r.SeedID)
		if err != nil {
			return nil, Seed{}, err
		}
		if row == nil {
			return nil, Seed{}, fmt.Errorf("%w: no loop %q in the %s collection: list stored loops with GET /v1/collections or ingest it first", ErrSeedNotFound, r.SeedID, r.From)
		}
		if want := e.cfg.EncoderIDs[r.From]; !vectordb.SameEncoder(row.EncoderID, want) {
			return nil, Seed{}, fmt.Errorf("%w: loop %s was encoded by %q, the loaded %s encoder is %q: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, row.ID, row.EncoderID, r.From, want)
		}
		z := row.Embedding
		row.Embedding = nil
		seed := Seed{ID: row.ID, Stored: true, Pack: row.Pack, BPM: row.BPM, Key: row.Key, BPMSource: row.BPMSource, KeySource: row.KeySource, row: *row}
		if r.SeedOffset > 0 {
			wz, off, err := e.seedWindow(ctx, r.From, row, r.SeedOffset)
			if err != nil {
				return nil, Seed{}, err
			}
			if wz != nil { // a later window than the first
				z, seed.WindowOffset = wz, off
			}
		}
		return z, seed, nil
	}
	enc := e.cfg.Encoders[r.From]
	if enc == nil {
		return nil, Seed{}, fmt.Errorf("%w: no %s encoder for an uploaded seed", ErrNoMapper, r.From)
	}
	t0 := time.Now()
	z, err := enc.Run(ctx, r.SeedAudio)
	if err != nil {
		return nil, Seed{}, fmt.Errorf("encode the uploaded %s seed: %w", r.From, err)
	}
	e.observeInference("encoder", r.From, time.Since(t0))
	seed, err := e.uploadSeed(ctx, r)
	if err != nil {
		return nil, Seed{}, err
	}
	return z, seed, nil
}

// uploadSeed describes an uploaded seed. The same file may already be stored: its pack
// then serves exclude_seed_pack. A missing collection just means it is not stored.
func (e *Engine) uploadSeed(ctx context.Context, r Request) (Seed, error) {
	seed := Seed{ID: r.SeedAudioID, WindowOffset: r.SeedOffset}
	if r.SeedAudioID == "" {
		return seed, nil
	}
	row, err := e.getRow(ctx, e.cfg.Collection(r.From), r.SeedAudioID)
	if err != nil && !errors.Is(err, ErrNotIngested) {
		return Seed{}, err
	}
	if row != nil {
		seed = Seed{ID: row.ID, Stored: true, Pack: row.Pack, BPM: row.BPM, Key: row.Key, BPMSource: row.BPMSource, KeySource: row.KeySource, WindowOffset: r.SeedOffset}
	}
	return seed, nil
}

func (e *Engine) getRow(ctx context.Context, coll, id string) (*vectordb.Row, error) {
	rows, err := e.cfg.Store.Get(ctx, coll, []string{id})
	if err != nil {
		return nil, e.storeErr(coll, err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0], nil
}

// MapSeed runs the from->to mapper on one latent.
func (e *Engine) MapSeed(ctx context.Context, from, to string, z []float32) ([]float32, error) {
	m := e.cfg.Mappers[Pair{from, to}]
	if m == nil {
		return nil, fmt.Errorf("%w: %s->%s", ErrNoMapper, from, to)
	}
	if len(z) != m.InputSize() {
		return nil, fmt.Errorf("%w: the seed latent has %d values, the %s->%s mapper takes %d: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, len(z), from, to, m.InputSize())
	}
	t0 := time.Now()
	out, err := m.Run(ctx, z)
	if err != nil {
		return nil, fmt.Errorf("map %s->%s: %w", from, to, err)
	}
	e.observeInference("mapper", from+"->"+to, time.Since(t0))
	return out, nil
}

func (e *Engine) aggregate() Aggregate {
	if e.cfg.Aggregate == "" {
		return DefaultAggregate
	}
	return e.cfg.Aggregate
}

// SearchMapped ranks the to collection against a mapped latent: k loops best first;
// with mmrLambda in (0, 1) a diversity re-rank over up to 4k candidates.
func (e *Engine) SearchMapped(ctx context.Context, to string, mapped []float32, k int, f vectordb.Filter, mmrLambda float64) ([]Result, error) {
	res, _, err := e.firstStage(ctx, Pair{To: to}, false, mapped, k, f, mmrLambda)
	return res, err
}

// firstStage ranks by the first stage alone (hubness-corrected with hub, p.From's mapped
// seeds making the hub scores), then MMR when mmrLambda is in (0, 1).
func (e *Engine) firstStage(ctx context.Context, p Pair, hub bool, mapped []float32, k int, f vectordb.Filter, mmrLambda float64) ([]Result, HubInfo, error) {
	fetch := k
	if mmrLambda > 0 && mmrLambda < 1 {
		fetch = min(max(4*k, k), e.cfg.MaxCandidates, vectordb.MaxK)
	}
	hits, offs, info, notes, err := e.search(ctx, p, hub, mapped, fetch, f)
	if err != nil {
		return nil, info, err
	}
	res, err := e.rankANN(ctx, e.cfg.Collection(p.To), hits, offs, k, mmrLambda)
	notes.apply(res)
	return res, info, err
}

// search is the first stage: the fetch best rows of the to collection by cosine,
// refusing rows of another encoder. With hub, at least the hub depth's best are fetched
// and every fetched row is hubness-corrected (p.From's mapped seeds): info says so, and
// notes keep each row's cosine facts.
func (e *Engine) search(ctx context.Context, p Pair, hub bool, mapped []float32, fetch int, f vectordb.Filter) ([]vectordb.Hit, windowOffsets, HubInfo, hubNotes, error) {
	if !hub {
		hits, offs, err := e.searchCosine(ctx, p.To, mapped, fetch, f)
		return hits, offs, HubInfo{}, nil, err
	}
	hits, offs, err := e.searchCosine(ctx, p.To, mapped, min(max(fetch, e.hubDepth()), vectordb.MaxK), f)
	if err != nil {
		return nil, nil, HubInfo{}, nil, err
	}
	info, notes, err := e.correctHubs(ctx, p, hits)
	return hits, offs, info, notes, err
}

// searchCosine is the first stage by cosine alone.
func (e *Engine) searchCosine(ctx context.Context, to string, mapped []float32, fetch int, f vectordb.Filter) ([]vectordb.Hit, windowOffsets, error) {
	if err := e.checkCollection(ctx, to); err != nil {
		return nil, nil, err
	}
	found, err := e.SearchLoops(ctx, to, [][]float32{mapped}, fetch, f, e.aggregate())
	if err != nil {
		return nil, nil, err
	}
	lh := found[0]
	hits := make([]vectordb.Hit, len(lh))
	offs := make(windowOffsets, len(lh))
	for i, h := range lh {
		hits[i] = h.Hit
		offs[h.ID] = h.WindowOffset
	}
	return hits, offs, nil
}

// windowOffsets are the matched windows' offsets of a search's loops, by id.
type windowOffsets map[string]float64

// apply sets each result's WindowOffset.
func (o windowOffsets) apply(rs []Result) {
	for i := range rs {
		rs[i].WindowOffset = o[rs[i].ID]
	}
}

// rankANN makes the first stage's results: the hits in cosine order, or MMR's picks
// from them when mmrLambda is in (0, 1).
func (e *Engine) rankANN(ctx context.Context, coll string, hits []vectordb.Hit, offs windowOffsets, k int, mmrLambda float64) ([]Result, error) {
	annRank := make(map[string]int, len(hits))
	for i, h := range hits {
		annRank[h.ID] = i + 1
	}
	if mmrLambda > 0 && mmrLambda < 1 && len(hits) > k {
		var err error
		if hits, err = e.mmr(ctx, coll, hits, k, mmrLambda); err != nil {
			return nil, err
		}
	}
	if len(hits) > k {
		hits = hits[:k]
	}
	out := make([]Result, len(hits))
	for i, h := range hits {
		h.Embedding = nil
		out[i] = Result{Row: h.Row, Rank: i + 1, Score: h.Score, AnnScore: h.Score, AnnRank: annRank[h.ID], Stage: StageANN,
			WindowOffset: offs[h.ID]}
	}
	return out, nil
}

// mmr re-ranks candidates by maximal marginal relevance: each pick maximises
// lambda*sim(query, c) - (1-lambda)*max sim(c, picked). The query similarity is the
// search score; candidate similarities come from their stored embeddings.
func (e *Engine) mmr(ctx context.Context, coll string, hits []vectordb.Hit, k int, lambda float64) ([]vectordb.Hit, error) {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	rows, err := e.cfg.Store.Get(ctx, coll, ids)
	if err != nil {
		return nil, e.storeErr(coll, err)
	}
	vecs := make(map[string][]float32, len(rows))
	for _, r := range rows {
		vecs[r.ID] = vectordb.Normalize(r.Embedding)
	}
	// A candidate deleted between search and get keeps its place by relevance only.
	return MMR(hits, func(i int) []float32 { return vecs[hits[i].ID] }, k, lambda), nil
}

// MMR picks k of the hits (best first by Score) by maximal marginal relevance; vec(i)
// is hit i's unit vector, or nil when unknown (then it counts as dissimilar to all).
// Ties go to the earlier hit, so the order is deterministic.
func MMR(hits []vectordb.Hit, vec func(int) []float32, k int, lambda float64) []vectordb.Hit {
	if k > len(hits) {
		k = len(hits)
	}
	picked := make([]vectordb.Hit, 0, k)
	pickedVecs := make([][]float32, 0, k)
	used := make([]bool, len(hits))
	// maxSim[i] is hit i's highest similarity to anything picked so far.
	maxSim := make([]float64, len(hits))
	for len(picked) < k {
		best, bestScore := -1, math.Inf(-1)
		for i, h := range hits {
			if used[i] {
				continue
			}
			s := lambda*float64(h.Score) - (1-lambda)*maxSim[i]
			if len(picked) == 0 {
				s = float64(h.Score)
			}
			if s > bestScore {
				best, bestScore = i, s
			}
		}
		used[best] = true
		picked = append(picked, hits[best])
		bv := vec(best)
		pickedVecs = append(pickedVecs, bv)
		for i := range hits {
			if used[i] || bv == nil {
				continue
			}
			v := vec(i)
			if v == nil {
				continue
			}
			if s := dot(v, bv); len(picked) == 1 || s > maxSim[i] {
				maxSim[i] = s
			}
		}
	}
	return picked
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// Decode turns a latent of the instrument into audio at the bundle's rate.
func (e *Engine) Decode(ctx context.Context, instrument string, z []float32) ([]float32, int, error) {
	d := e.cfg.Decoders[instrument]
	if d == nil {
		return nil, 0, fmt.Errorf("%w: the bundle %s has no %s decoder (role \"decoder\"), so the predicted loop cannot be played; the ranked loops are unaffected", ErrNoDecoder, e.cfg.BundleID, instrument)
	}
	t0 := time.Now()
	pcm, err := d.Run(ctx, z)
	if err != nil {
		return nil, 0, fmt.Errorf("decode the predicted %s loop: %w", instrument, err)
	}
	e.observeInference("decoder", instrument, time.Since(t0))
	return pcm, e.cfg.SampleRate, nil
}

// checkCollection refuses an instrument's collection that is missing or holds another
// encoder's embeddings. Verdicts are cached for CollectionCheckEvery.
func (e *Engine) checkCollection(ctx context.Context, instrument string) error {
	coll := e.cfg.Collection(instrument)
	e.mu.Lock()
	c, ok := e.checked[coll]
	e.mu.Unlock()
	if ok && time.Since(c.at) < e.cfg.CollectionCheckEvery {
		return c.err
	}
	cs, err := e.cfg.Store.Collections(ctx)
	if err != nil {
		return e.storeErr(coll, err)
	}
	verdict := fmt.Errorf("%w: collection %s does not exist: ingest a library first (loopmatch ingest PATH)", ErrNotIngested, coll)
	for _, x := range cs {
		if x.Name != coll {
			continue
		}
		verdict = nil
		want, ok := e.cfg.EncoderIDs[instrument]
		switch {
		case !ok:
			verdict = fmt.Errorf("%w: collection %s holds embeddings of %q, and the bundle %s has no %s encoder to check them against: serve with --bundle of a bundle that has one", ErrEncoderMismatch, coll, x.EncoderID, e.cfg.BundleID, instrument)
		case !vectordb.SameEncoder(x.EncoderID, want):
			verdict = fmt.Errorf("%w: collection %s was encoded by %q, the loaded bundle's %s encoder is %q: %s", ErrEncoderMismatch, coll, x.EncoderID, instrument, want, vectordb.ReencodeHint(e.cfg.Library))
		}
	}
	e.mu.Lock()
	e.checked[coll] = collectionCheck{at: time.Now(), err: verdict}
	e.mu.Unlock()
	return verdict
}

// Forget drops cached collection verdicts (after an ingest created or changed one).
func (e *Engine) Forget() {
	e.mu.Lock()
	clear(e.checked)
	e.mu.Unlock()
}

func (e *Engine) storeErr(coll string, err error) error {
	switch {
	case errors.Is(err, vectordb.ErrNoCollection):
		e.Forget()
		return fmt.Errorf("%w: collection %s: ingest a library first (%w)", ErrNotIngested, coll, err)
	case errors.Is(err, vectordb.ErrEncoderMismatch), errors.Is(err, vectordb.ErrDimensionMismatch):
		return fmt.Errorf("%w: collection %s: %w", ErrEncoderMismatch, coll, err)
	}
	return fmt.Errorf("collection %s: %w", coll, err)
}

func (e *Engine) observeInference(role, inst string, d time.Duration) {
	if e.cfg.Observer != nil {
		e.cfg.Observer.ObserveInference(role, inst, d)
	}
}

func (e *Engine) observeSearch(coll string, d time.Duration) {
	if e.cfg.Observer != nil {
		e.cfg.Observer.ObserveSearch(coll, d)
	}
}
