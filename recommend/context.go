package recommend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
)

// Bounds of a context.
const (
	MaxContextLoops = 5
	MaxContextGain  = 4.0
)

// ErrNoContextModel: the bundle has no model for the asked context target (no
// SampleMatch encoders for one-shots, no encoder and mapper into the instrument).
var ErrNoContextModel = errors.New("the bundle has no model for this context target")

// Loudness the corpus's loops were rendered at (train/loopmatch_train/render.py:
// TARGET_RMS_DB, PEAK): a context heard through a loop encoder is brought to it first.
const (
	corpusRMSdB = -18.0
	corpusPeak  = 0.97
)

// ContextLoop is one loop of a context: a stored loop (ID and the Instrument whose
// collection holds it) or an uploaded one (Audio: the whole loop, mono at the bundle's
// rate, as audio.LoadLoopBytes decodes it; Name for messages), at a Gain in 0..4.
type ContextLoop struct {
	ID, Instrument string
	Audio          []float32
	Name           string
	Gain           float64
}

// ContextTarget is what a context query ranks: one-shots of a Kind (Collection
// loopid.OneShots), or loops of an Instrument.
type ContextTarget struct {
	Collection string `json:"collection,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Instrument string `json:"instrument,omitempty"`
}

// OneShots reports whether the target is the one-shot collection.
func (t ContextTarget) OneShots() bool { return t.Collection == loopid.OneShots }

// ContextRequest ranks a target against a mix of 1..MaxContextLoops loops.
type ContextRequest struct {
	Loops     []ContextLoop
	Target    ContextTarget
	K         int
	Filter    Filter
	MMRLambda float64
}

// ContextSource describes one loop of the context in a response.
type ContextSource struct {
	ID         string  `json:"id,omitempty"`
	Instrument string  `json:"instrument,omitempty"`
	Name       string  `json:"name,omitempty"`
	Stored     bool    `json:"stored"`
	Gain       float64 `json:"gain"`
	BPM        float64 `json:"bpm,omitempty"`
	Duration   float64 `json:"duration"`
}

// ContextResponse is a context query's ranking.
type ContextResponse struct {
	BundleID string
	Target   ContextTarget
	Context  []ContextSource
	// BPM is the context's tempo: the first stored loop's that has one (0: unknown).
	BPM float64
	// Heard says how the mix was embedded: "context_encoder" (one-shots), or
	// "<instrument>_encoder + <instrument>2<target> mapper" (loops: the context heard as
	// a loop of that instrument).
	Heard   string
	Results []Result
}

// ValidateContext checks a context request against the API's bounds and the bundle.
func (e *Engine) ValidateContext(r *ContextRequest) error {
	switch n := len(r.Loops); {
	case n == 0:
		return fmt.Errorf("%w: the context is empty: give 1 to %d loops (stored ids or uploads)", ErrInvalid, MaxContextLoops)
	case n > MaxContextLoops:
		return fmt.Errorf("%w: the context has %d loops, at most %d: leave some out", ErrInvalid, n, MaxContextLoops)
	}
	loud := false
	for i, l := range r.Loops {
		if !(l.Gain >= 0 && l.Gain <= MaxContextGain) {
			return fmt.Errorf("%w: context loop %d has gain %v: give 0 to %v (1 plays it as it is)", ErrInvalid, i+1, l.Gain, MaxContextGain)
		}
		if (l.ID == "") == (l.Audio == nil) {
			return fmt.Errorf("%w: context loop %d needs a stored id or uploaded audio, not both or neither", ErrInvalid, i+1)
		}
		if l.ID != "" && !slices.Contains(e.Instruments(), l.Instrument) {
			return fmt.Errorf("%w: context loop %d: instrument %q: use one of %s", ErrUnknownInstrument, i+1, l.Instrument, strings.Join(e.Instruments(), ", "))
		}
		loud = loud || l.Gain > 0
	}
	if !loud {
		return fmt.Errorf("%w: every context loop has gain 0, so the mix is silent: give one a gain above 0", ErrInvalid)
	}
	if err := checkRanking(&r.K, r.MMRLambda, r.Filter); err != nil {
		return err
	}
	t := r.Target
	switch {
	case t.OneShots():
		if t.Instrument != "" {
			return fmt.Errorf("%w: target names the one-shot collection and instrument %q: give one of them", ErrInvalid, t.Instrument)
		}
		if !loopid.ValidKind(t.Kind) {
			return fmt.Errorf("%w: target kind %q: give one of %s", ErrInvalid, t.Kind, strings.Join(loopid.Kinds, ", "))
		}
		if e.cfg.SampleMatch == nil {
			return fmt.Errorf("%w: one-shots need the bundle's context and one-shot encoders (roles %s, %s), and %s has none: serve models/loopmatch-v2 (make models)", ErrNoContextModel, onnx.RoleContextEncoder, onnx.RoleOneShotEncoder, e.cfg.BundleID)
		}
	case t.Collection != "":
		return fmt.Errorf("%w: target collection %q: the collection a context ranks is %q (one-shots, with a kind); for loops give target.instrument", ErrInvalid, t.Collection, loopid.OneShots)
	case t.Instrument == "":
		return fmt.Errorf("%w: give a target: {\"collection\": %q, \"kind\": \"snare\"} or {\"instrument\": \"bass\"}", ErrInvalid, loopid.OneShots)
	case t.Kind != "":
		return fmt.Errorf("%w: target kind %q belongs to one-shots: add \"collection\": %q", ErrInvalid, t.Kind, loopid.OneShots)
	default:
		if _, err := e.contextSource(t.Instrument); err != nil {
			return err
		}
	}
	return nil
}

// contextSource is the instrument a context is heard as when it ranks loops of target:
// the other side of a mapper into target with an encoder (the drum encoder and drum2bass
// mapper for bass).
func (e *Engine) contextSource(target string) (string, error) {
	var from []string
	for p := range e.cfg.Mappers {
		if p.To == target && p.From != target && e.cfg.Encoders[p.From] != nil {
			from = append(from, p.From)
		}
	}
	if len(from) == 0 {
		return "", fmt.Errorf("%w: the bundle %s has no encoder and mapper into %q to hear a context with (instruments: %s)", ErrNoContextModel, e.cfg.BundleID, target, strings.Join(e.Instruments(), ", "))
	}
	slices.Sort(from)
	return from[0], nil
}

// RecommendContext mixes the context's loops (each tiled from its start over the
// bundle's window, as an encoder window is, times its gain, summed) and ranks the target
// against the mix: one-shots of a kind by SampleMatch's context encoder, or loops of an
// instrument by hearing the mix as a loop of the mapper's source instrument (its encoder,
// the mix at the corpus loudness, then the mapper), searched as a seed's mapped latent is.
func (e *Engine) RecommendContext(ctx context.Context, r ContextRequest) (*ContextResponse, error) {
	if err := e.ValidateContext(&r); err != nil {
		return nil, err
	}
	resp := &ContextResponse{BundleID: e.cfg.BundleID, Target: r.Target}
	n := audio.WindowSamples(e.cfg.SampleRate, e.cfg.WindowSeconds)
	mix := make([]float32, n)
	var exclude []string
	for i, l := range r.Loops {
		src := ContextSource{ID: l.ID, Instrument: l.Instrument, Name: l.Name, Gain: l.Gain}
		mono := l.Audio
		if l.ID != "" {
			row, err := e.getRow(ctx, e.cfg.Collection(l.Instrument), l.ID)
			if row == nil && (err == nil || errors.Is(err, ErrNotIngested)) {
				return nil, fmt.Errorf("%w: context loop %d: no %s loop %s is stored: list the library (GET /v1/loops/%s) for ids, or upload the file", ErrSeedNotFound, i+1, l.Instrument, l.ID, l.Instrument)
			}
			if err != nil {
				return nil, err
			}
			lp, err := audio.LoadLoop(ctx, row.Path, e.AudioOptions(audio.DefaultLimits()))
			if err != nil {
				return nil, fmt.Errorf("context loop %d (%s): read its stored file: %w", i+1, l.ID, err)
			}
			mono, src.Stored, src.Name, src.BPM = lp.Mono, true, loopNameOf(row.Path), row.BPM
			exclude = append(exclude, row.ID)
			if resp.BPM == 0 && row.BPM > 0 {
				resp.BPM = row.BPM
			}
		}
		if err := audio.CheckSignal(mono, e.cfg.SampleRate); err != nil {
			return nil, fmt.Errorf("%w: context loop %d: %w", ErrInvalid, i+1, err)
		}
		src.Duration = float64(len(mono)) / float64(e.cfg.SampleRate)
		addTiled(mix, mono, float32(l.Gain))
		resp.Context = append(resp.Context, src)
	}
	vf, _, err := r.Filter.Resolve(0, "")
	if err != nil {
		return nil, err
	}
	vf.ExcludeIDs = exclude
	var q []float32
	to := r.Target.Instrument
	if r.Target.OneShots() {
		to, vf.Kinds, resp.Heard = loopid.OneShots, []string{r.Target.Kind}, onnx.RoleContextEncoder
		t0 := time.Now()
		if q, err = e.cfg.SampleMatch.EmbedContexts(ctx, mix); err != nil {
			return nil, err
		}
		e.observeInference(onnx.RoleContextEncoder, "", time.Since(t0))
	} else {
		from, err := e.contextSource(to)
		if err != nil {
			return nil, err
		}
		resp.Heard = fmt.Sprintf("%s_encoder + %s2%s mapper", from, from, to)
		normaliseLoudness(mix)
		t0 := time.Now()
		z, err := e.cfg.Encoders[from].Run(ctx, mix)
		if err != nil {
			return nil, fmt.Errorf("encode the context as a %s loop: %w", from, err)
		}
		e.observeInference("encoder", from, time.Since(t0))
		if q, err = e.MapSeed(ctx, from, to, z); err != nil {
			return nil, err
		}
	}
	if resp.Results, err = e.SearchMapped(ctx, to, q, r.K, vf, r.MMRLambda); err != nil {
		return nil, err
	}
	return resp, nil
}

// addTiled adds gain times the loop, repeated from its start, over dst.
func addTiled(dst, loop []float32, gain float32) {
	for off := 0; off < len(dst); off += len(loop) {
		for i, v := range loop[:min(len(loop), len(dst)-off)] {
			dst[off+i] += gain * v
		}
	}
}

// normaliseLoudness brings a mix to the corpus's RMS, its peak at most corpusPeak
// (render.normalise), in place; silence stays silent.
func normaliseLoudness(x []float32) {
	var ss, peak float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	rms := math.Sqrt(ss/float64(len(x))) + 1e-12
	g := math.Pow(10, corpusRMSdB/20) / rms
	for _, v := range x {
		peak = max(peak, math.Abs(float64(v)*g))
	}
	if peak > corpusPeak {
		g *= corpusPeak / peak
	}
	for i, v := range x {
		x[i] = float32(float64(v) * g)
	}
}

// loopNameOf is a stored loop's file name.
func loopNameOf(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}

// HasOneShots reports whether the engine ranks one-shots (the bundle has SampleMatch's
// encoders), so the one-shot collection is served beside the instruments'.
func (e *Engine) HasOneShots() bool { return e.cfg.SampleMatch != nil }

// OneShotSamples is the one-shot window (0 without SampleMatch).
func (e *Engine) OneShotSamples() int {
	if e.cfg.SampleMatch == nil {
		return 0
	}
	return e.cfg.SampleMatch.OneShotSamples
}
