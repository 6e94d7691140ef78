package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Roles a model can play in a bundle.
const (
	RoleEncoder = "encoder"
	RoleDecoder = "decoder"
	RoleMapper  = "mapper"
)

// Manifest is a bundle's manifest.json (DESIGN.md, "Model bundle").
type Manifest struct {
	Name          string          `json:"name"`
	Version       string          `json:"version"`
	SampleRate    int             `json:"sample_rate"`
	WindowSeconds float64         `json:"window_seconds"`
	LatentShape   []int64         `json:"latent_shape"`
	Created       string          `json:"created,omitempty"`
	Training      json.RawMessage `json:"training,omitempty"`
	Metrics       json.RawMessage `json:"metrics,omitempty"`
	Models        []ModelSpec     `json:"models"`
}

// ModelSpec describes one ONNX file of the bundle.
type ModelSpec struct {
	Name        string       `json:"name"`
	File        string       `json:"file"`
	SHA256      string       `json:"sha256"`
	Role        string       `json:"role"`
	Instruments []string     `json:"instruments"` // encoder/decoder: one; mapper: [source, target]
	Inputs      []TensorSpec `json:"inputs"`
	Outputs     []TensorSpec `json:"outputs"`
}

// TensorSpec is a tensor's name, shape (-1 for the dynamic batch) and element type.
type TensorSpec struct {
	Name  string  `json:"name"`
	Shape []int64 `json:"shape"`
	DType string  `json:"dtype"`
}

// Bundle is a checked manifest and the folder holding its files.
type Bundle struct {
	Dir string
	Manifest
	id string
}

// LoadBundle reads dir/manifest.json and checks it: known roles, one model per role and
// instrument(s), tensor shapes that agree with sample_rate*window_seconds and
// latent_shape, plain file names inside dir, files present with the declared sha256.
// Unknown keys are ignored. It does not need ONNX Runtime; Runtime.Open checks the graphs.
func LoadBundle(dir string) (*Bundle, error) {
	mp := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(mp)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("model bundle %s: no manifest.json (%w): point --bundle at a bundle folder (models/loopmatch-v2) or build one with make models", dir, err)
		}
		return nil, fmt.Errorf("model bundle %s: %w", dir, err)
	}
	var m Manifest // unknown keys are ignored: exporters may add their own
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("model bundle %s: manifest.json does not match the manifest schema: %w: re-export the bundle", dir, err)
	}
	b := &Bundle{Dir: dir, Manifest: m}
	if err := b.check(); err != nil {
		return nil, fmt.Errorf("model bundle %s: %w", dir, err)
	}
	b.id = b.computeID()
	return b, nil
}

// WindowSamples is the encoder input length N.
func (b *Bundle) WindowSamples() int64 {
	return int64(math.Round(float64(b.SampleRate) * b.WindowSeconds))
}

// LatentDim is the flattened latent size C*T, the stored embedding's dimension.
func (b *Bundle) LatentDim() int {
	d := int64(1)
	for _, v := range b.LatentShape {
		d *= v
	}
	return int(d)
}

// ID identifies the whole bundle's weights: name@version plus a digest of every
// model's sha256 (what a decoded preview depends on). Collections record EncoderID
// instead, which only the encoder changes.
func (b *Bundle) ID() string { return b.id }

// EncoderID identifies what the instrument's encoder makes: the label
// "<name>@<version>" of the bundle it was loaded from, then ":" and the first 12 hex
// digits of the sha256 of the text
//
//	encoder <sha256 of the encoder file, lower-case hex>\n
//	sample_rate <sample_rate>\n
//	window_seconds <window_seconds, shortest decimal that round-trips>\n
//	latent_shape <C>x<T>\n
//
// Everything else in the bundle (decoders, mappers, other instruments' models, the
// name and version) leaves the digest alone, so a collection filled by this encoder
// stays usable when only those change; stores compare the digest
// (vectordb.SameEncoder). A collection records it, and ingest --reencode rebuilds a
// collection whose digest differs. ErrNoModel when the bundle has no such encoder.
func (b *Bundle) EncoderID(instrument string) (string, error) {
	spec, err := b.Encoder(instrument)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "encoder %s\nsample_rate %d\nwindow_seconds %s\nlatent_shape %dx%d\n",
		strings.ToLower(spec.SHA256), b.SampleRate, strconv.FormatFloat(b.WindowSeconds, 'g', -1, 64), b.LatentShape[0], b.LatentShape[1])
	return fmt.Sprintf("%s@%s:%s", b.Name, b.Version, hex.EncodeToString(h.Sum(nil))[:12]), nil
}

// EncoderIDs is EncoderID for every instrument with an encoder.
func (b *Bundle) EncoderIDs() map[string]string {
	out := map[string]string{}
	for _, inst := range b.Instruments() {
		out[inst], _ = b.EncoderID(inst)
	}
	return out
}

func (b *Bundle) computeID() string {
	h := sha256.New()
	for i, s := range b.Models {
		if i > 0 {
			io.WriteString(h, "\n")
		}
		io.WriteString(h, strings.ToLower(s.SHA256))
	}
	return fmt.Sprintf("%s@%s:%s", b.Name, b.Version, hex.EncodeToString(h.Sum(nil))[:12])
}

func (b *Bundle) check() error {
	if b.Name == "" || b.Version == "" {
		return errors.New("manifest needs a name and a version")
	}
	if b.SampleRate <= 0 || b.WindowSeconds <= 0 || math.IsInf(b.WindowSeconds, 0) {
		return fmt.Errorf("manifest sample_rate %d and window_seconds %v must be positive", b.SampleRate, b.WindowSeconds)
	}
	if len(b.LatentShape) != 2 || b.LatentShape[0] <= 0 || b.LatentShape[1] <= 0 {
		return fmt.Errorf("manifest latent_shape %v: want [C, T] with positive sizes", b.LatentShape)
	}
	if len(b.Models) == 0 {
		return errors.New("manifest lists no models")
	}
	n := b.WindowSamples()
	z := append([]int64{-1}, b.LatentShape...)
	audio := []int64{-1, n}
	names := map[string]bool{}
	roles := map[string]string{} // role + instruments -> model name, to refuse ambiguity
	for i := range b.Models {
		s := &b.Models[i]
		where := fmt.Sprintf("model %d %q (file %q)", i, s.Name, s.File)
		if s.Name == "" || names[s.Name] {
			return fmt.Errorf("%s: every model needs a name of its own", where)
		}
		names[s.Name] = true
		if !plainFileName(s.File) {
			return fmt.Errorf("%s: file must be a plain name inside the bundle folder (no folders, no leading dot)", where)
		}
		if len(s.SHA256) != 64 || strings.Trim(strings.ToLower(s.SHA256), "0123456789abcdef") != "" {
			return fmt.Errorf("%s: sha256 %q is not 64 hex digits", where, s.SHA256)
		}
		if len(s.Inputs) != 1 || len(s.Outputs) != 1 {
			return fmt.Errorf("%s: want one input and one output, manifest lists %d and %d", where, len(s.Inputs), len(s.Outputs))
		}
		var wantIn, wantOut []int64
		wantInst := 1
		switch s.Role {
		case RoleEncoder:
			wantIn, wantOut = audio, z
		case RoleDecoder:
			wantIn, wantOut = z, audio
		case RoleMapper:
			wantIn, wantOut, wantInst = z, z, 2
		default:
			return fmt.Errorf("%s: role %q is not one of %s, %s, %s", where, s.Role, RoleEncoder, RoleDecoder, RoleMapper)
		}
		if len(s.Instruments) != wantInst || slices.Contains(s.Instruments, "") {
			if wantInst == 2 {
				return fmt.Errorf("%s: a mapper names two instruments, [source, target]; manifest has %q", where, s.Instruments)
			}
			return fmt.Errorf("%s: the %s names one instrument; manifest has %q", where, s.Role, s.Instruments)
		}
		key := s.Role + " " + strings.Join(s.Instruments, "->")
		if other, dup := roles[key]; dup {
			return fmt.Errorf("%s: %q is already the %s: one model per role and instrument", where, other, key)
		}
		roles[key] = s.Name
		for _, t := range []struct {
			kind string
			spec TensorSpec
			want []int64
		}{{"input", s.Inputs[0], wantIn}, {"output", s.Outputs[0], wantOut}} {
			if t.spec.Name == "" {
				return fmt.Errorf("%s: %s tensor needs a name", where, t.kind)
			}
			if !slices.Equal(t.spec.Shape, t.want) {
				return fmt.Errorf("%s: %s %q shape %v, want %v for a %s of this bundle (sample_rate %d * window_seconds %v = %d samples, latent_shape %v)",
					where, t.kind, t.spec.Name, t.spec.Shape, t.want, s.Role, b.SampleRate, b.WindowSeconds, n, b.LatentShape)
			}
			if t.spec.DType != "" && t.spec.DType != "float32" {
				return fmt.Errorf("%s: %s %q is %s, only float32 is supported", where, t.kind, t.spec.Name, t.spec.DType)
			}
		}
		if err := checkSHA(filepath.Join(b.Dir, s.File), s.SHA256); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

// plainFileName accepts a file name that stays inside the bundle folder on any OS.
func plainFileName(f string) bool {
	return f != "" && f == filepath.Base(f) && filepath.IsLocal(f) && !strings.HasPrefix(f, ".") &&
		!strings.ContainsAny(f, `/\:`)
}

func checkSHA(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("model file missing: %w: rebuild the bundle with make models", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if !strings.EqualFold(got, want) {
		return fmt.Errorf("sha256 of %s is %s, manifest says %s: the file was changed or damaged; restore it or rebuild the bundle", filepath.Base(path), got, want)
	}
	return nil
}

// Instruments with an encoder, in manifest order.
func (b *Bundle) Instruments() []string {
	var out []string
	for _, s := range b.Models {
		if s.Role == RoleEncoder {
			out = append(out, s.Instruments[0])
		}
	}
	return out
}

// Encoder returns the encoder spec for an instrument.
func (b *Bundle) Encoder(instrument string) (ModelSpec, error) {
	return b.find(RoleEncoder, instrument, "")
}

// Decoder returns the decoder spec for an instrument.
func (b *Bundle) Decoder(instrument string) (ModelSpec, error) {
	return b.find(RoleDecoder, instrument, "")
}

// Mapper returns the mapper from one instrument's latent to another's.
func (b *Bundle) Mapper(from, to string) (ModelSpec, error) {
	return b.find(RoleMapper, from, to)
}

// ErrNoModel: the bundle has no model for the asked role and instruments.
var ErrNoModel = errors.New("no such model in the bundle")

func (b *Bundle) find(role, a, c string) (ModelSpec, error) {
	for _, s := range b.Models {
		if s.Role != role {
			continue
		}
		if role == RoleMapper && s.Instruments[0] == a && s.Instruments[1] == c {
			return s, nil
		}
		if role != RoleMapper && s.Instruments[0] == a {
			return s, nil
		}
	}
	var have []string
	for _, s := range b.Models {
		if s.Role == role {
			have = append(have, strings.Join(s.Instruments, "->"))
		}
	}
	what := a
	if role == RoleMapper {
		what = a + "->" + c
	}
	return ModelSpec{}, fmt.Errorf("%w: no %s for %s in bundle %s (it has: %s)", ErrNoModel, role, what, b.Name, strings.Join(have, ", "))
}
