package onnx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// LatentEmbedder names the encoder's own latent as a representation for similar and
// profile queries: the default, stored in the instrument's own collection.
const LatentEmbedder = "latent"

var embedderName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// ValidEmbedderName reports whether name can name a representation: 1 to 32 lower-case
// letters, digits or _ starting with a letter (it becomes part of a collection name).
func ValidEmbedderName(name string) bool { return embedderName.MatchString(name) }

// Embedders lists the names of the representations the bundle embeds an instrument's
// loops with (role embedder), sorted; the encoder's latent is not among them.
func (b *Bundle) Embedders(instrument string) []string {
	var out []string
	for _, s := range b.Models {
		if s.Role == RoleEmbedder && slices.Contains(s.Instruments, instrument) {
			out = append(out, s.Embedder)
		}
	}
	sort.Strings(out)
	return out
}

// Embedder returns the spec of the embedder name for an instrument; ErrNoModel, naming
// the representations the bundle has, when it has no such embedder.
func (b *Bundle) Embedder(instrument, name string) (ModelSpec, error) {
	for _, s := range b.Models {
		if s.Role == RoleEmbedder && s.Embedder == name && slices.Contains(s.Instruments, instrument) {
			return s, nil
		}
	}
	have := strings.Join(append([]string{LatentEmbedder}, b.Embedders(instrument)...), ", ")
	return ModelSpec{}, fmt.Errorf("%w: the bundle %s has no embedder %q for %s loops; it has %s", ErrNoModel, b.Name, name, instrument, have)
}

// EmbedderID identifies what an embedder makes for an instrument, as EncoderID does for
// the encoder: "<name>@<version>/<embedder>:" (so a collection's metadata names the
// embedder) and 12 hex digits of the sha256 of
//
//	embedder <name> <sha256 of the file>\n
//	instrument <instrument>\n
//	sample_rate <sample_rate>\n
//	window_seconds <window_seconds>\n
//	dim <D>\n
//
// An embedder collection records it, so a collection filled by another embedder (or
// another version of it) is refused rather than searched.
func (b *Bundle) EmbedderID(instrument, name string) (string, error) {
	s, err := b.Embedder(instrument, name)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "embedder %s %s\ninstrument %s\nsample_rate %d\nwindow_seconds %s\ndim %d\n", name, strings.ToLower(s.SHA256), instrument,
		b.SampleRate, strconv.FormatFloat(b.WindowSeconds, 'g', -1, 64), s.Outputs[0].Shape[1])
	return fmt.Sprintf("%s@%s/%s:%s", b.Name, b.Version, name, hex.EncodeToString(h.Sum(nil))[:12]), nil
}

// Embedder embeds audio windows of one instrument with one of the bundle's embedders.
type Embedder struct {
	Graph      Graph
	Name       string // the representation, as a request names it
	Instrument string
	// ID identifies the embedder (Bundle.EmbedderID); its collection records it.
	ID string
}

// OpenEmbedder opens the embedder name for an instrument; ErrNoModel when the bundle has
// none of that name. Close it when done.
func (r *Runtime) OpenEmbedder(b *Bundle, instrument, name string) (*Embedder, error) {
	spec, err := b.Embedder(instrument, name)
	if err != nil {
		return nil, err
	}
	id, err := b.EmbedderID(instrument, name)
	if err != nil {
		return nil, err
	}
	m, err := r.Open(b, spec)
	if err != nil {
		return nil, err
	}
	return &Embedder{Graph: m, Name: name, Instrument: instrument, ID: id}, nil
}

// Dim is the length of one embedding.
func (e *Embedder) Dim() int { return e.Graph.OutputSize() }

// Close closes the graph when it can be closed (a *Model).
func (e *Embedder) Close() error {
	if cl, ok := e.Graph.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// Embed returns one vector per window (windows laid end to end, rows of Graph.InputSize
// samples). A value that is not finite is an error, not a vector to store.
func (e *Embedder) Embed(ctx context.Context, windows []float32) ([][]float32, error) {
	out, err := e.Graph.Run(ctx, windows)
	if err != nil {
		return nil, fmt.Errorf("embedder %s: %w", e.Name, err)
	}
	d := e.Dim()
	if d <= 0 || len(out)%d != 0 {
		return nil, fmt.Errorf("embedder %s: %d values, not a whole number of %d-value embeddings", e.Name, len(out), d)
	}
	vecs := make([][]float32, 0, len(out)/d)
	for i := 0; i < len(out); i += d {
		for _, v := range out[i : i+d] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("embedder %s: window %d gave %v: the bundle's embedder is damaged; rebuild it (make models)", e.Name, i/d, v)
			}
		}
		vecs = append(vecs, out[i:i+d:i+d])
	}
	return vecs, nil
}

// EmbedderNames lists every embedder the bundle has, for any instrument, sorted.
func (b *Bundle) EmbedderNames() []string {
	var out []string
	for _, s := range b.Models {
		if s.Role == RoleEmbedder && !slices.Contains(out, s.Embedder) {
			out = append(out, s.Embedder)
		}
	}
	sort.Strings(out)
	return out
}

// ParseEmbedders reads a comma-separated list of the bundle's embedders (ingest
// --embedders): "all" is every one, "" or "none" none, "latent" (always stored) is
// allowed and left out. Names are returned sorted, once each; an unknown name is an error
// naming the ones the bundle has.
func (b *Bundle) ParseEmbedders(list string) ([]string, error) {
	have := b.EmbedderNames()
	var out []string
	for _, f := range strings.Split(list, ",") {
		name := strings.ToLower(strings.TrimSpace(f))
		switch {
		case name == "" || name == "none" || name == LatentEmbedder:
		case name == "all":
			out = append(out, have...)
		case slices.Contains(have, name):
			out = append(out, name)
		default:
			return nil, fmt.Errorf("embedder %q: the bundle %s has %s (or all, or none)", strings.TrimSpace(f), b.Name, strings.Join(append([]string{LatentEmbedder}, have...), ", "))
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// OpenEmbedders opens the named embedders for every instrument of the bundle that each
// embeds, by instrument. One embedder's graph is opened once and shared by the
// instruments it embeds (one ONNX file serves drum and bass alike). Close the returned
// closer when done with all of them.
func (r *Runtime) OpenEmbedders(b *Bundle, names []string) (map[string][]*Embedder, io.Closer, error) {
	out := map[string][]*Embedder{}
	var opened closers
	files := map[string]*Model{}
	for _, inst := range b.Instruments() {
		for _, name := range names {
			spec, err := b.Embedder(inst, name)
			if errors.Is(err, ErrNoModel) {
				continue // this embedder does not embed the instrument's loops
			}
			id, _ := b.EmbedderID(inst, name)
			m := files[spec.File]
			if m == nil {
				if m, err = r.Open(b, spec); err != nil {
					opened.Close()
					return nil, nil, err
				}
				files[spec.File] = m
				opened = append(opened, m)
			}
			out[inst] = append(out[inst], &Embedder{Graph: m, Name: name, Instrument: inst, ID: id})
		}
	}
	return out, opened, nil
}

// closers closes each in turn, returning the first error.
type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
