package main

import (
	"errors"
	"io"
	"log/slog"
	"sync"

	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/onnx"
)

// ingestModels are the graphs one ingest run uses. Opening a graph is most of an ingest's
// fixed cost (ONNX Runtime builds each session on one thread: the anomaly graphs alone take
// about a second and a half each), so openIngestModels opens them side by side.
type ingestModels struct {
	encoders  map[string]onnx.Graph       // by instrument; not opened for --rescore
	cls       *onnx.Classifier            // nil: none wanted, or the bundle has none
	embedders map[string][]*onnx.Embedder // by instrument
	oneShots  *ingest.OneShots            // nil: none wanted, or the bundle has no one-shot encoder
	anomaly   map[string]*onnx.Anomaly    // by instrument; not opened for --reencode
	closers   []io.Closer                 // what close closes, in the order opened
	mu        sync.Mutex                  // guards closers while the openers run
}

// ingestModelsWanted says which graphs a run needs.
type ingestModelsWanted struct {
	encoders, classifier, oneShots, anomaly bool
	embedders                               []string
}

func (m *ingestModels) keep(c io.Closer) {
	m.mu.Lock()
	m.closers = append(m.closers, c)
	m.mu.Unlock()
}

// close closes every graph opened, last opened first.
func (m *ingestModels) close() {
	for i := len(m.closers) - 1; i >= 0; i-- {
		m.closers[i].Close()
	}
}

// openIngestModels opens the graphs want names, side by side (onnx.Concurrently),
// and logs what the bundle lacks (a missing classifier, one-shot model or anomaly model is
// no error). On an error it closes whatever it opened and returns the first error.
func openIngestModels(rt *onnx.Runtime, b *onnx.Bundle, want ingestModelsWanted, oneshotMax float64, log *slog.Logger) (*ingestModels, error) {
	m := &ingestModels{encoders: map[string]onnx.Graph{}, embedders: map[string][]*onnx.Embedder{}, anomaly: map[string]*onnx.Anomaly{}}
	var openers []func() error
	if want.encoders {
		openers = append(openers, func() error {
			var specs []onnx.ModelSpec
			for _, inst := range b.Instruments() {
				spec, _ := b.Encoder(inst)
				specs = append(specs, spec)
			}
			gs, err := rt.OpenAll(b, specs)
			if err != nil {
				return err
			}
			for i, g := range gs {
				m.keep(g)
				m.encoders[specs[i].Instruments[0]] = g
			}
			return nil
		})
	}
	if want.classifier {
		openers = append(openers, func() error {
			switch cls, err := rt.OpenClassifier(b); {
			case errors.Is(err, onnx.ErrNoModel):
				log.Info("the bundle has no instrument classifier: loops whose names do not say their instrument are skipped", "bundle", b.ID())
			case err != nil:
				return err
			default:
				m.keep(cls)
				m.cls = cls
			}
			return nil
		})
	}
	if len(want.embedders) > 0 {
		openers = append(openers, func() error {
			embs, c, err := rt.OpenEmbedders(b, want.embedders)
			if err != nil {
				return err
			}
			m.keep(c)
			m.embedders = embs
			return nil
		})
	}
	if want.oneShots {
		openers = append(openers, func() error {
			sm, err := rt.OpenSampleMatch(b)
			switch {
			case errors.Is(err, onnx.ErrNoModel):
				log.Info("the bundle has no one-shot encoder: one-shots are not stored apart", "bundle", b.ID())
				return nil
			case err != nil:
				return err
			}
			m.keep(sm)
			id, _ := b.OneShotEncoderID()
			m.oneShots = &ingest.OneShots{Encoder: sm.OneShot, EncoderID: id, MaxSeconds: oneshotMax}
			switch kc, err := rt.OpenOneShotClassifier(b); {
			case errors.Is(err, onnx.ErrNoModel):
				log.Info("the bundle has no one-shot kind classifier: one-shots whose names do not say their kind are stored as unknown", "bundle", b.ID())
			case err != nil:
				return err
			default:
				m.keep(kc)
				m.oneShots.Kind = kc
			}
			return nil
		})
	}
	if want.anomaly {
		openers = append(openers, func() error {
			as, err := rt.OpenAnomalies(b)
			if err != nil {
				return err
			}
			for _, inst := range b.Instruments() {
				if a, ok := as[inst]; ok {
					m.keep(a)
					m.anomaly[inst] = a
				} else {
					log.Info("the bundle has no anomaly model for this instrument: its loops are stored without anomaly scores", "instrument", inst, "bundle", b.ID())
				}
			}
			return nil
		})
	}
	if err := onnx.Concurrently(openers...); err != nil {
		m.close()
		return nil, err
	}
	return m, nil
}
