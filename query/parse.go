package query

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// RecommendQuery is a parsed POST /v1/recommend: the engine request, the raw seed
// upload (decoded by the handler, which knows the bundle's rate), and the preview flag.
type RecommendQuery struct {
	Request recommend.Request
	// Upload is the seed file's bytes when the seed was uploaded.
	Upload  []byte
	Preview bool
}

// recommendBody is the JSON form of a recommend request. Pointers tell "absent" from
// zero, so k: 0 is an error rather than the default.
type recommendBody struct {
	SeedID    *string     `json:"seed_id"`
	From      *string     `json:"from"`
	To        *string     `json:"to"`
	K         *int        `json:"k"`
	Filter    *filterBody `json:"filter"`
	MMRLambda *float64    `json:"mmr_lambda"`
	Preview   *bool       `json:"preview"`
	Rerank    *bool       `json:"rerank"`
	RerankN   *int        `json:"rerank_n"`
	// Hub turns the first stage's hubness correction on or off.
	Hub *bool `json:"hub"`
	// SeedOffset chooses a long seed loop's window (seconds into it).
	SeedOffset *float64 `json:"seed_offset"`
}

type filterBody struct {
	MinBPM          *float64 `json:"min_bpm"`
	MaxBPM          *float64 `json:"max_bpm"`
	Keys            []string `json:"keys"`
	Packs           []string `json:"packs"`
	ExcludePacks    []string `json:"exclude_packs"`
	ExcludeSeedPack *bool    `json:"exclude_seed_pack"`
	// ExcludeAnomalous leaves out loops flagged anomalous.
	ExcludeAnomalous *bool `json:"exclude_anomalous"`
	// The compatibility filters (filter_parse.go).
	Tempo             *tempoBody     `json:"tempo"`
	KeyCompat         *keyCompatBody `json:"key_compat"`
	IncludeUnknownBPM *bool          `json:"include_unknown_bpm"`
	IncludeUnknownKey *bool          `json:"include_unknown_key"`
}

// Bounds of a request's lists and strings.
const (
	maxListItems = 100
	maxPackLen   = 200
	maxBPM       = 999
)

// ParseRecommend reads a recommend request from JSON, multipart/form-data (part
// "audio" plus form fields) or a raw audio body (parameters in the query string).
// maxUpload bounds the seed file. Errors are *apiError with the status to answer.
func ParseRecommend(r *http.Request, maxUpload int64) (*RecommendQuery, error) {
	how := "upload the seed loop as the form file \"audio\" (for a stored seed send JSON with seed_id)"
	return uploadRoute[*RecommendQuery]{recommendTypes, 32, "the seed loop", how, ParseRecommendJSON, ParseRecommendForm,
		func(q *RecommendQuery, b []byte) { q.Upload = b }}.parse(r, maxUpload)
}

// ParseRecommendJSON parses the JSON body of a recommend request. Unknown fields are
// errors: a misspelt filter must not silently filter nothing.
func ParseRecommendJSON(body []byte) (*RecommendQuery, error) {
	var b recommendBody
	if err := decodeStrict(body, &b, "recommend"); err != nil {
		return nil, err
	}
	rq := &RecommendQuery{}
	r := &rq.Request
	if b.SeedID == nil {
		return nil, &apiError{http.StatusBadRequest, "invalid-request", "seed_id is required in a JSON request (or upload the seed as multipart/form-data or an audio/* body)"}
	}
	if err := checkID("seed_id", *b.SeedID); err != nil {
		return nil, err
	}
	r.SeedID = *b.SeedID
	var err error
	if b.From != nil {
		if r.From, err = checkInstrument("from", *b.From); err != nil {
			return nil, err
		}
	}
	if b.To != nil {
		if r.To, err = checkInstrument("to", *b.To); err != nil {
			return nil, err
		}
	}
	if b.K != nil {
		if err := checkK(*b.K); err != nil {
			return nil, err
		}
		r.K = *b.K
	}
	if b.MMRLambda != nil {
		if err := checkLambda(*b.MMRLambda); err != nil {
			return nil, err
		}
		r.MMRLambda = *b.MMRLambda
	}
	if b.Preview != nil {
		rq.Preview = *b.Preview
	}
	if b.Rerank != nil {
		on := *b.Rerank
		r.Rerank = &on
	}
	if b.RerankN != nil {
		if err := checkRerankN(*b.RerankN); err != nil {
			return nil, err
		}
		r.RerankN = *b.RerankN
	}
	if b.Hub != nil {
		on := *b.Hub
		r.Hub = &on
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
	return rq, nil
}

// filterFromJSON checks the JSON filter every ranked route takes (nil: none).
func filterFromJSON(f *filterBody) (recommend.Filter, error) {
	var out recommend.Filter
	if f == nil {
		return out, nil
	}
	var err error
	if f.MinBPM != nil {
		out.MinBPM = *f.MinBPM
	}
	if f.MaxBPM != nil {
		out.MaxBPM = *f.MaxBPM
	}
	if err := checkBPM(out.MinBPM, out.MaxBPM); err != nil {
		return out, err
	}
	if out.Keys, err = checkKeys(f.Keys); err != nil {
		return out, err
	}
	if out.Packs, err = checkPacks("packs", f.Packs); err != nil {
		return out, err
	}
	if out.ExcludePacks, err = checkPacks("exclude_packs", f.ExcludePacks); err != nil {
		return out, err
	}
	if f.ExcludeSeedPack != nil {
		out.ExcludeSeedPack = *f.ExcludeSeedPack
	}
	out.ExcludeAnomalous = f.ExcludeAnomalous != nil && *f.ExcludeAnomalous
	if out.Tempo, err = tempoFromJSON(f.Tempo); err != nil {
		return out, err
	}
	if out.KeyCompat, err = keyCompatFromJSON(f.KeyCompat); err != nil {
		return out, err
	}
	out.IncludeUnknownBPM = f.IncludeUnknownBPM != nil && *f.IncludeUnknownBPM
	out.IncludeUnknownKey = f.IncludeUnknownKey != nil && *f.IncludeUnknownKey
	return out, checkFilter(out)
}

// recommendFields are the parameters an uploaded seed may carry (query string or form
// fields); recommendLists may repeat.
var (
	recommendFields = append([]string{"from", "to", "k", "mmr_lambda", "preview", "rerank", "rerank_n", "hub", "seed_offset"}, filterFields...)
	recommendLists  = filterLists
)

const recommendTypes = "application/json (seed_id), multipart/form-data (part \"audio\") or audio/* (raw file: audio/wav, audio/flac, audio/ogg, audio/aiff)"

// ParseRecommendForm parses the parameters of an uploaded-seed request. Lists are
// repeated fields or comma-separated values.
func ParseRecommendForm(q url.Values) (*RecommendQuery, error) {
	if err := checkFields(q, recommendFields, recommendLists); err != nil {
		return nil, err
	}
	rq := &RecommendQuery{}
	r := &rq.Request
	var err error
	if v, ok := one(q, "from"); ok {
		if r.From, err = checkInstrument("from", v); err != nil {
			return nil, err
		}
	}
	if v, ok := one(q, "to"); ok {
		if r.To, err = checkInstrument("to", v); err != nil {
			return nil, err
		}
	}
	if r.K, r.MMRLambda, r.SeedOffset, err = seedRankParams(q); err != nil {
		return nil, err
	}
	if rq.Preview, err = boolParam(q, "preview"); err != nil {
		return nil, err
	}
	if r.Filter, err = filterFromParams(q); err != nil {
		return nil, err
	}
	if _, ok := q["rerank"]; ok {
		on, err := boolParam(q, "rerank")
		if err != nil {
			return nil, err
		}
		r.Rerank = &on
	}
	if v, ok := one(q, "rerank_n"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, badRequest("rerank_n %q is not an integer: rescore 1 to %d of the cosine search's best", v, recommend.MaxRerankN)
		}
		if err := checkRerankN(n); err != nil {
			return nil, err
		}
		r.RerankN = n
	}
	if _, ok := q["hub"]; ok {
		on, err := boolParam(q, "hub")
		if err != nil {
			return nil, err
		}
		r.Hub = &on
	}
	return rq, nil
}

// filterFields are the form and query-string names of the filter every ranked route
// takes; filterLists may repeat.
var (
	filterFields = append([]string{"min_bpm", "max_bpm", "key", "pack", "exclude_pack", "exclude_seed_pack", "exclude_anomalous"}, compatFields...)
	filterLists  = []string{"key", "pack", "exclude_pack"}
)

// filterFromParams checks the filter of form fields or a query string.
func filterFromParams(q url.Values) (recommend.Filter, error) {
	var f recommend.Filter
	var err error
	if f.MinBPM, err = floatParam(q, "min_bpm"); err != nil {
		return f, err
	}
	if f.MaxBPM, err = floatParam(q, "max_bpm"); err != nil {
		return f, err
	}
	if err := checkBPM(f.MinBPM, f.MaxBPM); err != nil {
		return f, err
	}
	if f.Keys, err = checkKeys(splitList(q["key"])); err != nil {
		return f, err
	}
	if f.Packs, err = checkPacks("pack", splitList(q["pack"])); err != nil {
		return f, err
	}
	if f.ExcludePacks, err = checkPacks("exclude_pack", splitList(q["exclude_pack"])); err != nil {
		return f, err
	}
	if f.ExcludeSeedPack, err = boolParam(q, "exclude_seed_pack"); err != nil {
		return f, err
	}
	if f.ExcludeAnomalous, err = boolParam(q, "exclude_anomalous"); err != nil {
		return f, err
	}
	if err := compatFromParams(q, &f, true); err != nil {
		return f, err
	}
	return f, checkFilter(f)
}

// seedRankParams reads k, mmr_lambda and seed_offset of form fields or a query string
// (0 for each one absent).
func seedRankParams(q url.Values) (k int, lambda, seedOffset float64, err error) {
	if v, ok := one(q, "k"); ok {
		if k, err = strconv.Atoi(v); err != nil {
			return 0, 0, 0, badRequest("k %q is not an integer: ask for 1 to %d loops", v, recommend.MaxK)
		}
		if err := checkK(k); err != nil {
			return 0, 0, 0, err
		}
	}
	if _, ok := q["mmr_lambda"]; ok {
		if lambda, err = floatParam(q, "mmr_lambda"); err != nil {
			return 0, 0, 0, err
		}
		if err := checkLambda(lambda); err != nil {
			return 0, 0, 0, err
		}
	}
	if seedOffset, err = floatParam(q, "seed_offset"); err != nil {
		return 0, 0, 0, err
	}
	return k, lambda, seedOffset, checkSeedOffset(seedOffset)
}

func checkK(k int) error {
	if k < 1 || k > recommend.MaxK {
		return invalidParam("k is %d: ask for 1 to %d loops", k, recommend.MaxK)
	}
	return nil
}

func checkRerankN(n int) error {
	if n < 1 || n > recommend.MaxRerankN {
		return invalidParam("rerank_n is %d: rescore 1 to %d of the cosine search's best (default: the bundle's, usually %d), or leave it out", n, recommend.MaxRerankN, recommend.DefaultRerankN)
	}
	return nil
}

func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func floatParam(q url.Values, name string) (float64, error) {
	v, ok := one(q, name)
	if !ok {
		return 0, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, badRequest("%s %q is not a number", name, v)
	}
	return f, nil
}

func boolParam(q url.Values, name string) (bool, error) {
	v, ok := one(q, name)
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s %q is not true or false", name, v)
	}
	return b, nil
}

func invalidParam(format string, a ...any) *apiError {
	return &apiError{http.StatusUnprocessableEntity, "invalid-parameters", fmt.Sprintf(format, a...)}
}

func checkID(field, id string) error {
	if !loopid.ValidID(id) {
		return badRequest("%s %q is not a loop id: ids are 32 lower-case hex characters (the start of the file's sha256), as listed in recommend results", field, clip(id))
	}
	return nil
}

func checkInstrument(field, v string) (string, error) {
	v = strings.TrimSpace(v)
	if !loopid.ValidInstrument(v) {
		return "", badRequest("%s %q is not an instrument name: use lower-case names such as drum or bass", field, clip(v))
	}
	return v, nil
}

func checkLambda(l float64) error {
	if math.IsNaN(l) || l <= 0 || l > 1 {
		return invalidParam("mmr_lambda is %v: use a value in (0, 1] (1 = pure relevance, lower = more diverse), or leave it out", l)
	}
	return nil
}

// maxSeedOffset bounds seed_offset by the longest audio a decoder accepts (10 min).
const maxSeedOffset = 600

func checkSeedOffset(v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v >= maxSeedOffset {
		return invalidParam("seed_offset is %v: give the seconds into the seed loop where its window starts, 0 <= seed_offset < %d (0, the default, is the first window)", v, maxSeedOffset)
	}
	return nil
}

func checkBPM(lo, hi float64) error {
	if lo < 0 || hi < 0 || lo > maxBPM || hi > maxBPM {
		return invalidParam("BPM bounds must be between 0 and %d (0 = unbounded); got min_bpm %v, max_bpm %v", maxBPM, lo, hi)
	}
	if hi > 0 && lo > hi {
		return invalidParam("min_bpm %v is above max_bpm %v: swap them", lo, hi)
	}
	return nil
}

// checkKeys normalises keys to the stored spelling ("a minor" -> "Am"), so a filter
// matches what ingest wrote.
func checkKeys(keys []string) ([]string, error) {
	if len(keys) > maxListItems {
		return nil, invalidParam("%d keys: give at most %d", len(keys), maxListItems)
	}
	var out []string
	for _, k := range keys {
		if len(k) > 32 {
			return nil, invalidParam("key %q is not a musical key: write e.g. Am, F#m, Bb", clip(k))
		}
		n, err := loopid.NormalizeKey(k)
		if err != nil || n == "" {
			return nil, invalidParam("key %q is not a musical key: write e.g. Am, F#m, Bb, \"C major\" or 8A", clip(k))
		}
		out = append(out, n)
	}
	return out, nil
}

func checkPacks(field string, packs []string) ([]string, error) {
	if len(packs) > maxListItems {
		return nil, invalidParam("%s has %d entries: give at most %d", field, len(packs), maxListItems)
	}
	for _, p := range packs {
		if p == "" || len(p) > maxPackLen || !utf8.ValidString(p) || strings.IndexFunc(p, unicode.IsControl) >= 0 {
			return nil, invalidParam("%s entry %q is not a pack name: 1 to %d printable characters", field, clip(p), maxPackLen)
		}
	}
	return packs, nil
}

// clip keeps echoed input short in error messages.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
