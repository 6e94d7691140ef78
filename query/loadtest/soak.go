package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// soakKind is one kind of request of the mix and the status it must get.
type soakKind struct {
	name string
	want int
	do   func(c *http.Client, base string, r *rand.Rand) (*http.Response, error)
}

func soakKinds(seeds []string) []soakKind {
	jsonPost := func(body string, hdr ...string) func(*http.Client, string, *rand.Rand) (*http.Response, error) {
		return func(c *http.Client, base string, _ *rand.Rand) (*http.Response, error) {
			req, _ := http.NewRequest("POST", base+"/v1/recommend", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			for i := 0; i+1 < len(hdr); i += 2 {
				if hdr[i] == "Host" {
					req.Host = hdr[i+1]
				} else {
					req.Header.Set(hdr[i], hdr[i+1])
				}
			}
			return c.Do(req)
		}
	}
	good := func(c *http.Client, base string, r *rand.Rand) (*http.Response, error) {
		return c.Post(base+"/v1/recommend", "application/json", strings.NewReader(fmt.Sprintf(`{"seed_id": %q, "k": 10}`, seeds[r.IntN(len(seeds))])))
	}
	silence := silentWAV()
	return []soakKind{
		{"good recommend", 200, good},
		{"good recommend again", 200, good},
		{"good listing", 200, func(c *http.Client, base string, r *rand.Rand) (*http.Response, error) {
			return c.Get(base + "/v1/loops/bass?limit=20&offset=" + strconv.Itoa(r.IntN(500)))
		}},
		{"unknown seed", 404, jsonPost(`{"seed_id": "` + strings.Repeat("0", 32) + `"}`)},
		{"broken JSON", 400, jsonPost(`{"seed_id": "`)},
		{"deep JSON", 400, jsonPost(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))},
		{"NaN-ish k", 400, jsonPost(`{"seed_id": "` + strings.Repeat("a", 32) + `", "k": 1e400}`)},
		{"cross-site post", 403, jsonPost(`{}`, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")},
		{"foreign host", 403, jsonPost(`{}`, "Host", "evil.example")},
		{"declared 600 MB", 413, func(c *http.Client, base string, _ *rand.Rand) (*http.Response, error) {
			req, _ := http.NewRequest("POST", base+"/v1/recommend", io.LimitReader(zeros{}, 600<<20))
			req.ContentLength = 600 << 20
			req.Header.Set("Content-Type", "audio/wav")
			return c.Do(req)
		}},
		{"chunked 3 MB", 413, func(c *http.Client, base string, _ *rand.Rand) (*http.Response, error) {
			req, _ := http.NewRequest("POST", base+"/v1/transfer?from=drum&to=bass", io.LimitReader(zeros{}, 3<<20))
			req.ContentLength = -1
			req.Header.Set("Content-Type", "audio/wav")
			return c.Do(req)
		}},
		{"broken multipart", 400, func(c *http.Client, base string, _ *rand.Rand) (*http.Response, error) {
			return c.Post(base+"/v1/recommend", "multipart/form-data; boundary=zz", strings.NewReader("--zz\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\nabc"))
		}},
		{"silent upload", 200, func(c *http.Client, base string, _ *rand.Rand) (*http.Response, error) {
			var b bytes.Buffer
			mw := multipart.NewWriter(&b)
			mw.WriteField("instrument", "bass")
			w, _ := mw.CreateFormFile("file", "silence.wav")
			w.Write(silence)
			mw.Close()
			return c.Post(base+"/v1/loops", mw.FormDataContentType(), &b)
		}},
		{"unknown preview, bad range", 404, func(c *http.Client, base string, _ *rand.Rand) (*http.Response, error) {
			req, _ := http.NewRequest("GET", base+"/v1/previews/"+strings.Repeat("ab", 32)+".wav", nil)
			req.Header.Set("Range", "bytes=abc")
			return c.Do(req)
		}},
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// silentWAV is one second of 16-bit silence at 22,050 Hz: a well-formed file every
// upload refuses (code "silent"), so it must leave nothing in the uploads folder.
func silentWAV() []byte {
	const rate, n = 22050, 22050
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, []any{uint32(16), uint16(1), uint16(1), uint32(rate), uint32(2 * rate), uint16(2), uint16(16)})
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*n))
	b.Write(make([]byte, 2*n))
	return b.Bytes()
}

// soak sends the mix from concurrency clients for dur and reports the answers by kind
// and status, each kind's p99, and the server's RSS every 10 s.
func soak(client *http.Client, base string, pid int, seeds []string, concurrency, maxRequests int, dur time.Duration, uploads string) error {
	kinds := soakKinds(seeds)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	type tally struct {
		statuses map[int]int
		lat      []time.Duration
	}
	var mu sync.Mutex
	tallies := make([]tally, len(kinds))
	for i := range tallies {
		tallies[i].statuses = map[int]int{}
	}
	var all []time.Duration
	transport, sent := 0, 0
	var rss []string
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				v, _ := procStatus(pid, "VmRSS")
				mu.Lock()
				rss = append(rss, v)
				mu.Unlock()
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for ctx.Err() == nil {
				mu.Lock()
				if sent >= maxRequests {
					mu.Unlock()
					return
				}
				sent++
				mu.Unlock()
				i := r.IntN(len(kinds))
				t := time.Now()
				resp, err := kinds[i].do(client, base, r)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						transport++
						mu.Unlock()
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t)
				mu.Lock()
				tallies[i].statuses[resp.StatusCode]++
				tallies[i].lat = append(tallies[i].lat, d)
				all = append(all, d)
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	cancel()
	<-rssDone
	elapsed := time.Since(start)
	p99 := func(l []time.Duration) float64 {
		if len(l) == 0 {
			return 0
		}
		slices.Sort(l)
		return ms(l[min(len(l)-1, int(0.99*float64(len(l))))])
	}
	fiveXX, unexpected := 0, 0
	byKind := map[string]any{}
	for i, k := range kinds {
		for st, n := range tallies[i].statuses {
			if st >= 500 {
				fiveXX += n
			}
			if st != k.want {
				unexpected += n
			}
		}
		byKind[k.name] = map[string]any{"want": k.want, "statuses": tallies[i].statuses, "p99_ms": p99(tallies[i].lat)}
	}
	left := 0
	filepath.WalkDir(uploads, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			left++
		}
		return nil
	})
	// RSS over the last 8 minutes (or the second half of a shorter run): flat within 10%?
	var tail []float64
	skip := len(rss) / 2
	if dur >= 10*time.Minute {
		skip = len(rss) - 48
	}
	for _, v := range rss[max(skip, 0):] {
		kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
		tail = append(tail, kb)
	}
	lo, hi := math.Inf(1), 0.0
	for _, v := range tail {
		lo, hi = min(lo, v), max(hi, v)
	}
	res := map[string]any{
		"seconds": elapsed.Seconds(), "concurrency": concurrency, "answers": len(all), "transport_errors": transport,
		"5xx": fiveXX, "unexpected_status": unexpected, "p99_ms_all": p99(all), "by_kind": byKind,
		"server_rss_every_10s": rss, "rss_tail_min_kb": lo, "rss_tail_max_kb": hi, "rss_tail_spread": (hi - lo) / lo,
		"files_left_in_uploads": left,
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
	if fiveXX > 0 || unexpected > 0 || left > 0 {
		return fmt.Errorf("%d 5xx, %d unexpected statuses, %d files left in the uploads folder", fiveXX, unexpected, left)
	}
	return nil
}
