package onnx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ContextEncoder returns SampleMatch's context encoder (ErrNoModel when the bundle has
// none: it cannot answer context queries).
func (b *Bundle) ContextEncoder() (ModelSpec, error) { return b.only(RoleContextEncoder) }

// OneShotEncoder returns SampleMatch's one-shot encoder (ErrNoModel when the bundle has
// none: it cannot fill a one-shot collection).
func (b *Bundle) OneShotEncoder() (ModelSpec, error) { return b.only(RoleOneShotEncoder) }

// OneShotClassifier returns the one-shot kind classifier (ErrNoModel when the bundle has
// none: ingest then stores one-shots whose names do not say their kind as unknown).
func (b *Bundle) OneShotClassifier() (ModelSpec, error) { return b.only(RoleOneShotClassifier) }

// OpenOneShotClassifier opens the bundle's one-shot kind classifier; ErrNoModel when it
// has none. Close it when done.
func (r *Runtime) OpenOneShotClassifier(b *Bundle) (*Classifier, error) {
	return r.openClassifier(b, b.OneShotClassifier)
}

// OneShotSamples is the one-shot window S (the one-shot encoder's input length), 0 when
// the bundle has no one-shot encoder.
func (b *Bundle) OneShotSamples() int {
	s, err := b.OneShotEncoder()
	if err != nil {
		return 0
	}
	return int(s.Inputs[0].Shape[1])
}

// OneShotDim is the dimension of SampleMatch's space (what a one-shot collection holds),
// 0 when the bundle has no one-shot encoder.
func (b *Bundle) OneShotDim() int {
	s, err := b.OneShotEncoder()
	if err != nil {
		return 0
	}
	return int(s.Outputs[0].Shape[1])
}

// OneShotEncoderID identifies what the one-shot encoder makes, as EncoderID does for a
// loop encoder: the label, then the first 12 hex digits of the sha256 of the text
// "oneshot_encoder <file sha256>\nsample_rate <rate>\noneshot_samples <S>\n". The
// one-shot collection records it, so one-shots embedded by another model are found.
func (b *Bundle) OneShotEncoderID() (string, error) {
	spec, err := b.OneShotEncoder()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "oneshot_encoder %s\nsample_rate %d\noneshot_samples %s\n",
		strings.ToLower(spec.SHA256), b.SampleRate, strconv.FormatInt(spec.Inputs[0].Shape[1], 10))
	return fmt.Sprintf("%s@%s:%s", b.Name, b.Version, hex.EncodeToString(h.Sum(nil))[:12]), nil
}

func (b *Bundle) only(role string) (ModelSpec, error) {
	for _, s := range b.Models {
		if s.Role == role {
			return s, nil
		}
	}
	return ModelSpec{}, fmt.Errorf("%w: bundle %s has no %s (SampleMatch): serve a bundle built by make models (models/loopmatch-v2)", ErrNoModel, b.Name, role)
}

// SampleMatch holds the two encoders of context queries: contexts (mixes of loops over
// the bundle's window) and one-shots embed into one space, ranked by cosine.
type SampleMatch struct {
	Context, OneShot Graph
	// Dim is the space's dimension; OneShotSamples the one-shot window.
	Dim, OneShotSamples int
}

// OpenSampleMatch opens the bundle's context and one-shot encoders; ErrNoModel when it
// has none. Close it when done.
func (r *Runtime) OpenSampleMatch(b *Bundle) (*SampleMatch, error) {
	cs, err := b.ContextEncoder()
	if err != nil {
		return nil, err
	}
	osp, err := b.OneShotEncoder()
	if err != nil {
		return nil, err
	}
	c, err := r.Open(b, cs)
	if err != nil {
		return nil, err
	}
	o, err := r.Open(b, osp)
	if err != nil {
		c.Close()
		return nil, err
	}
	return &SampleMatch{Context: c, OneShot: o, Dim: b.OneShotDim(), OneShotSamples: b.OneShotSamples()}, nil
}

// EmbedContexts embeds mixes laid end to end (rows of Context.InputSize samples).
func (s *SampleMatch) EmbedContexts(ctx context.Context, mixes []float32) ([]float32, error) {
	out, err := s.Context.Run(ctx, mixes)
	if err != nil {
		return nil, fmt.Errorf("context encoder: %w", err)
	}
	return out, nil
}

// EmbedOneShots embeds one-shot windows laid end to end (rows of OneShotSamples).
func (s *SampleMatch) EmbedOneShots(ctx context.Context, windows []float32) ([]float32, error) {
	out, err := s.OneShot.Run(ctx, windows)
	if err != nil {
		return nil, fmt.Errorf("one-shot encoder: %w", err)
	}
	return out, nil
}

// Close closes both graphs when they can be closed (*Model).
func (s *SampleMatch) Close() error {
	var errs []error
	for _, g := range []Graph{s.Context, s.OneShot} {
		if c, ok := g.(interface{ Close() error }); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
