package recommend

import (
	"errors"

	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Models holds the ONNX sessions of a bundle, opened once per process.
type Models struct {
	Encoders map[string]*onnx.Model
	Mappers  map[Pair]*onnx.Model
	Decoders map[string]*onnx.Model
	// PairFronts and Scorer are the reranker; empty and nil when the bundle has none.
	PairFronts map[string]*onnx.Model
	Scorer     *onnx.Model
	// Embedders by name (role embedder): one session per file, shared by the
	// instruments it embeds.
	Embedders map[string]*onnx.Model
	// SampleMatch ranks one-shots for contexts; nil when the bundle has none.
	SampleMatch *onnx.SampleMatch
	// OneShotKind tells an uploaded one-shot's kind; nil when the bundle has none.
	OneShotKind *onnx.Classifier
}

// OpenModels opens every encoder, mapper, decoder, reranker and embedder of the bundle,
// side by side (onnx.Runtime.OpenAll), and its SampleMatch models.
func OpenModels(rt *onnx.Runtime, b *onnx.Bundle) (*Models, error) {
	m := &Models{Encoders: map[string]*onnx.Model{}, Mappers: map[Pair]*onnx.Model{}, Decoders: map[string]*onnx.Model{},
		PairFronts: map[string]*onnx.Model{}, Embedders: map[string]*onnx.Model{}}
	var specs []onnx.ModelSpec // only the roles kept here: the rest (anomaly, classifier, ...) are opened by who uses them
	for _, s := range b.Models {
		switch s.Role {
		case onnx.RoleEncoder, onnx.RoleDecoder, onnx.RoleMapper, onnx.RolePairFront, onnx.RoleScorer, onnx.RoleEmbedder:
			specs = append(specs, s)
		}
	}
	opened, err := rt.OpenAll(b, specs)
	if err != nil {
		return nil, err
	}
	for i, s := range specs {
		om := opened[i]
		switch s.Role {
		case onnx.RoleEncoder:
			m.Encoders[s.Instruments[0]] = om
		case onnx.RoleDecoder:
			m.Decoders[s.Instruments[0]] = om
		case onnx.RoleMapper:
			m.Mappers[Pair{s.Instruments[0], s.Instruments[1]}] = om
		case onnx.RolePairFront:
			m.PairFronts[s.Instruments[0]] = om
		case onnx.RoleScorer:
			m.Scorer = om
		case onnx.RoleEmbedder:
			m.Embedders[s.Embedder] = om
		}
	}
	if m.SampleMatch, err = optional(rt.OpenSampleMatch(b)); err == nil {
		m.OneShotKind, err = optional(rt.OpenOneShotClassifier(b))
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// optional is an opened model, or nil without an error when the bundle has none.
func optional[T any](x *T, err error) (*T, error) {
	if errors.Is(err, onnx.ErrNoModel) {
		return nil, nil
	}
	return x, err
}

// Close releases every session.
func (m *Models) Close() error {
	var errs []error
	if m.SampleMatch != nil {
		errs = append(errs, m.SampleMatch.Close())
	}
	if m.OneShotKind != nil {
		errs = append(errs, m.OneShotKind.Close())
	}
	if m.Scorer != nil {
		errs = append(errs, m.Scorer.Close())
	}
	for _, g := range []map[string]*onnx.Model{m.Encoders, m.Decoders, m.PairFronts, m.Embedders} {
		for _, x := range g {
			errs = append(errs, x.Close())
		}
	}
	for _, x := range m.Mappers {
		errs = append(errs, x.Close())
	}
	return errors.Join(errs...)
}

// Config fills an Engine config with these models and the bundle's facts.
func (m *Models) Config(b *onnx.Bundle, store vectordb.Store) Config {
	c := Config{Store: store, BundleID: b.ID(), EncoderIDs: b.EncoderIDs(), SampleRate: b.SampleRate, WindowSeconds: b.WindowSeconds,
		Encoders: map[string]onnx.Graph{}, Mappers: map[Pair]onnx.Graph{}, Decoders: map[string]onnx.Graph{}}
	for k, v := range m.Encoders {
		c.Encoders[k] = v
	}
	for k, v := range m.Mappers {
		c.Mappers[k] = v
	}
	for k, v := range m.Decoders {
		c.Decoders[k] = v
	}
	names := make([]string, 0, len(m.Embedders))
	for name := range m.Embedders {
		names = append(names, name)
	}
	c.Embedders = m.EmbedderSessions(b, names)
	if m.Scorer != nil {
		rc := RerankConfig{PairFronts: map[string]onnx.Graph{}, PairFrontIDs: map[string]string{}, Scorer: m.Scorer}
		for _, in := range m.Scorer.Spec.Inputs {
			rc.ScorerInputs = append(rc.ScorerInputs, in.Name) // named by instrument (checked by LoadBundle)
		}
		for k, v := range m.PairFronts {
			rc.PairFronts[k] = v
			rc.PairFrontIDs[k], _ = b.PairFrontID(k)
		}
		if b.Rerank != nil {
			rc.Default, rc.N, rc.AnnWeight = b.Rerank.Default, b.Rerank.N, b.Rerank.AnnWeight
		}
		c.Rerank = rc
	}
	if h := b.Hubness; h != nil {
		c.Hub = HubConfig{Default: h.Default, K: h.K, Beta: h.Beta, Depth: h.Depth}
	}
	if m.SampleMatch != nil {
		c.SampleMatch = m.SampleMatch
		c.OneShotEncoderID, _ = b.OneShotEncoderID()
	}
	return c
}

// EmbedderSessions are the named embedders by instrument and name, sharing these models'
// sessions (one per file); names the bundle lacks are left out.
func (m *Models) EmbedderSessions(b *onnx.Bundle, names []string) map[string]map[string]*onnx.Embedder {
	out := map[string]map[string]*onnx.Embedder{}
	for _, name := range names {
		g := m.Embedders[name]
		if g == nil {
			continue
		}
		for _, inst := range b.Instruments() {
			id, err := b.EmbedderID(inst, name)
			if err != nil {
				continue // this embedder does not embed the instrument's loops
			}
			if out[inst] == nil {
				out[inst] = map[string]*onnx.Embedder{}
			}
			out[inst][name] = &onnx.Embedder{Graph: g, Name: name, Instrument: inst, ID: id}
		}
	}
	return out
}
