package recommend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/loopmatch/loopmatch/loopid"
)

// The generative side of the bundle: the decoders turn any latent of their instrument
// into audio, so besides the mapped "best-guess" preview the engine can decode a mix of
// two loops' latents (interpolation) and one instrument's latent through another
// instrument's decoder (timbre transfer). Both produce a latent; decoding it is left to
// the caller (the HTTP server's preview cache), so a repeated request decodes once.

// Errors of interpolate and transfer requests, beside ErrSeedNotFound, ErrNotIngested,
// ErrEncoderMismatch and ErrNoDecoder.
var (
	// ErrInvalidGenerate: the request itself is wrong (ratio, missing or doubled loops).
	ErrInvalidGenerate = errors.New("invalid interpolate or transfer request")
	// ErrUnknownInstrument: no model of the bundle knows the instrument.
	ErrUnknownInstrument = errors.New("unknown instrument")
	// ErrNoEncoder: uploaded audio of an instrument the bundle has no encoder for.
	ErrNoEncoder = errors.New("no encoder for this instrument")
)

// LoopRef names one loop: a stored loop's id in its instrument's collection, or
// uploaded audio already windowed with AudioOptions. Exactly one is set.
type LoopRef struct {
	ID    string
	Audio []float32
}

func (l LoopRef) uploaded() bool { return l.Audio != nil }

// InterpolateRequest mixes two loops of one instrument in latent space:
// decode((1-Ratio)*z_A + Ratio*z_B).
type InterpolateRequest struct {
	Instrument string
	A, B       LoopRef
	// Ratio in [0, 1]: 0 is loop A alone, 1 is loop B alone.
	Ratio float64
}

// TransferRequest decodes a loop of From with the decoder of To (timbre transfer).
// From == To decodes the loop with its own instrument's decoder: what the model makes of it.
type TransferRequest struct {
	From, To string
	Loop     LoopRef
}

// Generated is a latent ready for Decode, and where it came from.
type Generated struct {
	BundleID string
	// Instrument is the decoder that turns Latent into audio.
	Instrument string
	Latent     []float32
	// Sources are the loops the latent was made of, in request order.
	Sources []Seed
}

// Instruments lists every instrument some model of the bundle knows (an encoder, a
// decoder or either side of a mapper), sorted: the one list of instruments that the
// API's URLs, checks and messages use.
func (e *Engine) Instruments() []string {
	seen := map[string]bool{}
	for p := range e.cfg.Mappers {
		seen[p.From], seen[p.To] = true, true
	}
	for i := range e.cfg.Encoders {
		seen[i] = true
	}
	for i := range e.cfg.Decoders {
		seen[i] = true
	}
	out := make([]string, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	sort.Strings(out)
	return out
}

// SampleRate is the rate of decoded audio (the bundle's).
func (e *Engine) SampleRate() int { return e.cfg.SampleRate }

// DecodedSamples is how many samples the instrument's decoder returns per latent (0
// without a decoder).
func (e *Engine) DecodedSamples(instrument string) int {
	if d := e.cfg.Decoders[instrument]; d != nil {
		return d.OutputSize()
	}
	return 0
}

// InstrumentsWith lists the instruments (of Instruments) for which has is true, such as
// HasEncoder or HasDecoder.
func (e *Engine) InstrumentsWith(has func(string) bool) []string {
	var out []string
	for _, i := range e.Instruments() {
		if has(i) {
			out = append(out, i)
		}
	}
	return out
}

// orNone joins a list of instruments for a message, saying so when it is empty.
func orNone(insts []string, role string) string {
	if len(insts) == 0 {
		return "(none: the bundle has no " + role + ")"
	}
	return strings.Join(insts, ", ")
}

// CheckModels says whether loops of from can be read (uploads need from's encoder) and
// latents decoded with to's decoder. The handler asks before decoding an upload, so a
// wrong instrument costs no audio decoding.
func (e *Engine) CheckModels(from, to string, upload bool) error {
	known := e.Instruments()
	for _, inst := range []string{from, to} {
		if !loopid.ValidInstrument(inst) || !slices.Contains(known, inst) {
			return fmt.Errorf("%w: %q: the bundle %s knows %s", ErrUnknownInstrument, clip(inst), e.cfg.BundleID, strings.Join(known, ", "))
		}
	}
	if upload && e.cfg.Encoders[from] == nil {
		return fmt.Errorf("%w: the bundle %s has no %s encoder, so uploaded %s audio cannot be embedded: send a stored loop's id instead, or upload loops of %s",
			ErrNoEncoder, e.cfg.BundleID, from, from, orNone(e.InstrumentsWith(e.HasEncoder), "encoder"))
	}
	if e.cfg.Decoders[to] == nil {
		return fmt.Errorf("%w: the bundle %s has no %s decoder (role \"decoder\"), so no %s audio can be generated: use one of %s",
			ErrNoDecoder, e.cfg.BundleID, to, to, orNone(e.InstrumentsWith(e.HasDecoder), "decoder"))
	}
	return nil
}

// checkRef checks that a loop reference names exactly one loop, and that uploaded audio
// fits the instrument's encoder.
func (e *Engine) checkRef(name, instrument string, l LoopRef) error {
	if (l.ID == "") == (l.Audio == nil) {
		return fmt.Errorf("%w: give loop %s exactly once: a stored %s loop's id or an uploaded file", ErrInvalidGenerate, name, instrument)
	}
	if l.ID != "" && !loopid.ValidID(l.ID) {
		return fmt.Errorf("%w: loop %s's id %q is not a loop id: ids are 32 lower-case hex characters", ErrInvalidGenerate, name, clip(l.ID))
	}
	if l.Audio != nil {
		if enc := e.cfg.Encoders[instrument]; enc != nil && len(l.Audio) != enc.InputSize() {
			return fmt.Errorf("%w: loop %s has %d samples, the %s encoder takes %d: window it with AudioOptions", ErrInvalidGenerate, name, len(l.Audio), instrument, enc.InputSize())
		}
	}
	return nil
}

// ValidateInterpolate checks a request against the bundle and the API's bounds.
func (e *Engine) ValidateInterpolate(r *InterpolateRequest) error {
	if math.IsNaN(r.Ratio) || r.Ratio < 0 || r.Ratio > 1 {
		return fmt.Errorf("%w: ratio is %v: give a mix ratio in [0, 1] (0 = loop a alone, 1 = loop b alone)", ErrInvalidGenerate, r.Ratio)
	}
	if err := e.CheckModels(r.Instrument, r.Instrument, r.A.uploaded() || r.B.uploaded()); err != nil {
		return err
	}
	if err := e.checkRef("a", r.Instrument, r.A); err != nil {
		return err
	}
	return e.checkRef("b", r.Instrument, r.B)
}

// ValidateTransfer checks a request against the bundle.
func (e *Engine) ValidateTransfer(r *TransferRequest) error {
	if err := e.CheckModels(r.From, r.To, r.Loop.uploaded()); err != nil {
		return err
	}
	return e.checkRef("", r.From, r.Loop)
}

// Interpolate returns (1-r)*z_A + r*z_B for two loops of one instrument: stored loops
// contribute their stored latent, uploads their encoder's output.
func (e *Engine) Interpolate(ctx context.Context, r InterpolateRequest) (*Generated, error) {
	if err := e.ValidateInterpolate(&r); err != nil {
		return nil, err
	}
	za, sa, err := e.loopLatent(ctx, r.Instrument, r.A)
	if err != nil {
		return nil, fmt.Errorf("loop a: %w", err)
	}
	zb, sb, err := e.loopLatent(ctx, r.Instrument, r.B)
	if err != nil {
		return nil, fmt.Errorf("loop b: %w", err)
	}
	if len(za) != len(zb) {
		return nil, fmt.Errorf("%w: loop a's latent has %d values, loop b's %d: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, len(za), len(zb))
	}
	return &Generated{BundleID: e.cfg.BundleID, Instrument: r.Instrument, Latent: Mix(za, zb, r.Ratio), Sources: []Seed{sa, sb}}, nil
}

// Mix is (1-r)*a + r*b, computed in float64. At r = 0 it is a exactly and at r = 1 b
// exactly, so the ends of an interpolation are the loops themselves (and share their
// previews' cache keys).
func Mix(a, b []float32, r float64) []float32 {
	out := make([]float32, len(a))
	for i := range a {
		out[i] = float32((1-r)*float64(a[i]) + r*float64(b[i]))
	}
	return out
}

// Transfer returns the latent of a From loop for To's decoder. The encoders of one bundle
// share the latent space's shape (NewEngine checks it); whether To's decoder makes
// musical sense of From's latent is the model's business.
func (e *Engine) Transfer(ctx context.Context, r TransferRequest) (*Generated, error) {
	if err := e.ValidateTransfer(&r); err != nil {
		return nil, err
	}
	z, s, err := e.loopLatent(ctx, r.From, r.Loop)
	if err != nil {
		return nil, err
	}
	if d := e.cfg.Decoders[r.To]; len(z) != d.InputSize() {
		return nil, fmt.Errorf("%w: the %s latent has %d values, the %s decoder takes %d: re-encode the library with loopmatch ingest --reencode", ErrEncoderMismatch, r.From, len(z), r.To, d.InputSize())
	}
	return &Generated{BundleID: e.cfg.BundleID, Instrument: r.To, Latent: z, Sources: []Seed{s}}, nil
}

// loopLatent is SeedLatent for one loop reference.
func (e *Engine) loopLatent(ctx context.Context, instrument string, l LoopRef) ([]float32, Seed, error) {
	z, s, err := e.SeedLatent(ctx, Request{From: instrument, SeedID: l.ID, SeedAudio: l.Audio})
	if err != nil {
		return nil, Seed{}, err
	}
	return z, s, nil
}

// clip keeps echoed input short in error messages.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
