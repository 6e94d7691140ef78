package ingest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// classify runs the bundle's instrument classifier on every decoded window, in batches:
// a loop whose name and manifest say nothing takes the classifier's instrument (or is
// reported with the reason it was not stored); a named loop keeps its name's instrument
// (names win) and the report counts it when the audio says otherwise. Without a
// classifier the jobs pass through untouched.
func classify(ctx context.Context, cfg Config, rep *Report, in <-chan *job, out chan<- *job) {
	if cfg.Classifier == nil {
		for j := range in { // one-shots too: their kind was told at decode
			out <- j
		}
		return
	}
	var pending []*job
	run := func() {
		if len(pending) == 0 {
			return
		}
		b := pending
		pending = nil
		flat := make([]float32, 0, len(b)*len(b[0].wins[0]))
		for _, j := range b {
			flat = append(flat, j.wins[0]...) // the first window: what the classifier was trained on
		}
		labels, err := cfg.Classifier.Classify(context.WithoutCancel(ctx), flat)
		if err != nil {
			for _, j := range b {
				if j.meta.Instrument == "" {
					rep.fail(j.path, failWith(CodeClassifyFailed, fmt.Errorf("instrument from the audio: %w", err)))
				} else {
					out <- j // named: the classifier only checks names, so the loop is still stored
				}
			}
			return
		}
		for i, j := range b {
			if j.meta.Instrument != "" {
				rep.checked(j.path, j.meta.Instrument, labels[i])
				out <- j
				continue
			}
			if reason := audioInstrument(cfg, labels[i]); reason != nil {
				rep.skip(j.path, reason)
				continue
			}
			j.meta.Instrument, j.meta.InstrumentSource = labels[i].Class, vectordb.SourceAudio
			j.fromAudio = labels[i]
			rep.classified(labels[i].Class)
			out <- j
		}
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case j, ok := <-in:
			if !ok {
				run()
				return
			}
			if j.oneShot || j.fill != nil || (cfg.SkipNamedCheck && j.meta.Instrument != "") { // a stored loop that lacks embedder rows was placed when stored
				out <- j
				continue
			}
			if len(j.wins) == 0 || len(j.wins[0]) != cfg.Classifier.Graph.InputSize() {
				rep.fail(j.path, failWith(CodeClassifyFailed, fmt.Errorf("windows of %d samples, the classifier takes %d", len(slices.Concat(j.wins...))/max(1, len(j.wins)), cfg.Classifier.Graph.InputSize())))
				continue
			}
			pending = append(pending, j)
			if len(pending) >= cfg.BatchSize {
				run()
			}
		case <-tick.C:
			run() // a partial batch waits at most one tick
		}
	}
}

// audioInstrument says why a loop of unknown instrument is not stored under the
// classifier's label, or nil when it is.
func audioInstrument(cfg Config, l onnx.Label) *skipReason {
	const fix = "name its folder or file (drums, bass), list it in a --manifest, or force --instrument"
	switch {
	case !l.Sure:
		return &skipReason{CodeUncertainInstrument, fmt.Sprintf("instrument unknown: the name does not say, and the audio is not clear enough (classifier: %s at %.2f, below %.2f): %s",
			l.Class, l.Confidence, cfg.Classifier.MinConfidence, fix)}
	case l.Class == OtherInstrument:
		return &skipReason{CodeOtherInstrument, fmt.Sprintf("sounds like neither drums nor bass (classifier: %s at %.2f), and the bundle encodes only %s: if it is a drum or bass loop, %s",
			l.Class, l.Confidence, encoderList(cfg), fix)}
	}
	if _, ok := cfg.Encoders[l.Class]; !ok {
		return &skipReason{CodeNoEncoder, fmt.Sprintf("sounds like %s (classifier, %.2f), and the bundle has no %s encoder", l.Class, l.Confidence, l.Class)}
	}
	return nil
}

// OtherInstrument is the classifier's class for loops that are neither of the
// instruments it knows (chords, pads, leads, vocals, effects).
const OtherInstrument = "other"
