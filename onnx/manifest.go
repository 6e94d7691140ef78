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
	// RolePairFront is the reranker's per-loop half: one instrument's window of audio to
	// the features the scorer reads, computed once per stored loop and cached.
	RolePairFront = "pairfront"
	// RoleScorer is the reranker's pair half: a drum's and a bass's pairfront features
	// (inputs named by instrument) to a compatibility logit, higher fits better.
	RoleScorer = "scorer"
	// RoleClassifier labels an audio window with one of the model's Classes (the
	// instrument classifier: drum / bass / other); at most one per bundle.
	RoleClassifier = "classifier"
	// RoleAnomaly scores how unusual an instrument's audio window is (higher is more
	// unusual); its Threshold (the 95th percentile of its training loops' scores) flags a
	// loop as anomalous. One per instrument at most.
	RoleAnomaly = "anomaly"
	// RoleEmbedder turns an audio window into a vector for "more like this" and taste
	// profiles: a representation other than the encoder's latent, named by Embedder, for
	// one or more instruments; its vectors live in collections of their own
	// (loopid.EmbedderCollection).
	RoleEmbedder = "embedder"
	// RoleContextEncoder (SampleMatch) embeds a context, a mix of loops over the bundle's
	// window (audio [-1, N]), into the space the one-shot encoder embeds one-shots in
	// (output [-1, D], unit vectors ranked by cosine). At most one per bundle, and only with
	// a one-shot encoder of the same D.
	RoleContextEncoder = "context_encoder"
	// RoleOneShotEncoder (SampleMatch) embeds a one-shot's first S samples, zero padded
	// (audio [-1, S], 0 < S <= N: S fixes the one-shot window), into the context
	// encoder's space (output [-1, D]).
	RoleOneShotEncoder = "oneshot_encoder"
	// RoleOneShotClassifier labels a one-shot's window (the one-shot encoder's input) with
	// one of its Classes, the one-shot kinds, as RoleClassifier does loops; at most one.
	RoleOneShotClassifier = "oneshot_classifier"
)

// MaxRerankN bounds the manifest's default rerank depth (recommend caps requests too).
const MaxRerankN = 10000

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
	// Rerank says how recommend uses the bundle's scorer; nil when it has none.
	Rerank *RerankSpec `json:"rerank,omitempty"`
	// Hubness is the first stage's hubness correction; nil when the bundle has none.
	Hubness *HubnessSpec `json:"hubness,omitempty"`
}

// HubnessSpec is the manifest's "hubness" block: the first stage's hubness correction
// (CSLS), chosen by the trainer on the validation split. A candidate's score for a seed is
// its cosine to the mapped seed minus Beta times its hub score, the mean of its K highest
// cosines to the library's mapped seeds; the Depth best by cosine are reordered so.
// Default: recommend corrects when a request does not say (set only when the correction
// wins on the transfer split).
type HubnessSpec struct {
	Default bool    `json:"default"`
	K       int     `json:"k"`
	Beta    float64 `json:"beta"`
	Depth   int     `json:"depth"`
}

// Bounds of the manifest's hubness block.
const (
	MaxHubK     = 100
	MaxHubDepth = 10000
)

// checkHubness validates the hubness block, if any: it needs mappers to correct.
func (b *Bundle) checkHubness() error {
	h := b.Hubness
	if h == nil {
		return nil
	}
	if !slices.ContainsFunc(b.Models, func(m ModelSpec) bool { return m.Role == RoleMapper }) {
		return errors.New("manifest has a \"hubness\" block but no model of role mapper: the correction needs the mapped seeds; drop the block")
	}
	if h.K < 1 || h.K > MaxHubK {
		return fmt.Errorf("manifest hubness.k is %d: give how many of a candidate's nearest mapped seeds make its hub score, 1 to %d", h.K, MaxHubK)
	}
	if math.IsNaN(h.Beta) || math.IsInf(h.Beta, 0) || h.Beta < 0 || h.Beta > 10 {
		return fmt.Errorf("manifest hubness.beta is %v: give a weight from 0 to 10", h.Beta)
	}
	if h.Depth < 1 || h.Depth > MaxHubDepth {
		return fmt.Errorf("manifest hubness.depth is %d: give how many of the cosine search's best are corrected, 1 to %d", h.Depth, MaxHubDepth)
	}
	return nil
}

// RerankSpec is the manifest's "rerank" block: whether recommend reranks by default with
// this bundle (the trainer sets it only when the scorer wins on the transfer split), how
// many of the cosine search's best it rescores, and how much of the cosine score joins the
// pair logit in the final score (final = logit + ann_weight * cosine; 0 ranks by the pair
// score alone).
type RerankSpec struct {
	Default   bool    `json:"default"`
	N         int     `json:"n"`
	AnnWeight float64 `json:"ann_weight,omitempty"`
}

// ModelSpec describes one ONNX file of the bundle.
type ModelSpec struct {
	Name        string       `json:"name"`
	File        string       `json:"file"`
	SHA256      string       `json:"sha256"`
	Role        string       `json:"role"`
	Instruments []string     `json:"instruments"` // encoder/decoder/pairfront/anomaly: one; mapper: [source, target]; scorer: [drum, bass]; classifier: none; embedder: one or more
	Inputs      []TensorSpec `json:"inputs"`
	Outputs     []TensorSpec `json:"outputs"`
	// Classes a classifier's output row scores, in order (its output is [-1, len(Classes)]);
	// MinConfidence is the probability below which its best class is not trusted.
	Classes       []string `json:"classes,omitempty"`
	MinConfidence float64  `json:"min_confidence,omitempty"`
	// Threshold an anomaly model's score must exceed for a loop to be flagged anomalous
	// (output [-1]: one score per window).
	Threshold float64 `json:"threshold,omitempty"`
	// Windows says how an anomaly model's loop score comes from the scores of the loop's
	// windows (audio.Windows): AnomalyWindowsFirst (the default when empty) or
	// AnomalyWindowsMax. The threshold was set on loop scores made that way.
	Windows string `json:"windows,omitempty"`
	// Embedder names an embedder's representation (lower case, as an instrument name);
	// "latent" is the encoder's and cannot be an embedder's.
	Embedder string `json:"embedder,omitempty"`
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
		nIn, wantInputs := 1, "one input"
		switch {
		case s.Role == RoleScorer:
			nIn, wantInputs = 2, "two inputs"
		case s.Role == RoleAnomaly && (len(s.Inputs) == 2 || len(s.Inputs) == 3): // the window, the declared tempo, the loop's length
			nIn, wantInputs = len(s.Inputs), "the audio window and, optionally, the declared tempo and then the loop's length as inputs"
		}
		if len(s.Inputs) != nIn || len(s.Outputs) != 1 {
			return fmt.Errorf("%s: want %s and one output for a %s, manifest lists %d and %d", where, wantInputs, s.Role, len(s.Inputs), len(s.Outputs))
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
		case RolePairFront:
			wantIn, wantOut = audio, s.Outputs[0].Shape
			if len(wantOut) != 3 || wantOut[0] != -1 || wantOut[1] <= 0 || wantOut[2] <= 0 {
				return fmt.Errorf("%s: pairfront output %q shape %v: want [-1, C, T] with positive C and T", where, s.Outputs[0].Name, wantOut)
			}
		case RoleScorer:
			wantInst = 2 // the inputs are checked against the pairfronts below
		case RoleClassifier:
			if err := checkClasses(s); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			wantIn, wantOut, wantInst = audio, []int64{-1, int64(len(s.Classes))}, 0
		case RoleOneShotClassifier:
			if err := checkClasses(s); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			wantIn, wantOut, wantInst = s.Inputs[0].Shape, []int64{-1, int64(len(s.Classes))}, 0
			if len(wantIn) != 2 || wantIn[0] != -1 || wantIn[1] <= 0 {
				return fmt.Errorf("%s: one-shot classifier input %q shape %v: want [-1, S], the one-shot encoder's", where, s.Inputs[0].Name, wantIn)
			}
		case RoleContextEncoder, RoleOneShotEncoder:
			wantIn, wantOut, wantInst = audio, s.Outputs[0].Shape, 0
			if s.Role == RoleOneShotEncoder {
				wantIn = s.Inputs[0].Shape
				if len(wantIn) != 2 || wantIn[0] != -1 || wantIn[1] <= 0 || wantIn[1] > n {
					return fmt.Errorf("%s: one-shot encoder input %q shape %v: want [-1, S] with 0 < S <= %d (the bundle's window)", where, s.Inputs[0].Name, wantIn, n)
				}
			}
			if len(wantOut) != 2 || wantOut[0] != -1 || wantOut[1] <= 0 {
				return fmt.Errorf("%s: %s output %q shape %v: want [-1, D] with a positive D", where, s.Role, s.Outputs[0].Name, wantOut)
			}
		case RoleAnomaly:
			if math.IsNaN(s.Threshold) || math.IsInf(s.Threshold, 0) || s.Threshold <= 0 {
				return fmt.Errorf("%s: an anomaly model needs a positive, finite threshold (the 95th percentile of its training scores); manifest has %v", where, s.Threshold)
			}
			if s.Windows != "" && s.Windows != AnomalyWindowsFirst && s.Windows != AnomalyWindowsMax {
				return fmt.Errorf("%s: windows %q: want %q (the loop's first window scores it) or %q (its highest-scoring window does)", where, s.Windows, AnomalyWindowsFirst, AnomalyWindowsMax)
			}
			wantIn, wantOut = audio, []int64{-1}
		case RoleEmbedder:
			if !ValidEmbedderName(s.Embedder) || s.Embedder == LatentEmbedder {
				return fmt.Errorf("%s: embedder name %q: want 1 to 32 lower-case letters, digits or _ starting with a letter, not %q (the encoder's)", where, s.Embedder, LatentEmbedder)
			}
			wantIn, wantOut, wantInst = audio, s.Outputs[0].Shape, len(s.Instruments)
			if len(wantOut) != 2 || wantOut[0] != -1 || wantOut[1] <= 0 {
				return fmt.Errorf("%s: embedder output %q shape %v: want [-1, D] with positive D", where, s.Outputs[0].Name, wantOut)
			}
			if wantInst == 0 {
				return fmt.Errorf("%s: an embedder names the instruments it embeds; manifest has none", where)
			}
		default:
			return fmt.Errorf("%s: role %q is not one of %s", where, s.Role, strings.Join(knownRoles, ", "))
		}
		if s.Role != RoleEmbedder && s.Embedder != "" {
			return fmt.Errorf("%s: embedder %q names an embedder's representation, not a %s's", where, s.Embedder, s.Role)
		}
		if s.Role != RoleAnomaly && (s.Threshold != 0 || s.Windows != "") {
			return fmt.Errorf("%s: threshold and windows belong to an anomaly model, not a %s", where, s.Role)
		}
		if s.Role != RoleClassifier && s.Role != RoleOneShotClassifier && (len(s.Classes) > 0 || s.MinConfidence != 0) {
			return fmt.Errorf("%s: classes and min_confidence belong to a classifier, not a %s", where, s.Role)
		}
		if len(s.Instruments) != wantInst || slices.Contains(s.Instruments, "") {
			switch {
			case s.Role == RoleScorer:
				return fmt.Errorf("%s: a scorer names two instruments, [drum, bass] (its inputs, named by instrument); manifest has %q", where, s.Instruments)
			case wantInst == 0 && s.Role != RoleClassifier && s.Role != RoleOneShotClassifier:
				return fmt.Errorf("%s: a %s names no instruments; manifest has %q", where, s.Role, s.Instruments)
			case wantInst == 0:
				return fmt.Errorf("%s: a classifier names its classes, not instruments; manifest has instruments %q", where, s.Instruments)
			case wantInst == 2:
				return fmt.Errorf("%s: a mapper names two instruments, [source, target]; manifest has %q", where, s.Instruments)
			}
			return fmt.Errorf("%s: the %s names one instrument; manifest has %q", where, s.Role, s.Instruments)
		}
		keys := []string{s.Role + " " + strings.Join(s.Instruments, "->")}
		switch s.Role {
		case RoleScorer:
			keys = []string{s.Role} // one scorer per bundle: a request's pair picks its input order
		case RoleEmbedder: // one embedder of a name per instrument
			keys = keys[:0]
			for _, inst := range s.Instruments {
				keys = append(keys, s.Role+" "+s.Embedder+" "+inst)
			}
		}
		for _, key := range keys {
			if other, dup := roles[key]; dup {
				return fmt.Errorf("%s: %q is already the %s: one model per role and instrument", where, other, key)
			}
			roles[key] = s.Name
		}
		tensors := []tensorWant{{"input", s.Inputs[0], wantIn}, {"output", s.Outputs[0], wantOut}}
		switch {
		case s.Role == RoleScorer: // input shapes: checked against the pairfronts in checkRerank
			tensors = []tensorWant{{"input", s.Inputs[0], s.Inputs[0].Shape}, {"input", s.Inputs[1], s.Inputs[1].Shape}, {"output", s.Outputs[0], []int64{-1}}}
		case s.Role == RoleAnomaly && len(s.Inputs) > 1: // a loop's declared tempo (and length): one value per window each
			for _, in := range s.Inputs[1:] {
				tensors = append(tensors, tensorWant{"input", in, []int64{-1, 1}})
			}
		}
		for _, t := range tensors {
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
	if err := b.checkSampleMatch(); err != nil {
		return err
	}
	if err := b.checkHubness(); err != nil {
		return err
	}
	return b.checkRerank()
}

// roles a manifest may use, in the order error messages list them.
var knownRoles = []string{RoleEncoder, RoleDecoder, RoleMapper, RolePairFront, RoleScorer, RoleClassifier, RoleAnomaly, RoleEmbedder, RoleContextEncoder, RoleOneShotEncoder, RoleOneShotClassifier}

// checkSampleMatch: SampleMatch's two encoders come together and embed into one space.
func (b *Bundle) checkSampleMatch() error {
	c, errC := b.ContextEncoder()
	o, errO := b.OneShotEncoder()
	switch {
	case errC != nil && errO != nil:
		if k, err := b.OneShotClassifier(); err == nil {
			return fmt.Errorf("one-shot classifier %q without a one-shot encoder: add SampleMatch's encoders or drop it", k.Name)
		}
		return nil
	case errC != nil:
		return fmt.Errorf("one-shot encoder %q has no %s to rank it against: add the context encoder or drop the one-shot encoder", o.Name, RoleContextEncoder)
	case errO != nil:
		return fmt.Errorf("context encoder %q has no %s to rank: add the one-shot encoder or drop the context encoder", c.Name, RoleOneShotEncoder)
	}
	if dc, do := c.Outputs[0].Shape[1], o.Outputs[0].Shape[1]; dc != do {
		return fmt.Errorf("context encoder %q makes %d values, one-shot encoder %q %d: the two must embed into one space", c.Name, dc, o.Name, do)
	}
	if k, err := b.OneShotClassifier(); err == nil && k.Inputs[0].Shape[1] != o.Inputs[0].Shape[1] {
		return fmt.Errorf("one-shot classifier %q reads %d samples, the one-shot encoder %q %d: both read the one-shot window", k.Name, k.Inputs[0].Shape[1], o.Name, o.Inputs[0].Shape[1])
	}
	return nil
}

// tensorWant is one tensor of a model spec and the shape its role requires.
type tensorWant struct {
	kind string
	spec TensorSpec
	want []int64
}

// checkRerank ties the scorer to the pairfronts: one input per instrument, named by it,
// shaped as that instrument's pairfront output; a rerank block only with a scorer.
func (b *Bundle) checkRerank() error {
	sc, err := b.Scorer()
	if err != nil {
		if b.Rerank != nil {
			return errors.New("manifest has a \"rerank\" block but no model of role scorer: add the scorer and its pairfronts, or drop the block")
		}
		return nil
	}
	where := fmt.Sprintf("scorer %q (file %q)", sc.Name, sc.File)
	if sc.Instruments[0] == sc.Instruments[1] {
		return fmt.Errorf("%s: names %q twice: a scorer judges a pair of two instruments", where, sc.Instruments[0])
	}
	for _, inst := range sc.Instruments {
		pf, err := b.PairFront(inst)
		if err != nil {
			return fmt.Errorf("%s: needs the %s pairfront that makes its %q input: %w", where, inst, inst, err)
		}
		i := slices.IndexFunc(sc.Inputs, func(t TensorSpec) bool { return t.Name == inst })
		if i < 0 {
			return fmt.Errorf("%s: no input named %q: name the scorer's inputs by instrument (%q)", where, inst, sc.Instruments)
		}
		if want := pf.Outputs[0].Shape; !slices.Equal(sc.Inputs[i].Shape, want) {
			return fmt.Errorf("%s: input %q shape %v, want %v: the %s pairfront's output %q", where, inst, sc.Inputs[i].Shape, want, inst, pf.Outputs[0].Name)
		}
	}
	if r := b.Rerank; r != nil {
		if r.N < 1 || r.N > MaxRerankN {
			return fmt.Errorf("manifest rerank.n is %d: give how many of the cosine search's best the scorer rescores, 1 to %d", r.N, MaxRerankN)
		}
		if math.IsNaN(r.AnnWeight) || math.IsInf(r.AnnWeight, 0) || r.AnnWeight < 0 {
			return fmt.Errorf("manifest rerank.ann_weight is %v: give a finite weight >= 0 (0 ranks by the pair score alone)", r.AnnWeight)
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

// PairFront returns the reranker's front end for an instrument.
func (b *Bundle) PairFront(instrument string) (ModelSpec, error) {
	return b.find(RolePairFront, instrument, "")
}

// Scorer returns the reranker's pair model (ErrNoModel when the bundle has none, so
// recommend cannot rerank with it).
func (b *Bundle) Scorer() (ModelSpec, error) {
	for _, s := range b.Models {
		if s.Role == RoleScorer {
			return s, nil
		}
	}
	return ModelSpec{}, fmt.Errorf("%w: bundle %s has no scorer (role %q), so it cannot rerank: serve a bundle with one (make models) or leave rerank off", ErrNoModel, b.Name, RoleScorer)
}

// Anomaly returns an instrument's anomaly model (ErrNoModel when the bundle has none:
// bundles made before it still load, and ingest then stores no anomaly scores).
func (b *Bundle) Anomaly(instrument string) (ModelSpec, error) {
	return b.find(RoleAnomaly, instrument, "")
}

// AnomalyID identifies what an instrument's anomaly model scores with, as EncoderID does
// for an encoder: the label, then the first 12 hex digits of the sha256 of the model
// file's sha256, the threshold, the rate and the window (and how windows make a loop's
// score, when not by the first alone). A stored score records it, so a
// library whose scores came from another model is found and re-scored.
func (b *Bundle) AnomalyID(instrument string) (string, error) {
	spec, err := b.Anomaly(instrument)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "anomaly %s\nthreshold %s\nsample_rate %d\nwindow_seconds %s\n",
		strings.ToLower(spec.SHA256), strconv.FormatFloat(spec.Threshold, 'g', -1, 64), b.SampleRate, strconv.FormatFloat(b.WindowSeconds, 'g', -1, 64))
	if spec.Windows != "" && spec.Windows != AnomalyWindowsFirst { // a first-window model's id is what it was before windows existed
		fmt.Fprintf(h, "windows %s\n", spec.Windows)
	}
	return fmt.Sprintf("%s@%s:%s", b.Name, b.Version, hex.EncodeToString(h.Sum(nil))[:12]), nil
}

// PairFrontID identifies what an instrument's pairfront makes, as EncoderID does for an
// encoder: the label, then the first 12 hex digits of the pairfront file's sha256 with
// the rate and window. Cached candidate features are keyed by it.
func (b *Bundle) PairFrontID(instrument string) (string, error) {
	spec, err := b.PairFront(instrument)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "pairfront %s\nsample_rate %d\nwindow_seconds %s\n",
		strings.ToLower(spec.SHA256), b.SampleRate, strconv.FormatFloat(b.WindowSeconds, 'g', -1, 64))
	return fmt.Sprintf("%s@%s:%s", b.Name, b.Version, hex.EncodeToString(h.Sum(nil))[:12]), nil
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

// checkClasses: a classifier names two or more distinct, non-empty classes and a
// min_confidence in [0, 1).
func checkClasses(s *ModelSpec) error {
	if len(s.Classes) < 2 {
		return fmt.Errorf("a classifier names at least two classes (its output row's labels, in order); manifest has %q", s.Classes)
	}
	seen := map[string]bool{}
	for _, c := range s.Classes {
		if c == "" || seen[c] {
			return fmt.Errorf("classes %q: every class needs a name of its own", s.Classes)
		}
		seen[c] = true
	}
	if math.IsNaN(s.MinConfidence) || s.MinConfidence < 0 || s.MinConfidence >= 1 {
		return fmt.Errorf("min_confidence %v: want a probability in [0, 1)", s.MinConfidence)
	}
	return nil
}

// Classifier returns the bundle's classifier (the instrument classifier), or ErrNoModel
// when it has none: bundles made before it still load, and ingest then relies on names.
func (b *Bundle) Classifier() (ModelSpec, error) {
	for _, s := range b.Models {
		if s.Role == RoleClassifier {
			return s, nil
		}
	}
	return ModelSpec{}, fmt.Errorf("%w: no %s in bundle %s: name loops' folders or files, or use a bundle built by make models", ErrNoModel, RoleClassifier, b.Name)
}
