package query

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// SimilarQuery is a parsed POST /v1/similar: the engine request and the raw seed upload
// (decoded by the handler, which knows the bundle's rate).
type SimilarQuery struct {
	Request recommend.SimilarRequest
	Upload  []byte
}

// ProfileQuery is a parsed POST /v1/profile.
type ProfileQuery struct {
	Request recommend.ProfileRequest
}

// similarBody and profileBody are the JSON forms. Pointers tell "absent" from zero.
type similarBody struct {
	Instrument *string     `json:"instrument"`
	SeedID     *string     `json:"seed_id"`
	SeedOffset *float64    `json:"seed_offset"`
	K          *int        `json:"k"`
	Offset     *int        `json:"offset"`
	Filter     *filterBody `json:"filter"`
	MMRLambda  *float64    `json:"mmr_lambda"`
	Embedder   *string     `json:"embedder"`
}

type profileBody struct {
	Instrument    *string     `json:"instrument"`
	To            *string     `json:"to"`
	Liked         []string    `json:"liked"`
	Disliked      []string    `json:"disliked"`
	DislikeWeight *float64    `json:"dislike_weight"`
	K             *int        `json:"k"`
	Offset        *int        `json:"offset"`
	Filter        *filterBody `json:"filter"`
	MMRLambda     *float64    `json:"mmr_lambda"`
	Embedder      *string     `json:"embedder"`
}

const (
	similarTypes = "application/json (seed_id), multipart/form-data (part \"audio\") or audio/* (raw file: audio/wav, audio/flac, audio/ogg, audio/aiff)"
	profileTypes = "application/json (liked, disliked)"
)

// similarFields are the parameters an uploaded similar seed may carry.
var similarFields = append([]string{"instrument", "k", "offset", "mmr_lambda", "seed_offset", "embedder"}, filterFields...)

// ParseSimilar reads a similar request from JSON (a stored seed by id),
// multipart/form-data (part "audio" plus form fields) or a raw audio body (parameters in
// the query string). maxUpload bounds the seed file. Errors are *apiError.
func ParseSimilar(r *http.Request, maxUpload int64) (*SimilarQuery, error) {
	how := "upload the seed loop as the form file \"audio\" (for a stored seed send JSON with seed_id)"
	return uploadRoute[*SimilarQuery]{similarTypes, 32, "the seed loop", how, ParseSimilarJSON, ParseSimilarForm,
		func(q *SimilarQuery, b []byte) { q.Upload = b }}.parse(r, maxUpload)
}

// ParseSimilarJSON parses {"seed_id", "instrument", "k", "offset", "filter",
// "mmr_lambda", "seed_offset", "embedder"}; seed_id is required.
func ParseSimilarJSON(body []byte) (*SimilarQuery, error) {
	var b similarBody
	if err := decodeStrict(body, &b, "similar"); err != nil {
		return nil, err
	}
	if b.SeedID == nil {
		return nil, badRequest("seed_id is required in a JSON request (or upload the seed as multipart/form-data or an audio/* body)")
	}
	if err := checkID("seed_id", *b.SeedID); err != nil {
		return nil, err
	}
	q := &SimilarQuery{}
	r := &q.Request
	r.SeedID = *b.SeedID
	var err error
	if r.Instrument, err = optionalInstrument(b.Instrument); err != nil {
		return nil, err
	}
	if r.Embedder, err = optionalEmbedder(b.Embedder); err != nil {
		return nil, err
	}
	if r.K, r.Offset, r.MMRLambda, err = pageFromJSON(b.K, b.Offset, b.MMRLambda); err != nil {
		return nil, err
	}
	if b.SeedOffset != nil {
		if err := checkSeedOffset(*b.SeedOffset); err != nil {
			return nil, err
		}
		r.SeedOffset = *b.SeedOffset
	}
	if r.Filter, err = filterFromJSON(b.Filter); err != nil {
		return nil, err
	}
	return q, nil
}

// ParseSimilarForm parses the parameters of an uploaded-seed similar request.
func ParseSimilarForm(q url.Values) (*SimilarQuery, error) {
	if err := checkFields(q, similarFields, filterLists); err != nil {
		return nil, err
	}
	out := &SimilarQuery{}
	r := &out.Request
	var err error
	if v, ok := one(q, "instrument"); ok {
		if r.Instrument, err = checkInstrument("instrument", v); err != nil {
			return nil, err
		}
	}
	if v, ok := one(q, "embedder"); ok {
		if r.Embedder, err = checkEmbedder(v); err != nil {
			return nil, err
		}
	}
	if r.K, r.MMRLambda, r.SeedOffset, err = seedRankParams(q); err != nil {
		return nil, err
	}
	if v, ok := one(q, "offset"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, badRequest("offset %q is not an integer: skip 0 to %d loops", v, recommend.MaxOffset)
		}
		if err := checkOffset(n); err != nil {
			return nil, err
		}
		r.Offset = n
	}
	if r.Filter, err = filterFromParams(q); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseProfile reads a profile request: JSON only, since it names stored loops.
func ParseProfile(r *http.Request) (*ProfileQuery, error) {
	mt, _, err := requestMediaType(r, profileTypes)
	if err != nil {
		return nil, err
	}
	if mt != "application/json" {
		return nil, unsupportedMediaType(mt, profileTypes)
	}
	body, err := jsonBody(r)
	if err != nil {
		return nil, err
	}
	return ParseProfileJSON(body)
}

// ParseProfileJSON parses {"liked", "disliked", "instrument", "to", "dislike_weight",
// "k", "offset", "filter", "mmr_lambda", "embedder"}; liked is required.
func ParseProfileJSON(body []byte) (*ProfileQuery, error) {
	var b profileBody
	if err := decodeStrict(body, &b, "profile"); err != nil {
		return nil, err
	}
	if len(b.Liked) == 0 {
		return nil, badRequest("liked is required and must not be empty: the ids of the stored loops the producer kept (at most %d with disliked)", recommend.MaxProfileLoops)
	}
	if n := len(b.Liked) + len(b.Disliked); n > recommend.MaxProfileLoops {
		return nil, invalidParam("%d liked and disliked loops: a profile takes at most %d; send the most recent ones", n, recommend.MaxProfileLoops)
	}
	for _, id := range b.Liked {
		if err := checkID("liked entry", id); err != nil {
			return nil, err
		}
	}
	for _, id := range b.Disliked {
		if err := checkID("disliked entry", id); err != nil {
			return nil, err
		}
	}
	q := &ProfileQuery{}
	r := &q.Request
	r.Liked, r.Disliked = b.Liked, b.Disliked
	var err error
	if r.Instrument, err = optionalInstrument(b.Instrument); err != nil {
		return nil, err
	}
	if b.To != nil {
		if r.To, err = checkInstrument("to", *b.To); err != nil {
			return nil, err
		}
	}
	if r.Embedder, err = optionalEmbedder(b.Embedder); err != nil {
		return nil, err
	}
	if w := b.DislikeWeight; w != nil {
		if !(*w >= 0 && *w <= 1) {
			return nil, invalidParam("dislike_weight is %v: use 0 to 1 (default %v; 0 ignores the disliked loops)", *w, recommend.DefaultDislikeWeight)
		}
		r.DislikeWeight = w
	}
	if r.K, r.Offset, r.MMRLambda, err = pageFromJSON(b.K, b.Offset, b.MMRLambda); err != nil {
		return nil, err
	}
	if r.Filter, err = filterFromJSON(b.Filter); err != nil {
		return nil, err
	}
	return q, nil
}

func optionalInstrument(v *string) (string, error) {
	if v == nil {
		return "", nil
	}
	return checkInstrument("instrument", *v)
}

func optionalEmbedder(v *string) (string, error) {
	if v == nil {
		return "", nil
	}
	return checkEmbedder(*v)
}

// checkEmbedder checks an embedder name's form; whether the bundle and the library have
// it is the engine's to say.
func checkEmbedder(v string) (string, error) {
	v = strings.TrimSpace(v)
	if !loopid.ValidInstrument(v) { // the same rule: lower case, digits and _, a letter first
		return "", badRequest("embedder %q is not an embedder name: use latent (the default) or one the bundle has, such as musicnn_vgg (GET /v1/health lists them)", clip(v))
	}
	return v, nil
}

// pageFromJSON checks k, offset and mmr_lambda of a JSON body (0 for each one absent).
func pageFromJSON(k, offset *int, lambda *float64) (int, int, float64, error) {
	var outK, outOff int
	var outL float64
	if k != nil {
		if err := checkK(*k); err != nil {
			return 0, 0, 0, err
		}
		outK = *k
	}
	if offset != nil {
		if err := checkOffset(*offset); err != nil {
			return 0, 0, 0, err
		}
		outOff = *offset
	}
	if lambda != nil {
		if err := checkLambda(*lambda); err != nil {
			return 0, 0, 0, err
		}
		outL = *lambda
	}
	return outK, outOff, outL, nil
}

func checkOffset(n int) error {
	if n < 0 || n > recommend.MaxOffset {
		return invalidParam("offset is %d: skip 0 to %d loops (the next page's offset is this one's plus k)", n, recommend.MaxOffset)
	}
	return nil
}
