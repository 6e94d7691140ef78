package query

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
)

// formatLibrary writes one stereo 44.1 kHz loop per pack and converts each to one of the
// formats ingest accepts with sox (scripts/bootstrap.sh installs it), so the renditions
// are checked on files another program wrote.
func formatLibrary(t *testing.T, dir string) map[string]loopFile {
	t.Helper()
	sox, err := exec.LookPath("sox")
	if err != nil {
		t.Fatal("sox not found: run scripts/bootstrap.sh (it installs sox)")
	}
	const rate = 44100
	out := map[string]loopFile{}
	for i, ext := range []string{"wav", "aiff", "aifc", "flac", "ogg"} {
		inst := []string{"drum", "bass"}[i%2]
		pcm := make([]float32, 2*rate/2) // 0.5 s stereo
		for j := 0; j < len(pcm)/2; j++ {
			tt := float64(j) / rate
			pcm[2*j] = float32(0.5 * math.Sin(2*math.Pi*(110+40*float64(i))*tt))
			pcm[2*j+1] = float32(0.3 * math.Sin(2*math.Pi*(220+40*float64(i))*tt))
		}
		var buf bytes.Buffer
		if err := audio.EncodeWAVChannels(&buf, pcm, 2, rate, audio.PCM16); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(dir, fmt.Sprintf("src%d.wav", i))
		os.WriteFile(src, buf.Bytes(), 0o644)
		path := filepath.Join(dir, fmt.Sprintf("Pack%02d_%s_0.%s", i, inst, ext))
		args := []string{src}
		if ext == "aiff" {
			args = append(args, "-b", "24")
		}
		if msg, err := exec.Command(sox, append(args, path)...).CombinedOutput(); err != nil {
			t.Fatalf("sox %s: %v\n%s", path, err, msg)
		}
		data, _ := os.ReadFile(path)
		id, _ := loopid.ID(bytes.NewReader(data))
		out[ext] = loopFile{path: path, id: id, inst: inst, pack: fmt.Sprintf("Pack%02d", i), key: "Am", bpm: 120}
	}
	return out
}

// TestLoopAudioWAVRendition: ?format=wav serves every format ingest accepts as a 16-bit
// WAV of the same channels, rate and samples as the reader ingest uses decodes the
// original; it is decoded once and cached; ranges work on it; other formats are refused.
func TestLoopAudioWAVRendition(t *testing.T) {
	for _, be := range backends(t) {
		t.Run(be.name, func(t *testing.T) {
			files := formatLibrary(t, t.TempDir())
			var lib []loopFile
			for _, f := range files {
				lib = append(lib, f)
			}
			f := newFixture(t, be, lib)
			for _, ext := range []string{"wav", "aiff", "aifc", "flac", "ogg"} {
				lf := files[ext]
				t.Run(ext, func(t *testing.T) {
					url := "/v1/loops/" + lf.inst + "/" + lf.id + "/audio?format=wav"
					code, h, raw := f.do("GET", url, "", nil)
					if code != 200 || h.Get("Content-Type") != "audio/wav" || !strings.HasSuffix(h.Get("Content-Disposition"), `.wav"`) {
						t.Fatalf("GET %s: %d %v %.200s", url, code, h, raw)
					}
					got, err := audio.DecodeBytes(raw, audio.DefaultLimits())
					if err != nil {
						t.Fatalf("the rendition does not decode: %v", err)
					}
					want, err := audio.DecodeFile(context.Background(), lf.path, audio.DefaultLimits())
					if err != nil {
						t.Fatal(err)
					}
					if got.Format != audio.WAV || got.BitDepth != 16 || got.Channels != want.Channels || got.SampleRate != want.SampleRate || len(got.Data) != len(want.Data) {
						t.Fatalf("rendition %s %d-bit %d ch %d Hz %d samples; original decodes to %d ch %d Hz %d samples",
							got.Format, got.BitDepth, got.Channels, got.SampleRate, len(got.Data), want.Channels, want.SampleRate, len(want.Data))
					}
					worst := 0.0
					for i := range got.Data {
						worst = max(worst, math.Abs(float64(got.Data[i]-want.Data[i])))
					}
					if worst > 1.0/32767+1e-6 {
						t.Errorf("largest difference from the decoded original %g, more than 16-bit rounding", worst)
					}
					if _, ok := f.server.previews.Get(wavRenditionKey(lf.id)); !ok {
						t.Error("the rendition is not in the cache")
					}
					// Cached: the same bytes again, and a range of them.
					code, _, again := f.do("GET", url, "", nil)
					if code != 200 || !bytes.Equal(again, raw) {
						t.Errorf("second GET: %d, same bytes %v", code, bytes.Equal(again, raw))
					}
					code, h, part := f.do("GET", url, "", nil, "Range", "bytes=40-47")
					if code != 206 || !bytes.Equal(part, raw[40:48]) || h.Get("Content-Range") != fmt.Sprintf("bytes 40-47/%d", len(raw)) {
						t.Errorf("range: %d %v %q", code, h, part)
					}
					code, h, _ = f.do("HEAD", url, "", nil)
					if code != 200 || h.Get("Content-Type") != "audio/wav" {
						t.Errorf("HEAD: %d %v", code, h)
					}
					// The original is still served as it is.
					orig, _ := os.ReadFile(lf.path)
					for _, u := range []string{strings.TrimSuffix(url, "?format=wav"), strings.Replace(url, "format=wav", "format=original", 1)} {
						if code, _, raw := f.do("GET", u, "", nil); code != 200 || !bytes.Equal(raw, orig) {
							t.Errorf("GET %s: %d, the original file %v", u, code, bytes.Equal(raw, orig))
						}
					}
				})
			}
			bad := []struct{ name, url string }{
				{"unknown format", "/v1/loops/drum/" + files["wav"].id + "/audio?format=mp3"},
				{"empty format", "/v1/loops/drum/" + files["wav"].id + "/audio?format="},
			}
			for _, b := range bad {
				code, h, raw := f.do("GET", b.url, "", nil)
				checkProblem(t, code, h, raw, 400)
			}
			// A file changed after ingest is refused, rendition or not.
			lf := files["flac"]
			os.WriteFile(lf.path, []byte("not audio any more"), 0o644)
			code, h, raw := f.do("GET", "/v1/loops/"+lf.inst+"/"+lf.id+"/audio?format=wav", "", nil)
			checkProblem(t, code, h, raw, 410)
		})
	}
}
