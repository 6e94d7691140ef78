package eval

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/loopmatch/loopmatch/vectordb"
)

// Pairs are right answers from a file: (seed, target) rows, each loop named by its id or
// by the path of its file. They replace "same pack" as the ground truth.
type Pairs struct {
	source   string
	base     string
	from, to string
	refs     []PairRef
	// Roots are further folders a relative path may be relative to (the corpus, the
	// library that was ingested), tried after the pairs file's own folder.
	Roots []string
	// IDOf identifies a file that no stored row lists by path (a library ingested from
	// another folder): the loop id of its content. Optional.
	IDOf func(path string) (string, error)
}

// PairRef is one row of a pairs file as written: ids or paths.
type PairRef struct {
	Seed, Target string
	Line         int
}

// Unmatched is a row of a pairs file that names no evaluated loop, and why.
type Unmatched struct {
	Line   int    `json:"line"`
	Seed   string `json:"seed"`
	Target string `json:"target"`
	Why    string `json:"why"`
}

// maxPairsLine bounds one JSONL line, so a wrong file cannot eat memory.
const maxPairsLine = 1 << 16

// columnNames are the names accepted for the seed and the target column, in CSV headers
// and JSONL keys: seed, seed_id, seed_path or the seed instrument's name (drum), and
// target, target_id, target_path or the target instrument's name (bass). They are
// computed per call from the evaluated direction, so nothing is shared.
func columnNames(from, to string) (seed, target []string) {
	seed = []string{"seed", "seed_id", "seed_path"}
	target = []string{"target", "target_id", "target_path"}
	from, to = strings.ToLower(strings.TrimSpace(from)), strings.ToLower(strings.TrimSpace(to))
	if from != "" && to != "" && from != to && !slices.Contains(target, from) && !slices.Contains(seed, to) {
		seed = append(seed, from, from+"_id", from+"_path")
		target = append(target, to, to+"_id", to+"_path")
	}
	return seed, target
}

// LoadPairs reads a pairs file for the direction from -> to: CSV with a header naming a
// seed column (seed, seed_id, seed_path, or the instrument: drum) and a target column
// (target, target_id, target_path, or the instrument: bass), or JSONL with one
// {"seed": ..., "target": ...} (or {"drum": ..., "bass": ...}) object per line. A
// relative path is relative to the file's folder, then to each of Roots, then to the
// folder any stored loop was ingested from (the stored path that ends with it, when only
// one does).
func LoadPairs(path, from, to string) (*Pairs, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open pairs file: %w", err)
	}
	defer f.Close()
	var format string
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		format = "csv"
	case ".jsonl", ".ndjson", ".json":
		format = "jsonl"
	default:
		return nil, fmt.Errorf("pairs file %s: unknown format: name it .csv or .jsonl", path)
	}
	refs, err := ParsePairs(f, format, from, to)
	if err != nil {
		return nil, fmt.Errorf("pairs file %s: %w", path, err)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("pairs file %s lists no pairs: one row per (seed, target) pair", path)
	}
	return &Pairs{source: path, base: filepath.Dir(path), from: from, to: to, refs: refs}, nil
}

// ParsePairs reads pairs in format "csv" or "jsonl" for the direction from -> to (see
// LoadPairs); from and to may be empty, and then only the seed/target names are known.
func ParsePairs(r io.Reader, format, from, to string) ([]PairRef, error) {
	seedNames, targetNames := columnNames(from, to)
	switch format {
	case "csv":
		return parsePairsCSV(r, seedNames, targetNames)
	case "jsonl":
		return parsePairsJSONL(r, seedNames, targetNames)
	}
	return nil, fmt.Errorf("pairs format %q: use csv or jsonl", format)
}

func parsePairsCSV(r io.Reader, seedNames, targetNames []string) ([]PairRef, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w: the first row must name the columns (seed,target)", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	find := func(names []string) int {
		for _, n := range names {
			if i, ok := col[n]; ok {
				return i
			}
		}
		return -1
	}
	si, ti := find(seedNames), find(targetNames)
	if si < 0 || ti < 0 {
		return nil, fmt.Errorf("header %q: name a seed column (%s) and a target column (%s)", strings.Join(header, ","), strings.Join(seedNames, ", "), strings.Join(targetNames, ", "))
	}
	var out []PairRef
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		get := func(i int) string {
			if i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		p := PairRef{Seed: get(si), Target: get(ti), Line: line}
		if p.Seed == "" || p.Target == "" {
			return nil, fmt.Errorf("line %d: empty seed or target: every row names both loops (id or path)", line)
		}
		out = append(out, p)
	}
}

func parsePairsJSONL(r io.Reader, seedNames, targetNames []string) ([]PairRef, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxPairsLine)
	var out []PairRef
	for line := 1; sc.Scan(); line++ {
		b := strings.TrimSpace(sc.Text())
		if b == "" || strings.HasPrefix(b, "#") {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(b), &obj); err != nil {
			return nil, fmt.Errorf("line %d: %v: each line must be a JSON object like {\"seed\": ID or path, \"target\": ID or path}", line, err)
		}
		pick := func(names []string) (string, error) {
			for _, n := range names {
				if v, ok := obj[n]; ok {
					s, isStr := v.(string)
					if !isStr || strings.TrimSpace(s) == "" {
						return "", fmt.Errorf("line %d: %s must be a non-empty string (a loop id or path)", line, n)
					}
					return strings.TrimSpace(s), nil
				}
			}
			return "", fmt.Errorf("line %d: no %s: each object names a seed and a target", line, strings.Join(names, "/"))
		}
		s, err := pick(seedNames)
		if err != nil {
			return nil, err
		}
		t, err := pick(targetNames)
		if err != nil {
			return nil, err
		}
		out = append(out, PairRef{Seed: s, Target: t, Line: line})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than %d bytes: is this really a JSONL pairs file?", maxPairsLine)
		}
		return nil, err
	}
	return out, nil
}

// resolve maps the refs onto the selected loops: truth[seed id][target id]. all are
// every stored loop of the two collections, so a row naming a loop outside the selection,
// or a loop of the other instrument, says so. used counts distinct pairs whose two loops
// are selected; unmatched lists the rows that are not, in file order.
func (p *Pairs) resolve(seeds, targets, allSeeds, allTargets []vectordb.Row) (truth map[string]map[string]bool, used int, unmatched []Unmatched) {
	seedSide := &side{name: orDefault(p.from, "seed"), column: "seed", sel: idSet(seeds), all: newIndex(allSeeds)}
	targetSide := &side{name: orDefault(p.to, "target"), column: "target", sel: idSet(targets), all: newIndex(allTargets)}
	seedSide.other, targetSide.other = targetSide, seedSide
	truth = map[string]map[string]bool{}
	for _, r := range p.refs {
		s, whyS := p.lookup(seedSide, r.Seed)
		t, whyT := p.lookup(targetSide, r.Target)
		if whyS != "" || whyT != "" {
			unmatched = append(unmatched, Unmatched{Line: r.Line, Seed: r.Seed, Target: r.Target, Why: strings.Join(nonEmpty(whyS, whyT), "; ")})
			continue
		}
		if truth[s] == nil {
			truth[s] = map[string]bool{}
		}
		if !truth[s][t] {
			truth[s][t] = true
			used++
		}
	}
	return truth, used, unmatched
}

// side is one column's loops: the selected ids, an index of every stored loop of its
// collection, and the other column's side (to say "that is a bass loop").
type side struct {
	name, column string
	sel          map[string]bool
	all          *index
	other        *side
}

type index struct {
	byID, byPath map[string]string
	bySuffix     map[string][]string // built on first use
	rows         []vectordb.Row
}

func newIndex(rows []vectordb.Row) *index {
	ix := &index{byID: make(map[string]string, len(rows)), byPath: make(map[string]string, len(rows)), rows: rows}
	for _, r := range rows {
		ix.byID[r.ID] = r.ID
		if r.Path != "" {
			ix.byPath[cleanAbs(r.Path)] = r.ID
		}
	}
	return ix
}

// suffix returns the ids of stored loops whose path ends with rel, whole path
// elements only: rel relative to whatever folder they were ingested from.
func (ix *index) suffix(rel string) []string {
	if ix.bySuffix == nil {
		ix.bySuffix = map[string][]string{}
		for path, id := range ix.byPath {
			for i := len(path) - 1; i > 0; i-- {
				if path[i] == filepath.Separator {
					k := path[i+1:]
					ix.bySuffix[k] = append(ix.bySuffix[k], id)
				}
			}
		}
	}
	return ix.bySuffix[rel]
}

func idSet(rows []vectordb.Row) map[string]bool {
	m := make(map[string]bool, len(rows))
	for _, r := range rows {
		m[r.ID] = true
	}
	return m
}

// lookup names a loop by id, by the path it was ingested from (absolute, or relative to
// the pairs file, a root, or any stored loop's folder), or by its content. On failure it
// says why, for the message that lists unmatched rows.
func (p *Pairs) lookup(s *side, v string) (id, why string) {
	id, where := p.find(s.all, v)
	if id == "" {
		if oid, _ := p.find(s.other.all, v); oid != "" {
			return "", fmt.Sprintf("%s %q is a stored %s loop, not a %s one: swap the columns, or --from and --to", s.column, v, s.other.name, s.name)
		}
		return "", fmt.Sprintf("%s %q: %s", s.column, v, where)
	}
	if !s.sel[id] {
		return "", fmt.Sprintf("%s %q is stored (loop %s) but not among the evaluated %s loops: check --split and the manifest", s.column, v, id, s.name)
	}
	return id, ""
}

// find resolves v in one index; when it fails, where says what was tried.
func (p *Pairs) find(ix *index, v string) (id, where string) {
	if id, ok := ix.byID[v]; ok {
		return id, ""
	}
	var tried []string
	if filepath.IsAbs(v) {
		tried = []string{filepath.Clean(v)}
	} else {
		tried = append(tried, cleanAbs(filepath.Join(p.base, v)))
		for _, root := range p.Roots {
			tried = append(tried, cleanAbs(filepath.Join(root, v)))
		}
	}
	for _, path := range tried {
		if id, ok := ix.byPath[path]; ok {
			return id, ""
		}
	}
	if rel := filepath.Clean(v); !filepath.IsAbs(rel) && !strings.HasPrefix(rel, "..") {
		switch ids := ix.suffix(rel); len(ids) {
		case 0:
		case 1:
			return ids[0], ""
		default:
			slices.Sort(ids)
			return "", fmt.Sprintf("%d stored loops' paths end in %s (%s): give more of the path", len(ids), rel, strings.Join(ids[:min(3, len(ids))], ", "))
		}
	}
	if p.IDOf != nil {
		for _, path := range tried {
			if id, err := p.IDOf(path); err == nil {
				if _, ok := ix.byID[id]; ok {
					return id, ""
				}
				return "", fmt.Sprintf("the file %s (loop id %s) is not stored: ingest it", path, id)
			}
		}
	}
	if isLoopID(v) {
		return "", "no stored loop has this id"
	}
	return "", fmt.Sprintf("no stored loop was ingested from %s, and no stored path ends in it", strings.Join(tried, " or "))
}

// isLoopID: the first 32 hex characters of a file's sha256, as ingest names loops.
func isLoopID(v string) bool {
	if len(v) != 32 {
		return false
	}
	for _, c := range v {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func nonEmpty(vs ...string) []string {
	return slices.DeleteFunc(vs, func(v string) bool { return v == "" })
}

func cleanAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	return filepath.Clean(p)
}

// NewPairs builds Pairs from refs already read; relative paths are relative to base.
func NewPairs(refs []PairRef, base string) *Pairs {
	return &Pairs{source: "pairs", base: base, refs: refs}
}

// FormatUnmatched lists up to n unmatched rows, one per line, for a message.
func FormatUnmatched(u []Unmatched, n int) string {
	var b strings.Builder
	for i, x := range u {
		if i == n {
			fmt.Fprintf(&b, "\n  ... and %d more", len(u)-n)
			break
		}
		fmt.Fprintf(&b, "\n  line %d (%s, %s): %s", x.Line, x.Seed, x.Target, x.Why)
	}
	return b.String()
}
