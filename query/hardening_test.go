package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/recommend"
)

// TestOriginAndHost: state-changing requests from another site are refused (Origin,
// Sec-Fetch-Site) unless their origin is configured; a Host outside the allowlist is
// refused whatever the method; reads and same-origin writes pass.
func TestOriginAndHost(t *testing.T) {
	be := embeddedBackend(t)
	lib := writeLibrary(t, t.TempDir(), 2, 31)
	b, m := bundleModels(t, testBundle)
	uploads := t.TempDir()
	f := newFixture(t, be, lib, func(_ *recommend.Config, s *ServerConfig) {
		s.AllowedHosts = LoopbackHosts()
		s.AllowedOrigins = []string{"https://app.example"}
		s.Ingester = uploadIngester{&ingest.Uploads{Dir: uploads, Config: ingestConfigFor(b, be.store, encodersOf(m))}}
	})
	self := f.srv.URL // http://127.0.0.1:PORT
	seed := fmt.Sprintf(`{"seed_id": %q, "k": 2}`, f.find("drum", 0).id)
	wav, _ := os.ReadFile(f.find("bass", 1).path)
	mpCT, mpBody := form("instrument", "bass", "@file", string(wav))
	cases := []struct {
		name, method, path, ctype, body string
		hdr                             []string
		want                            int
	}{
		{"same-origin POST", "POST", "/v1/recommend", "application/json", seed, []string{"Origin", self, "Sec-Fetch-Site", "same-origin"}, 200},
		{"POST without Origin (not a browser)", "POST", "/v1/recommend", "application/json", seed, nil, 200},
		{"cross-site POST", "POST", "/v1/recommend", "application/json", seed, []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"cross-site upload", "POST", "/v1/loops", mpCT, mpBody.String(), []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"foreign Origin without Sec-Fetch-Site", "POST", "/v1/recommend", "application/json", seed, []string{"Origin", "https://evil.example"}, 403},
		{"null Origin", "POST", "/v1/recommend", "application/json", seed, []string{"Origin", "null"}, 403},
		{"same-site POST", "POST", "/v1/recommend", "application/json", seed, []string{"Sec-Fetch-Site", "same-site"}, 403},
		{"cross-site GET", "GET", "/v1/collections", "", "", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 200},
		{"configured origin POST", "POST", "/v1/recommend", "application/json", seed, []string{"Origin", "https://app.example", "Sec-Fetch-Site", "cross-site"}, 200},
		{"configured origin preflight", "OPTIONS", "/v1/recommend", "", "", []string{"Origin", "https://app.example", "Access-Control-Request-Method", "POST"}, 204},
		{"foreign Host", "GET", "/v1/collections", "", "", []string{"Host", "evil.example"}, 403},
		{"foreign Host with port", "POST", "/v1/recommend", "application/json", seed, []string{"Host", "rebind.evil.example:8080"}, 403},
		{"localhost Host", "GET", "/v1/collections", "", "", []string{"Host", "localhost:8080"}, 200},
		{"IPv6 loopback Host", "GET", "/healthz", "", "", []string{"Host", "[::1]:8080"}, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, h, raw := f.do(c.method, c.path, c.ctype, strings.NewReader(c.body), c.hdr...)
			if c.want >= 400 {
				checkProblem(t, code, h, raw, c.want)
				return
			}
			if code != c.want {
				t.Fatalf("status %d, want %d: %s", code, c.want, raw)
			}
			if strings.HasPrefix(c.name, "configured origin") && h.Get("Access-Control-Allow-Origin") != "https://app.example" {
				t.Errorf("no CORS header for a configured origin: %v", h)
			}
		})
	}
	if n := countFiles(t, uploads); n != 0 {
		t.Errorf("the refused cross-site upload left %d files", n)
	}
}

func encodersOf(m *recommend.Models) map[string]ingestEncoder {
	encs := map[string]ingestEncoder{}
	for k, v := range m.Encoders {
		encs[k] = v
	}
	return encs
}

// countFiles counts regular files under dir, temporary ones included.
func countFiles(t testing.TB, dir string) int {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// TestUploadFailuresAndQuota: a file that fails leaves nothing in the uploads folder
// and says why with a stable code and without server paths; a full folder answers 507
// and stores nothing.
func TestUploadFailuresAndQuota(t *testing.T) {
	be := embeddedBackend(t)
	b, m := bundleModels(t, testBundle)
	good, _ := os.ReadFile(writeLibrary(t, t.TempDir(), 1, 32)[1].path)
	cases := []struct {
		name      string
		quota     int64
		files     []string
		want      int
		wantFiles int
		wantCodes []string
	}{
		{"silent", 0, []string{string(wavOf(t, 1, 0))}, 200, 0, []string{"silent"}},
		{"too short", 0, []string{string(wavOf(t, 0.01, 0.5))}, 200, 0, []string{"too-short"}},
		{"not audio", 0, []string{"just text, not audio"}, 200, 0, []string{"not-audio"}},
		{"truncated", 0, []string{string(good[:len(good)-100])}, 200, 0, []string{"truncated-audio"}},
		{"one good one silent", 0, []string{string(good), string(wavOf(t, 1, 0))}, 201, 1, []string{"", "silent"}},
		{"over the quota", int64(len(good)) - 1, []string{string(good)}, 507, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			uploads := t.TempDir()
			f := newFixture(t, be, nil, func(_ *recommend.Config, s *ServerConfig) {
				s.Ingester = uploadIngester{&ingest.Uploads{Dir: uploads, MaxBytes: c.quota, Config: ingestConfigFor(b, be.store, encodersOf(m))}}
			})
			fields := []string{"instrument", "bass"}
			for _, x := range c.files {
				fields = append(fields, "@file", x)
			}
			ctype, body := form(fields...)
			code, h, raw := f.do("POST", "/v1/loops", ctype, body)
			if c.want >= 400 {
				checkProblem(t, code, h, raw, c.want)
			} else if code != c.want {
				t.Fatalf("status %d, want %d: %s", code, c.want, raw)
			}
			if strings.Contains(string(raw), uploads) || strings.Contains(string(raw), os.TempDir()+"/") {
				t.Errorf("the answer names a server path: %s", raw)
			}
			for i, code := range c.wantCodes {
				if code != "" && !strings.Contains(string(raw), `"code":"`+code+`"`) {
					t.Errorf("result %d lacks code %q: %s", i, code, raw)
				}
			}
			if n := countFiles(t, uploads); n != c.wantFiles {
				t.Errorf("%d files left in the uploads folder, want %d", n, c.wantFiles)
			}
		})
	}
}

// TestAudioSwappedInPlace: a file replaced by other bytes of the same size, its
// modification time put back, is no longer served under the old id.
func TestAudioSwappedInPlace(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), writeLibrary(t, t.TempDir(), 2, 33))
	l := f.find("bass", 0)
	if code, _, _ := f.do("GET", audioURL("bass", l.id), "", nil); code != 200 {
		t.Fatal(code)
	}
	st, _ := os.Stat(l.path)
	data, _ := os.ReadFile(l.path)
	data[len(data)-2] ^= 0x11
	tmp := l.path + ".new"
	os.WriteFile(tmp, data, 0o644)
	if err := os.Rename(tmp, l.path); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(l.path, st.ModTime(), st.ModTime())
	code, h, raw := f.do("GET", audioURL("bass", l.id), "", nil)
	checkProblem(t, code, h, raw, 410)
}

// TestFailedAuthRateLimited: wrong keys from one address are answered 429 after a
// burst, before the key is even looked at; a good key then waits too.
func TestFailedAuthRateLimited(t *testing.T) {
	keys, err := ParseAPIKeys("k-0123456789abcdef-good\n", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, embeddedBackend(t), nil, func(_ *recommend.Config, s *ServerConfig) { s.APIKeys = keys })
	statuses := map[int]int{}
	for i := 0; i < 500; i++ {
		code, _, _ := f.do("GET", "/v1/collections", "", nil, "X-API-Key", "wrong-key-"+strconv.Itoa(i)+"-0123456789")
		statuses[code]++
	}
	if statuses[401] > failedAuthBurst+5 || statuses[429] < 400 {
		t.Fatalf("500 wrong keys: %v; want at most ~%d answered 401 and the rest 429", statuses, failedAuthBurst)
	}
	code, h, raw := f.do("GET", "/v1/collections", "", nil, "X-API-Key", "k-0123456789abcdef-good")
	checkProblem(t, code, h, raw, 429)
	if h.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// countingListener counts the bytes the server reads from its connections.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}

// endless is an upload that never ends: size bytes of zeros (a RIFF header first), or
// forever with size < 0, produced as it is read, so the client holds no memory.
type endless struct {
	left int64
	head []byte
}

func (e *endless) Read(p []byte) (int, error) {
	if e.left == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if e.left > 0 && int64(n) > e.left {
		n = int(e.left)
	}
	k := copy(p[:n], e.head)
	e.head = e.head[k:]
	clear(p[k:n])
	if e.left > 0 {
		e.left -= int64(n)
	}
	return n, nil
}

// TestHugeBodies streams 600 MB at every upload route, with a declared length and
// chunked, one at a time and four at once: each is refused 413, a declared length before
// the server reads the body, a chunked one once the route's limit is passed; and the
// process's peak RSS rises by less than 64 MB.
func TestHugeBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("streams gigabytes over loopback")
	}
	var read atomic.Int64
	be := embeddedBackend(t)
	b, m := bundleModels(t, testBundle)
	uploads := t.TempDir()
	f := newFixture(t, be, nil, func(_ *recommend.Config, s *ServerConfig) {
		s.Ingester = uploadIngester{&ingest.Uploads{Dir: uploads, Config: ingestConfigFor(b, be.store, encodersOf(m))}}
	})
	f.srv.Close()
	hs := httptest.NewUnstartedServer(f.server.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Listener = countingListener{ln, &read}
	hs.Start()
	defer hs.Close()
	const size = 600 << 20
	limit := f.server.cfg.MaxUploadBytes
	routes := []struct{ path, ctype string }{
		{"/v1/recommend", "audio/wav"},
		{"/v1/recommend", "application/octet-stream"},
		{"/v1/recommend", "multipart/form-data; boundary=zz"},
		{"/v1/transfer?from=drum&to=bass", "audio/wav"},
		{"/v1/interpolate", "multipart/form-data; boundary=zz"},
		{"/v1/loops", "multipart/form-data; boundary=zz"},
	}
	send := func(path, ctype string, declared bool) (int, error) {
		var body io.Reader = &endless{left: size, head: []byte("RIFF\xff\xff\xff\x7fWAVE")}
		if strings.HasPrefix(ctype, "multipart/") {
			name := "audio"
			switch {
			case strings.HasPrefix(path, "/v1/loops"):
				name = "file"
			case strings.HasPrefix(path, "/v1/interpolate"):
				name = "a"
			}
			head := "--zz\r\nContent-Disposition: form-data; name=\"" + name + "\"; filename=\"x.wav\"\r\n\r\n"
			body = io.MultiReader(strings.NewReader(head), &endless{left: size - int64(len(head))})
		}
		req, err := http.NewRequestWithContext(t.Context(), "POST", hs.URL+path, body)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", ctype)
		if declared {
			req.ContentLength = size
		} else {
			req.ContentLength = -1 // chunked
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	before := resetPeakRSS(t)
	for _, declared := range []bool{true, false} {
		for _, rt := range routes {
			name := fmt.Sprintf("%s %s declared=%v", rt.path, rt.ctype, declared)
			read.Store(0)
			code, err := send(rt.path, rt.ctype, declared)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if code != http.StatusRequestEntityTooLarge {
				t.Errorf("%s: status %d, want 413", name, code)
			}
			// Declared: only what was in flight before the answer; chunked: one file's
			// limit and change. /v1/loops takes several files, so a declared 600 MB may
			// be sent; its one part is cut at one file's limit.
			max := int64(8 << 20)
			if !declared || strings.HasPrefix(rt.path, "/v1/loops") {
				max = limit + 8<<20
			}
			if n := read.Load(); n > max {
				t.Errorf("%s: the server read %d bytes before answering, want at most %d", name, n, max)
			}
			t.Logf("%s: 413 after the server read %d bytes", name, read.Load())
		}
	}
	// Four at once at every route.
	for _, rt := range routes {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func(declared bool) {
				defer wg.Done()
				code, err := send(rt.path, rt.ctype, declared)
				if err == nil && code != http.StatusRequestEntityTooLarge {
					err = fmt.Errorf("status %d", code)
				}
				if err != nil && !errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("%s %s: %w", rt.path, rt.ctype, err)
				}
			}(i%2 == 0)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	peak := peakRSS(t)
	t.Logf("peak RSS %d MiB before, %d MiB after (rise %d MiB)", before>>20, peak>>20, (peak-before)>>20)
	if !raceEnabled && peak-before > 64<<20 {
		t.Errorf("peak RSS rose by %d MiB streaming 600 MB uploads, want < 64 MiB", (peak-before)>>20)
	}
}

// resetPeakRSS resets the kernel's peak-RSS mark of this process and returns the
// current RSS.
func resetPeakRSS(t testing.TB) int64 {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS mark (%v): not Linux?", err)
	}
	return procStatus(t, "VmRSS")
}

func peakRSS(t testing.TB) int64 { return procStatus(t, "VmHWM") }

func procStatus(t testing.TB, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestConcurrentIdenticalUploads: the same bytes uploaded by several clients at once
// (the soak found it): one upload's clean-up of a failed file must not pull it from
// under another's ingest, so every answer is 200 or 201, never a 500, and nothing
// that failed is left behind.
func TestConcurrentIdenticalUploads(t *testing.T) {
	be := embeddedBackend(t)
	b, m := bundleModels(t, testBundle)
	uploads := t.TempDir()
	f := newFixture(t, be, nil, func(_ *recommend.Config, s *ServerConfig) {
		s.Ingester = uploadIngester{&ingest.Uploads{Dir: uploads, Config: ingestConfigFor(b, be.store, encodersOf(m))}}
	})
	ctype, body := form("instrument", "bass", "@file", string(wavOf(t, 1, 0)))
	var wg sync.WaitGroup
	codes := make(chan int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", f.srv.URL+"/v1/loops", bytes.NewReader(body.Bytes()))
			req.Header.Set("Content-Type", ctype)
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("status %d, want 200 (a failed upload)", c)
		}
	}
	if n := countFiles(t, uploads); n != 0 {
		t.Errorf("%d files left in the uploads folder", n)
	}
}

// TestSlowBody: a body that stops arriving is answered 408 once the body's own read
// deadline passes, long before the handler's deadline.
func TestSlowBody(t *testing.T) {
	f := newFixture(t, embeddedBackend(t), nil, func(_ *recommend.Config, s *ServerConfig) {
		s.BodyReadTimeout = 300 * time.Millisecond
		s.RequestTimeout = time.Hour
	})
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write([]byte(`{"seed_id": "`)) // then nothing more
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/recommend", pr)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	checkProblem(t, resp.StatusCode, resp.Header, raw, http.StatusRequestTimeout)
}

// slowIngester takes longer than the body's read deadline, after the body was read.
type slowIngester struct{ wait time.Duration }

func (s slowIngester) Ingest(ctx context.Context, meta UploadMeta, files []Upload) ([]UploadResult, error) {
	select {
	case <-time.After(s.wait):
	case <-ctx.Done():
		return nil, fmt.Errorf("cancelled while ingesting: %w", ctx.Err())
	}
	return []UploadResult{{Filename: files[0].Filename, ID: strings.Repeat("a", 32), Status: "stored"}}, nil
}

// TestBodyDeadlineEndsWithTheBody: the body's read deadline ends once the body is read;
// a handler that works longer than it (an upload's ingest) is not cancelled.
func TestBodyDeadlineEndsWithTheBody(t *testing.T) {
	for _, c := range []struct {
		name  string
		ctype string
		body  string
	}{
		{"multipart upload", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, embeddedBackend(t), nil, func(_ *recommend.Config, s *ServerConfig) {
				s.BodyReadTimeout = 200 * time.Millisecond
				s.Ingester = slowIngester{wait: time.Second}
			})
			ctype, body := form("instrument", "bass", "@file", string(wavOf(t, 1, 0.5)))
			code, _, raw := f.do("POST", "/v1/loops", ctype, body)
			if code != http.StatusCreated {
				t.Fatalf("status %d, want 201: %s", code, raw)
			}
		})
	}
}
