package query

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Bounds of GET /v1/loops/{instrument}.
const (
	defaultListLimit = 50
	maxListLimit     = 500
	maxListOffset    = 100000
	maxListQuery     = 200
	// listPage is how many rows one store.List call reads while filtering.
	listPage = 1000
)

// ListQuery is a parsed GET /v1/loops/{instrument}: which stored loops to show.
type ListQuery struct {
	// Terms must all occur (case-insensitively) in a loop's name, pack or key.
	Terms          []string
	Packs, Keys    []string
	MinBPM, MaxBPM float64
	Limit, Offset  int
	// The compatibility filters: a tempo match (half and double time) and a key
	// compatibility mode, with their references given (a listing has no seed), and
	// whether loops of unknown tempo or key pass.
	Tempo                                *recommend.TempoMatch
	KeyCompat                            *recommend.KeyMatch
	IncludeUnknownBPM, IncludeUnknownKey bool
	// Anomalous, when set, keeps only loops flagged anomalous (true) or only loops not
	// flagged (false; loops never scored included).
	Anomalous *bool
	// Kinds keeps one-shots of these kinds (loopid.Kinds, or loopid.UnknownKind).
	Kinds []string
}

// listFields are the parameters of GET /v1/loops/{instrument}.
var listFields = map[string]bool{"q": true, "pack": true, "key": true, "min_bpm": true, "max_bpm": true, "limit": true, "offset": true,
	"tempo": true, "tempo_tolerance_pct": true, "half_double": true, "key_compat": true, "key_compat_key": true,
	"include_unknown_bpm": true, "include_unknown_key": true, "anomalous": true, "kind": true}

// ParseListLoops parses the query string of GET /v1/loops/{instrument}. Lists (pack,
// key) are repeated or comma-separated, as in a recommend upload. Errors are *apiError.
func ParseListLoops(q url.Values) (*ListQuery, error) {
	for name, vs := range q {
		if !listFields[name] {
			return nil, badRequest("unknown parameter %q: the parameters are q, pack, key, min_bpm, max_bpm, %s, anomalous, kind, limit, offset", clip(name), strings.Join(compatFields, ", "))
		}
		if len(vs) > 1 && name != "key" && name != "pack" && name != "kind" {
			return nil, badRequest("parameter %q is given %d times: give it once", name, len(vs))
		}
	}
	lq := &ListQuery{Limit: defaultListLimit}
	if v, ok := one(q, "q"); ok {
		if len(v) > maxListQuery || !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return nil, badRequest("q %q is not a search text: up to %d printable characters", clip(v), maxListQuery)
		}
		lq.Terms = strings.Fields(strings.ToLower(v))
	}
	var err error
	if lq.Packs, err = checkPacks("pack", splitList(q["pack"])); err != nil {
		return nil, err
	}
	if lq.Keys, err = checkKeys(splitList(q["key"])); err != nil {
		return nil, err
	}
	if lq.MinBPM, err = floatParam(q, "min_bpm"); err != nil {
		return nil, err
	}
	if lq.MaxBPM, err = floatParam(q, "max_bpm"); err != nil {
		return nil, err
	}
	if err := checkBPM(lq.MinBPM, lq.MaxBPM); err != nil {
		return nil, err
	}
	f := recommend.Filter{MinBPM: lq.MinBPM, MaxBPM: lq.MaxBPM, Keys: lq.Keys}
	if err := compatFromParams(q, &f, false); err != nil {
		return nil, err
	}
	if err := checkFilter(f); err != nil {
		return nil, err
	}
	lq.Tempo, lq.KeyCompat, lq.IncludeUnknownBPM, lq.IncludeUnknownKey = f.Tempo, f.KeyCompat, f.IncludeUnknownBPM, f.IncludeUnknownKey
	if _, ok := q["anomalous"]; ok {
		a, err := boolParam(q, "anomalous")
		if err != nil {
			return nil, err
		}
		lq.Anomalous = &a
	}
	for _, k := range splitList(q["kind"]) {
		if !loopid.ValidKind(k) && k != loopid.UnknownKind {
			return nil, invalidParam("kind %q: give one-shot kinds, %s or %s", clip(k), strings.Join(loopid.Kinds, ", "), loopid.UnknownKind)
		}
		if !slices.Contains(lq.Kinds, k) {
			lq.Kinds = append(lq.Kinds, k)
		}
	}
	if lq.Limit, err = intParam(q, "limit", defaultListLimit, 1, maxListLimit); err != nil {
		return nil, err
	}
	if lq.Offset, err = intParam(q, "offset", 0, 0, maxListOffset); err != nil {
		return nil, err
	}
	return lq, nil
}

func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	v, ok := one(q, name)
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest("%s %q is not an integer", name, clip(v))
	}
	if n < lo || n > hi {
		return 0, invalidParam("%s is %d: use %d to %d", name, n, lo, hi)
	}
	return n, nil
}

// loopName is what a person calls a loop: its file's name. The folder stays the
// server's business.
func loopName(path string) string {
	if path == "" {
		return ""
	}
	return filepath.Base(path)
}

// StoreFilter is the listing's filter on stored fields (all but the text terms), its
// references resolved, and what it shows of them.
func (lq *ListQuery) StoreFilter() (vectordb.Filter, recommend.Applied) {
	f := recommend.Filter{MinBPM: lq.MinBPM, MaxBPM: lq.MaxBPM, Keys: lq.Keys, Packs: lq.Packs,
		Tempo: lq.Tempo, KeyCompat: lq.KeyCompat, IncludeUnknownBPM: lq.IncludeUnknownBPM, IncludeUnknownKey: lq.IncludeUnknownKey}
	// ParseListLoops made sure the references are given, so this cannot fail; a
	// ListQuery built by hand without them filters on what it has.
	vf, ap, err := f.Resolve(0, "")
	if err != nil {
		vf, ap = vectordb.Filter{MinBPM: lq.MinBPM, MaxBPM: lq.MaxBPM, Keys: lq.Keys, Packs: lq.Packs, Kinds: lq.Kinds}, recommend.Applied{}
	}
	vf.Kinds = lq.Kinds
	if lq.Anomalous != nil {
		vf.Anomalous = vectordb.NotAnomalous
		if *lq.Anomalous {
			vf.Anomalous = vectordb.OnlyAnomalous
		}
	}
	return vf, ap
}

// Match reports whether a row passes the listing's filters.
func (lq *ListQuery) Match(r *vectordb.Row) bool {
	f, _ := lq.StoreFilter()
	return lq.match(r, f)
}

func (lq *ListQuery) match(r *vectordb.Row, f vectordb.Filter) bool {
	return f.MatchRow(r) && lq.matchTerms(r)
}

func (lq *ListQuery) matchTerms(r *vectordb.Row) bool {
	if len(lq.Terms) == 0 {
		return true
	}
	hay := strings.ToLower(loopName(r.Path) + "\x00" + r.Pack + "\x00" + r.Key + "\x00" + r.ID)
	for _, t := range lq.Terms {
		if !strings.Contains(hay, t) {
			return false
		}
	}
	return true
}

// ListedLoop is one loop of a listing: the stored loop and its file's name.
type ListedLoop struct {
	LoopJSON
	Name string `json:"name"`
}

// ListResponse is the body of GET /v1/loops/{instrument}.
type ListResponse struct {
	Instrument string       `json:"instrument"`
	Loops      []ListedLoop `json:"loops"`
	Offset     int          `json:"offset"`
	Limit      int          `json:"limit"`
	// NextOffset is set when more loops match: ask again with offset=NextOffset.
	NextOffset *int `json:"next_offset,omitempty"`
	// Filter is the tempo and key filter as applied (set when there is one).
	Filter *recommend.Applied `json:"filter,omitempty"`
	// ExcludedUnknown counts loops the tempo or key filter left out because that field
	// is unknown, among the loops this listing read: all of them when next_offset is
	// absent.
	ExcludedUnknown *recommend.ExcludedUnknown `json:"excluded_unknown,omitempty"`
}

// listLoops pages through an instrument's stored loops in id order (the store's
// order, stable across pages) and keeps those that match. It reads only until the
// page is full, so a listing without narrow filters stays cheap on a large library; a
// filter that matches little scans further, bounded by the request's deadline.
func (s *Server) listLoops(c *gin.Context) {
	inst, ok := s.instrumentOf(c)
	if !ok {
		return
	}
	lq, err := ParseListLoops(c.Request.URL.Query())
	if err != nil {
		s.fail(c, err)
		return
	}
	ctx := c.Request.Context()
	coll := s.engine.Collection(inst)
	out := ListResponse{Instrument: inst, Loops: []ListedLoop{}, Offset: lq.Offset, Limit: lq.Limit}
	f, applied := lq.StoreFilter()
	if applied.BPMRanges != nil || applied.Keys != nil {
		out.Filter = &applied
	}
	left := newLeftOut(f)
	skip, after, more := lq.Offset, "", false
scan:
	for {
		if err := ctx.Err(); err != nil {
			s.fail(c, fmt.Errorf("list %s loops: %w", inst, err))
			return
		}
		rows, err := s.engine.Store().List(ctx, coll, after, listPage)
		if errors.Is(err, vectordb.ErrNoCollection) {
			break // nothing ingested yet: an empty listing, not an error
		}
		if err != nil {
			s.fail(c, fmt.Errorf("list %s loops: %w", inst, err))
			return
		}
		if len(rows) == 0 {
			break
		}
		for i := range rows {
			r := &rows[i]
			if !lq.match(r, f) {
				if lq.matchTerms(r) {
					left.count(r)
				}
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if len(out.Loops) == lq.Limit {
				more = true
				break scan
			}
			out.Loops = append(out.Loops, ListedLoop{Name: loopName(r.Path), LoopJSON: LoopJSON{ID: r.ID, Instrument: inst,
				Pack: r.Pack, BPM: r.BPM, Key: r.Key, Duration: r.Duration, SampleRate: r.SampleRate,
				IngestedAt: r.IngestedAt, AudioURL: audioURL(inst, r.ID), Provenance: provenance(r), Health: loopHealth(r)}})
		}
		after = rows[len(rows)-1].ID
	}
	if more {
		n := lq.Offset + len(out.Loops)
		out.NextOffset = &n
	}
	out.ExcludedUnknown = left.counts()
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// leftOut counts, row by row, what a filter leaves out for want of a tempo or key: the
// same rule as the store's count (vectordb.Filter.LeftOutUnknown).
type leftOut struct {
	bpm, key       vectordb.Filter
	hasBPM, hasKey bool
	nBPM, nKey     int
}

func newLeftOut(f vectordb.Filter) *leftOut {
	l := &leftOut{}
	l.bpm, l.hasBPM = f.LeftOutUnknown("bpm")
	l.key, l.hasKey = f.LeftOutUnknown("key")
	return l
}

func (l *leftOut) count(r *vectordb.Row) {
	if l.hasBPM && l.bpm.MatchRow(r) {
		l.nBPM++
	}
	if l.hasKey && l.key.MatchRow(r) {
		l.nKey++
	}
}

func (l *leftOut) counts() *recommend.ExcludedUnknown {
	if !l.hasBPM && !l.hasKey {
		return nil
	}
	var out recommend.ExcludedUnknown
	if l.hasBPM {
		out.BPM = &l.nBPM
	}
	if l.hasKey {
		out.Key = &l.nKey
	}
	return &out
}
