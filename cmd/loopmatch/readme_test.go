package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/eval"
	"github.com/loopmatch/loopmatch/onnx"
)

// bundleIDPattern matches a bundle id as onnx.Bundle.ID writes it (name@version:hash12),
// and bundleHashPattern a bare 12-hex hash after "bundle".
var (
	bundleIDPattern   = regexp.MustCompile("[A-Za-z0-9._-]+@[A-Za-z0-9._+-]+:[0-9a-f]{12}\\b")
	bundleHashPattern = regexp.MustCompile("(?i)bundle[^.\\n]{0,40}?\\b([0-9a-f]{12})\\b")
)

// TestDocsNameTheShippedBundle: every bundle id README.md (and the docs it links) names
// is the id of the bundle the CLI loads by default, so a retrained or new default bundle
// fails here until the figures and ids beside it are regenerated.
func TestDocsNameTheShippedBundle(t *testing.T) {
	root := filepath.Join("..", "..")
	b, err := onnx.LoadBundle(filepath.Join(root, defaultBundle))
	if err != nil {
		t.Fatalf("the default bundle %s: %v", defaultBundle, err)
	}
	want := b.ID()
	hash := want[strings.LastIndexByte(want, ':')+1:]
	docs := []string{"README.md"}
	more, _ := filepath.Glob(filepath.Join(root, "docs", "*", "README.md"))
	for _, m := range more {
		rel, _ := filepath.Rel(root, m)
		docs = append(docs, rel)
	}
	named := 0
	for _, doc := range docs {
		body, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(body), "\n") {
			for _, id := range bundleIDPattern.FindAllString(line, -1) {
				if !strings.HasPrefix(id, b.Name+"@") && !strings.HasPrefix(id, "loopmatch") {
					continue // another project's name@version, not a bundle id
				}
				named++
				if id != want {
					t.Errorf("%s:%d names bundle %s; the default bundle (%s) is %s: re-run what produced the figures beside it and write the new id", doc, i+1, id, defaultBundle, want)
				}
			}
			for _, m := range bundleHashPattern.FindAllStringSubmatch(line, -1) {
				if m[1] != hash && !strings.Contains(line, want) {
					named++
					t.Errorf("%s:%d names bundle hash %s; the default bundle (%s) is %s", doc, i+1, m[1], defaultBundle, want)
				}
			}
		}
	}
	t.Logf("default bundle %s; %d ids in %v", want, named, docs)

	// The generated figures block.
	readme := filepath.Join(root, "README.md")
	body, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := bundleFigures(filepath.Join(root, defaultBundle), want)
	if err != nil {
		t.Fatal(err)
	}
	updated, err := replaceBlock(string(body), "bundle-figures", gen)
	if err != nil {
		t.Fatal(err)
	}
	if updated != string(body) {
		if os.Getenv("LOOPMATCH_UPDATE_DOCS") == "1" {
			if err := os.WriteFile(readme, []byte(updated), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("README.md: bundle-figures regenerated from %s", defaultBundle)
			return
		}
		t.Errorf("README.md's bundle-figures block is not what %s's manifest says; regenerate it: LOOPMATCH_UPDATE_DOCS=1 go test -run TestDocsNameTheShippedBundle ./cmd/loopmatch\nwant:\n%s", defaultBundle, gen)
	}
}

// bundleFigures is README's sentence of training's figures for the bundle's shipped model,
// on the test split and (from v2 on) the transfer split, written from its manifest.
func bundleFigures(dir, id string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return "", err
	}
	var man manifestMetrics
	if err := json.Unmarshal(b, &man); err != nil {
		return "", fmt.Errorf("%s/manifest.json: %w", dir, err)
	}
	model := man.shippedModel()
	sentence := func(metrics map[string]map[string]map[string]eval.Metrics) []string {
		var parts []string
		for _, d := range []string{"drum2bass", "bass2drum"} {
			all, ok1 := metrics[d][eval.SettingAll][model]
			same, ok2 := metrics[d][eval.SettingSameBPM][model]
			if !ok1 || !ok2 {
				continue
			}
			parts = append(parts, fmt.Sprintf("%s (%d seeds) R_mn %.3f, R_md %.3f, Recall@10 %.3f over all candidates, R_mn %.3f / R_md %.3f at the same tempo",
				d, all.Seeds, all.RMean, all.RMedian, all.Recall[10], same.RMean, same.RMedian))
		}
		return parts
	}
	test := sentence(man.Metrics)
	if len(test) == 0 {
		return "", fmt.Errorf("%s/manifest.json records no %s figures for drum2bass or bass2drum: run make models, or generate the block by hand", dir, model)
	}
	out := fmt.Sprintf("bundle `%s`, %s. Test split: %s.", id, model, strings.Join(test, "; "))
	if transfer := sentence(man.MetricsTransfer); len(transfer) > 0 {
		out += fmt.Sprintf(" Transfer split (held-out groove family and sound sets): %s.", strings.Join(transfer, "; "))
	}
	return out, nil
}

// replaceBlock swaps the text between <!-- name: ... --> and <!-- /name --> for body.
func replaceBlock(doc, name, body string) (string, error) {
	open, end := "<!-- "+name+":", "<!-- /"+name+" -->"
	i := strings.Index(doc, open)
	if i < 0 {
		return "", fmt.Errorf("README.md has no %q block", name)
	}
	j := strings.Index(doc[i:], "-->")
	k := strings.Index(doc, end)
	if j < 0 || k < i {
		return "", fmt.Errorf("README.md: the %q block is not closed by %s", name, end)
	}
	start := i + j + len("-->\n")
	return doc[:start] + body + "\n" + doc[k:], nil
}

func TestBundleIDPatterns(t *testing.T) {
	cases := []struct {
		line       string
		ids, hashs int
	}{
		{"mappers of bundle `loopmatch-v1@1.0.0:97ed21b12a69` to within", 1, 0},
		{"bundle id 97ed21b12a69", 0, 1},
		{"loopmatch-v2@2.0.0:0123456789ab and more", 1, 0},
		{"commit 97ed21b12a69 of train", 0, 0},
		{"bundle 97ed21b12a690 (13 hex)", 0, 0},
	}
	for _, c := range cases {
		if got := len(bundleIDPattern.FindAllString(c.line, -1)); got != c.ids {
			t.Errorf("%q: %d ids, want %d", c.line, got, c.ids)
		}
		if got := len(bundleHashPattern.FindAllStringSubmatch(c.line, -1)); got != c.hashs {
			t.Errorf("%q: %d hashes, want %d", c.line, got, c.hashs)
		}
	}
}
