package query

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestWebPage serves the page and every file it refers to, with the content types a
// browser needs to run them (a module script served as text/plain is refused).
func TestWebPage(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), nil)
	code, h, page := f.do("GET", "/", "", nil)
	if code != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", code, h.Get("Content-Type"))
	}
	if !strings.HasPrefix(string(page), "<!doctype html>") || !strings.Contains(string(page), `<script type="module" src="/assets/app.js">`) {
		t.Errorf("GET / is not the page:\n%.300s", page)
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("ETag") == "" {
		t.Errorf("headers: %v", h)
	}

	// Every file the page and its modules refer to, followed transitively.
	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	ref := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"|from "\./([^"]+)"`)
	queue := []string{string(page)}
	seen := map[string]bool{}
	for len(queue) > 0 {
		text := queue[0]
		queue = queue[1:]
		for _, m := range ref.FindAllStringSubmatch(text, -1) {
			p := m[1]
			if p == "" {
				p = "/assets/" + m[2]
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			code, h, body := f.do("GET", p, "", nil)
			if code != 200 || h.Get("Content-Type") != want[filepath.Ext(p)] || len(body) == 0 {
				t.Errorf("GET %s: %d %q (%d bytes), want 200 %q", p, code, h.Get("Content-Type"), len(body), want[filepath.Ext(p)])
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Cache-Control") != "no-cache" {
				t.Errorf("GET %s headers: %v", p, h)
			}
			if strings.HasSuffix(p, ".js") {
				queue = append(queue, string(body))
			}
		}
	}
	for _, p := range []string{"/assets/app.js", "/assets/player.js", "/assets/api.js", "/assets/wave.js", "/assets/app.css", "/assets/favicon.svg"} {
		if !seen[p] {
			t.Errorf("the page never refers to %s", p)
		}
	}

	// Revalidation by ETag, and HEAD.
	_, h, _ = f.do("GET", "/assets/app.js", "", nil)
	code, _, body := f.do("GET", "/assets/app.js", "", nil, "If-None-Match", h.Get("ETag"))
	if code != 304 || len(body) != 0 {
		t.Errorf("If-None-Match: %d with %d bytes, want 304", code, len(body))
	}
	code, h, body = f.do("HEAD", "/", "", nil)
	if code != 200 || len(body) != 0 || h.Get("Content-Length") != fmt.Sprint(len(page)) {
		t.Errorf("HEAD /: %d, %d bytes, Content-Length %q", code, len(body), h.Get("Content-Length"))
	}

	// Nothing outside the embedded assets, and never a directory listing.
	for _, p := range []string{"/assets/nope.js", "/assets/..%2fweb.go", "/assets/%2e%2e%2fserver.go", "/assets/", "/index.html", "/web/index.html"} {
		code, h, body := f.do("GET", p, "", nil)
		if code != 404 && code != 301 && code != 307 {
			t.Errorf("GET %s: %d, want 404", p, code)
		}
		if code == 404 {
			checkProblem(t, code, h, body, 404)
		}
		if strings.Contains(string(body), "package query") {
			t.Errorf("GET %s served source code", p)
		}
	}
	code, h, body = f.do("POST", "/", "text/plain", strings.NewReader("x"))
	checkProblem(t, code, h, body, 405)
}

// getListing fetches one GET /v1/loops/{instrument} answer.
func getListing(t *testing.T, f *fixture, inst, query string) ListResponse {
	t.Helper()
	code, _, body := f.do("GET", "/v1/loops/"+inst+"?"+query, "", nil)
	if code != 200 {
		t.Fatalf("GET /v1/loops/%s?%s: %d %s", inst, query, code, body)
	}
	var r ListResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("listing does not parse: %v: %s", err, body)
	}
	return r
}

func TestListLoops(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			dir := t.TempDir()
			lib := writeLibrary(t, dir, 7, 11)
			f := newFixture(t, be, lib)
			ids := func(r ListResponse) []string {
				var out []string
				for _, l := range r.Loops {
					out = append(out, l.ID)
				}
				return out
			}
			// The reference: the library itself, filtered here.
			expect := func(keep func(loopFile) bool) []string {
				var out []string
				for _, l := range lib {
					if l.inst == "drum" && keep(l) {
						out = append(out, l.id)
					}
				}
				sort.Strings(out)
				return out
			}

			// Paging through everything: id order, no loop twice, none missed.
			var all []string
			offset := 0
			for page := 0; ; page++ {
				r := getListing(t, f, "drum", fmt.Sprintf("limit=3&offset=%d", offset))
				if r.Instrument != "drum" || r.Limit != 3 || r.Offset != offset || len(r.Loops) > 3 {
					t.Fatalf("page %d header: %+v", page, r)
				}
				all = append(all, ids(r)...)
				if r.NextOffset == nil {
					break
				}
				if *r.NextOffset != offset+3 || len(r.Loops) != 3 {
					t.Fatalf("next_offset %d after offset %d with %d loops", *r.NextOffset, offset, len(r.Loops))
				}
				offset = *r.NextOffset
			}
			if want := expect(func(loopFile) bool { return true }); !slices.Equal(all, want) {
				t.Fatalf("paged listing:\n got %v\nwant %v", all, want)
			}

			// Fields: the file's name, never its folder.
			r := getListing(t, f, "drum", "limit=500")
			byID := map[string]loopFile{}
			for _, l := range lib {
				byID[l.id] = l
			}
			for _, l := range r.Loops {
				src := byID[l.ID]
				if l.Name != filepath.Base(src.path) || l.Pack != src.pack || l.Key != src.key || l.BPM != src.bpm || l.Instrument != "drum" ||
					l.AudioURL != "/v1/loops/drum/"+l.ID+"/audio" || l.Duration <= 0 {
					t.Errorf("loop %+v, library %+v", l, src)
				}
			}
			if _, _, raw := f.do("GET", "/v1/loops/drum?limit=500", "", nil); strings.Contains(string(raw), dir) {
				t.Errorf("the listing shows the server's folder %s", dir)
			}

			for _, tc := range []struct {
				query string
				keep  func(loopFile) bool
			}{
				{"pack=Pack03", func(l loopFile) bool { return l.pack == "Pack03" }},
				{"pack=Pack03,Pack05", func(l loopFile) bool { return l.pack == "Pack03" || l.pack == "Pack05" }},
				{"pack=Pack03&pack=Pack05", func(l loopFile) bool { return l.pack == "Pack03" || l.pack == "Pack05" }},
				{"key=a+minor", func(l loopFile) bool { return l.key == "Am" }},
				{"key=Am&key=C", func(l loopFile) bool { return l.key == "Am" || l.key == "C" }},
				{"min_bpm=100&max_bpm=110", func(l loopFile) bool { return l.bpm >= 100 && l.bpm <= 110 }},
				{"min_bpm=111", func(l loopFile) bool { return l.bpm >= 111 }},
				{"q=pack02", func(l loopFile) bool { return l.pack == "Pack02" }},
				{"q=" + url.QueryEscape("DRUM_1 pack04"), func(l loopFile) bool { return l.pack == "Pack04" && strings.HasSuffix(l.path, "drum_1.wav") }},
				{"q=" + lib[0].id[:10], func(l loopFile) bool { return strings.HasPrefix(l.id, lib[0].id[:10]) }},
				{"q=nothing-like-this", func(loopFile) bool { return false }},
				{"q=pack0&key=C&max_bpm=100", func(l loopFile) bool { return l.key == "C" && l.bpm <= 100 }},
			} {
				r := getListing(t, f, "drum", tc.query+"&limit=500")
				if got, want := ids(r), expect(tc.keep); !slices.Equal(got, want) {
					t.Errorf("%s:\n got %v\nwant %v", tc.query, got, want)
				}
				if r.NextOffset != nil {
					t.Errorf("%s: next_offset %d on the last page", tc.query, *r.NextOffset)
				}
			}
			// A filtered listing pages too.
			p1 := getListing(t, f, "drum", "q=pack0&limit=2")
			p2 := getListing(t, f, "drum", "q=pack0&limit=2&offset=2")
			if got, want := append(ids(p1), ids(p2)...), expect(func(loopFile) bool { return true })[:4]; !slices.Equal(got, want) {
				t.Errorf("filtered pages: %v, want %v", got, want)
			}
			if bass := getListing(t, f, "bass", "limit=500"); len(bass.Loops) != len(expect(func(loopFile) bool { return true })) || bass.Loops[0].Instrument != "bass" {
				t.Errorf("bass listing: %d loops", len(bass.Loops))
			}

			// Recommendations carry the file name the page shows.
			code, rec, raw := f.recommendJSON(fmt.Sprintf(`{"seed_id": %q, "k": 3}`, f.find("drum", 0).id))
			if code != 200 || len(rec.Results) != 3 {
				t.Fatalf("recommend: %d %s", code, raw)
			}
			for _, x := range rec.Results {
				if x.Name != filepath.Base(byID[x.ID].path) {
					t.Errorf("result %s name %q, want %q", x.ID, x.Name, filepath.Base(byID[x.ID].path))
				}
			}
		})
	}
}

func TestListLoopsEmptyAndErrors(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), nil)
	if r := getListing(t, f, "drum", ""); len(r.Loops) != 0 || r.Loops == nil || r.Limit != defaultListLimit || r.NextOffset != nil {
		t.Errorf("nothing ingested: %+v, want an empty list", r)
	}
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/v1/loops/piano", 404},
		{"/v1/loops/Drum", 400},
		{"/v1/loops/drum?limit=0", 400},
		{"/v1/loops/drum?limit=501", 400},
		{"/v1/loops/drum?limit=ten", 400},
		{"/v1/loops/drum?limit=1&limit=2", 400},
		{"/v1/loops/drum?offset=-1", 400},
		{"/v1/loops/drum?offset=100001", 400},
		{"/v1/loops/drum?min_bpm=fast", 400},
		{"/v1/loops/drum?min_bpm=1000", 400},
		{"/v1/loops/drum?min_bpm=130&max_bpm=120", 422},
		{"/v1/loops/drum?key=H", 422},
		{"/v1/loops/drum?key=" + strings.Repeat("A", 33), 400},
		{"/v1/loops/drum?pack=" + strings.Repeat("p", 201), 400},
		{"/v1/loops/drum?pack=%01x", 422},
		{"/v1/loops/drum?q=" + strings.Repeat("q", 201), 400},
		{"/v1/loops/drum?q=a%00b", 400},
		{"/v1/loops/drum?q=a&q=b", 400},
		{"/v1/loops/drum?sort=name", 400},
		{"/v1/loops/drum?min_bpm=NaN", 400},
	} {
		code, h, body := f.do("GET", tc.path, "", nil)
		if code != tc.want {
			t.Errorf("GET %s:", tc.path)
		}
		checkProblem(t, code, h, body, tc.want)
	}
}

func TestParseListLoops(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  ListQuery
	}{
		{"", ListQuery{Limit: defaultListLimit}},
		{"q=+House++MAIN+&limit=7&offset=3", ListQuery{Terms: []string{"house", "main"}, Limit: 7, Offset: 3}},
		{"pack=A,B&pack=C&key=f%23m,Bb", ListQuery{Packs: []string{"A", "B", "C"}, Keys: []string{"F#m", "Bb"}, Limit: defaultListLimit}},
		{"min_bpm=90.5&max_bpm=0", ListQuery{MinBPM: 90.5, Limit: defaultListLimit}},
	} {
		q, _ := url.ParseQuery(tc.query)
		got, err := ParseListLoops(q)
		if err != nil {
			t.Errorf("%q: %v", tc.query, err)
			continue
		}
		if fmt.Sprint(*got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.query, *got, tc.want)
		}
	}
}
