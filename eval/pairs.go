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
	"strings"

	"github.com/loopmatch/loopmatch/vectordb"
)

// Pairs are right answers from a file: (seed, target) rows, each loop named by its id or
// by the path of its file. They replace "same pack" as the ground truth.
type Pairs struct {
	source string
	base   string
	refs   []PairRef
	// IDOf identifies a file that no stored row lists by path (a library ingested from
	// another folder): the loop id of its content. Optional.
	IDOf func(path string) (string, error)
}

// PairRef is one row of a pairs file as written: ids or paths.
type PairRef struct {
	Seed, Target string
	Line         int
}

// maxPairsLine bounds one JSONL line, so a wrong file cannot eat memory.
const maxPairsLine = 1 << 16

// Column names accepted for the seed and the target, in CSV headers and JSONL keys.
var (
	seedNames   = []string{"seed", "seed_id", "seed_path"}
	targetNames = []string{"target", "target_id", "target_path"}
)

// LoadPairs reads a pairs file: CSV with a header naming a seed column (seed, seed_id or
// seed_path) and a target column (target, target_id or target_path), or JSONL with one
// {"seed": ..., "target": ...} object per line. Relative paths are relative to the file's
// folder.
func LoadPairs(path string) (*Pairs, error) {
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
	refs, err := ParsePairs(f, format)
	if err != nil {
		return nil, fmt.Errorf("pairs file %s: %w", path, err)
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("pairs file %s lists no pairs: one row per (seed, target) pair", path)
	}
	return &Pairs{source: path, base: filepath.Dir(path), refs: refs}, nil
}

// ParsePairs reads pairs in format "csv" or "jsonl" (see LoadPairs).
func ParsePairs(r io.Reader, format string) ([]PairRef, error) {
	switch format {
	case "csv":
		return parsePairsCSV(r)
	case "jsonl":
		return parsePairsJSONL(r)
	}
	return nil, fmt.Errorf("pairs format %q: use csv or jsonl", format)
}

func parsePairsCSV(r io.Reader) ([]PairRef, error) {
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

func parsePairsJSONL(r io.Reader) ([]PairRef, error) {
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

// resolve maps the refs onto the selected loops: truth[seed id][target id]. used counts
// distinct pairs whose two loops are selected; unresolved the rows that are not.
func (p *Pairs) resolve(seeds, targets []vectordb.Row) (truth map[string]map[string]bool, used, unresolved int) {
	seedOf, targetOf := rowIndex(seeds), rowIndex(targets)
	truth = map[string]map[string]bool{}
	for _, r := range p.refs {
		s, okS := p.lookup(seedOf, r.Seed)
		t, okT := p.lookup(targetOf, r.Target)
		if !okS || !okT {
			unresolved++
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
	return truth, used, unresolved
}

type index struct{ byID, byPath map[string]string }

func rowIndex(rows []vectordb.Row) index {
	ix := index{byID: make(map[string]string, len(rows)), byPath: make(map[string]string, len(rows))}
	for _, r := range rows {
		ix.byID[r.ID] = r.ID
		if r.Path != "" {
			ix.byPath[cleanAbs(r.Path)] = r.ID
		}
	}
	return ix
}

// lookup names a loop by id, by the path it was ingested from, or by its content.
func (p *Pairs) lookup(ix index, v string) (string, bool) {
	if id, ok := ix.byID[v]; ok {
		return id, true
	}
	path := v
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.base, path)
	}
	path = cleanAbs(path)
	if id, ok := ix.byPath[path]; ok {
		return id, true
	}
	if p.IDOf != nil {
		if id, err := p.IDOf(path); err == nil {
			if _, ok := ix.byID[id]; ok {
				return id, true
			}
		}
	}
	return "", false
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
