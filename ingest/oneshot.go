package ingest

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loopmatch/loopmatch/analysis"
	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// DefaultOneShotMaxSeconds is the longest a file may be to be stored as a one-shot.
const DefaultOneShotMaxSeconds = 2.0

// OneShots turns on one-shot ingest: files whose folders say they hold one-shots
// ("one-shots", "oneshots", "hits") or whose names say a drum hit's kind ("kick", "bd",
// "snare", "hh", ...; not a loop: no "loop" word and no tempo in the name), and files
// whose names say nothing whose audio is a single hit (hearOneShot), at most
// MaxSeconds long, go to the one-shot collection (loopid.Collection(loopid.OneShots)) with
// their kind, embedded from their first Encoder.InputSize() samples, zero padded, never
// tiled. A file that its folder or name marks as a one-shot but that is longer is
// reported (CodeOneShotTooLong) and not stored; one that only names a kind and is longer
// is a loop and goes the loops' way.
type OneShots struct {
	// Encoder is the bundle's one-shot encoder (onnx.SampleMatch.OneShot); EncoderID its
	// identity (onnx.Bundle.OneShotEncoderID), which the collection records.
	Encoder   onnx.Graph
	EncoderID string
	// MaxSeconds is the cap (0: DefaultOneShotMaxSeconds).
	MaxSeconds float64
	// Kind, when set, tells the kind of one-shots whose names do not say it (below its
	// MinConfidence, or without it, they are stored as loopid.UnknownKind and counted).
	Kind *onnx.Classifier
}

// Codes of one-shots left out.
const (
	// CodeOneShotTooLong: the folder or name marks a one-shot, the audio is longer than the cap.
	CodeOneShotTooLong Code = "oneshot-too-long"
)

// oneShotMarkers are folder or file name words that say "one-shots here".
var oneShotMarkers = map[string]bool{"oneshot": true, "oneshots": true, "hits": true, "hit": true, "oneshotz": true}

// oneShotName reads a path (relative to its walked root) as a one-shot: candidate when a
// folder or the name marks one-shots or the name says a kind and not a loop; marked when
// the marking is explicit; kind from the name, else the nearest folder naming one.
func oneShotName(root, path string) (kind string, candidate, marked bool) {
	rel, err := filepath.Rel(root, path)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = filepath.Base(path)
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	stem := strings.TrimSuffix(parts[len(parts)-1], filepath.Ext(parts[len(parts)-1]))
	names := append([]string{stem}, reversed(parts[:len(parts)-1])...)
	for i, n := range names {
		toks := tokens(n)
		for j, t := range toks {
			if oneShotMarkers[t] || (t == "one" && j+1 < len(toks) && (toks[j+1] == "shot" || toks[j+1] == "shots")) {
				marked = true
			}
		}
		if kind == "" {
			kind = loopid.KindOfWords(toks)
		}
		if i == 0 && kind != "" && !slices.Contains(toks, "loop") && !slices.Contains(toks, "loops") && ParseBPM(stem) == 0 {
			candidate = true
		}
	}
	return kind, candidate || marked, marked
}

// withOneShots adds the one-shot encoder to the configuration as the instrument
// loopid.OneShots, so dedupe, encode and upsert treat its collection as any other.
func withOneShots(cfg Config) (Config, error) {
	o := cfg.OneShots
	if o == nil {
		return cfg, nil
	}
	if o.Encoder == nil || o.EncoderID == "" {
		return cfg, fmt.Errorf("ingest: one-shots need the bundle's one-shot encoder and its id (onnx.Bundle.OneShotEncoderID)")
	}
	if o.Kind != nil && o.Kind.Graph.InputSize() != o.Encoder.InputSize() {
		return cfg, fmt.Errorf("ingest: the kind classifier reads %d samples, the one-shot encoder %d: rebuild the bundle with make models", o.Kind.Graph.InputSize(), o.Encoder.InputSize())
	}
	if o.Kind != nil {
		for _, c := range o.Kind.Classes {
			if !loopid.ValidKind(c) {
				return cfg, fmt.Errorf("ingest: the kind classifier's class %q is not a one-shot kind (%s): rebuild the bundle with make models", c, strings.Join(loopid.Kinds, ", "))
			}
		}
	}
	enc, ids := map[string]onnx.Graph{}, map[string]string{}
	for k, v := range cfg.Encoders {
		enc[k] = v
	}
	for k, v := range cfg.EncoderIDs {
		ids[k] = v
	}
	enc[loopid.OneShots], ids[loopid.OneShots] = o.Encoder, o.EncoderID
	cfg.Encoders, cfg.EncoderIDs = enc, ids
	return cfg, nil
}

// hearOneShot turns a job whose names, folders and manifest say nothing of its
// instrument into a one-shot when its audio is no longer than the cap and
// is a single hit (analysis.Hit: one onset at its start, then it dies away), so a flat
// folder of unnamed hits is not stored as loops. Its kind then comes from the audio too.
func hearOneShot(cfg Config, j *job, l *audio.Loop) {
	o := cfg.OneShots
	if o == nil || j.oneShot || j.meta.Instrument != "" || l.Info.Duration.Seconds() > cmp.Or(o.MaxSeconds, DefaultOneShotMaxSeconds) {
		return
	}
	if hit, err := analysis.Hit(l.Mono, l.Rate); err != nil || !hit {
		return
	}
	j.oneShot, j.loopMeta = true, j.meta
	j.meta = Meta{Instrument: loopid.OneShots, InstrumentSource: vectordb.SourceAudio, Pack: j.loopMeta.Pack}
}

// oneShotWindow checks a decoded one-shot's length against the cap, cuts its window and
// tells its kind; a reason when it is not stored as a one-shot, loop true when it is a
// loop after all (named for a kind only, and too long).
func oneShotWindow(ctx context.Context, cfg Config, j *job, l *audio.Loop) (reason *skipReason, loop bool, err error) {
	o := cfg.OneShots
	capS := cmp.Or(o.MaxSeconds, DefaultOneShotMaxSeconds)
	if d := l.Info.Duration.Seconds(); d > capS {
		if !j.oneShotMarked {
			return nil, true, nil
		}
		return &skipReason{CodeOneShotTooLong, fmt.Sprintf("its folder or name marks a one-shot, but it is %.2f s long, over the %.2g s cap: a one-shot is a single hit; trim it, or move loops out of one-shot folders", d, capS)}, false, nil
	}
	w, err := audio.OneShot(l.Mono, l.Rate, o.Encoder.InputSize())
	if err != nil {
		return nil, false, err
	}
	j.wins = [][]float32{w}
	if j.meta.Kind != "" {
		return nil, false, nil
	}
	j.meta.Kind = loopid.UnknownKind
	if o.Kind == nil {
		return nil, false, nil
	}
	labels, err := o.Kind.Classify(context.WithoutCancel(ctx), w)
	if err != nil {
		return nil, false, failWith(CodeClassifyFailed, fmt.Errorf("one-shot kind from the audio: %w", err))
	}
	if labels[0].Sure {
		j.meta.Kind, j.meta.KindSource, j.meta.KindConfidence = labels[0].Class, vectordb.SourceAudio, labels[0].Confidence
	}
	return nil, false, nil
}
