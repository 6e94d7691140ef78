package audio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireTool finds an external reference tool. In CI (CI=true or LOOPMATCH_REQUIRE_TOOLS
// set) a missing tool fails the test instead of skipping it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" || os.Getenv("LOOPMATCH_REQUIRE_TOOLS") != "" {
		t.Fatalf("%s not found: run scripts/bootstrap.sh (it installs sox and ffmpeg)", name)
	}
	t.Skipf("%s not found: run scripts/bootstrap.sh to compare against it", name)
	return ""
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
}

// ffmpegF32 decodes a file with ffmpeg to interleaved float32, the reference.
func ffmpegF32(t *testing.T, path string) ([]float32, int, int) {
	t.Helper()
	out := path + ".ref.f32"
	run(t, "ffmpeg", "-v", "error", "-y", "-i", path, "-f", "f32le", "-acodec", "pcm_f32le", out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
		"stream=channels,sample_rate", "-of", "default=nw=1:nk=1", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var ch, rate int
	fmt.Sscan(string(probe), &rate, &ch) // ffprobe prints sample_rate before channels
	s := make([]float32, len(raw)/4)
	for i := range s {
		s[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return s, ch, rate
}

// soxF32 decodes with sox, whose Ogg reader is libvorbisfile, the reference decoder
// (ffmpeg's own Vorbis decoder drops the first block).
func soxF32(t *testing.T, path string) ([]float32, int, int) {
	t.Helper()
	out := path + ".ref.f32"
	run(t, "sox", path, "-t", "f32", "-e", "floating-point", out)
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	info := func(flag string) int {
		b, err := exec.Command("soxi", flag, path).Output()
		if err != nil {
			t.Fatalf("soxi %s %s: %v", flag, path, err)
		}
		var v int
		fmt.Sscan(string(b), &v)
		return v
	}
	s := make([]float32, len(raw)/4)
	for i := range s {
		s[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return s, info("-c"), info("-r")
}

type refCase struct {
	name string
	// make writes the file at path from the seed WAV src (stereo-or-more float 48k).
	make func(t *testing.T, src, path string)
	tol  float64
	// has checks that the generated file really has the feature the case is named for
	// (a tool upgrade that stops writing EXTENSIBLE must not silently weaken the test).
	has func(data []byte) error
}

// wavTag is the format tag of a RIFF/RF64 file's fmt chunk, or -1.
func wavTag(data []byte) int {
	for pos := 12; pos+10 <= len(data); {
		size := int(binary.LittleEndian.Uint32(data[pos+4:]))
		if string(data[pos:pos+4]) == "fmt " {
			return int(binary.LittleEndian.Uint16(data[pos+8:]))
		}
		pos += 8 + size + size%2
	}
	return -1
}

func hasTag(tag int) func([]byte) error {
	return func(data []byte) error {
		if got := wavTag(data); got != tag {
			return fmt.Errorf("fmt tag 0x%04x, want 0x%04x", got, tag)
		}
		return nil
	}
}

// hasBytes checks for a marker (a chunk id, a compression type) in the first 4 KiB.
func hasBytes(markers ...string) func([]byte) error {
	return func(data []byte) error {
		head := data[:min(len(data), 4096)]
		for _, m := range markers {
			if !bytes.Contains(head, []byte(m)) {
				return fmt.Errorf("no %q in the header", m)
			}
		}
		return nil
	}
}

func hasPrefix(p string) func([]byte) error {
	return func(data []byte) error {
		if !bytes.HasPrefix(data, []byte(p)) {
			return fmt.Errorf("file does not start with %q", p)
		}
		return nil
	}
}

// ffPipe has ffmpeg write to a pipe, as a streaming encoder does: the RIFF and data
// sizes are left at 0xFFFFFFFF.
func ffPipe(args ...string) func(t *testing.T, src, path string) {
	return func(t *testing.T, src, path string) {
		a := append([]string{"-v", "error", "-y", "-i", src}, args...)
		a = append(a, "pipe:1")
		out, err := exec.Command("ffmpeg", a...).Output()
		if err != nil {
			t.Fatalf("ffmpeg %v: %v", a, err)
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func piped(data []byte) error {
	if len(data) < 8 || binary.LittleEndian.Uint32(data[4:]) != 0xFFFFFFFF {
		return fmt.Errorf("RIFF size is set: not a streamed file")
	}
	return nil
}

// withAIFFChunks rewrites an AIFF made by sox: odd-sized unknown chunks before COMM and
// between COMM and SSND, and an SSND offset of 3 with 3 bytes of block padding.
func withAIFFChunks(inner func(t *testing.T, src, path string)) func(t *testing.T, src, path string) {
	return func(t *testing.T, src, path string) {
		tmp := path + ".plain.aiff"
		inner(t, src, tmp)
		b, err := os.ReadFile(tmp)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		chunk := func(id string, payload []byte) {
			body.WriteString(id)
			binary.Write(&body, binary.BigEndian, uint32(len(payload)))
			body.Write(payload)
			if len(payload)%2 == 1 {
				body.WriteByte(0)
			}
		}
		chunk("ANNO", []byte("odd"))
		for pos := 12; pos+8 <= len(b); {
			id := string(b[pos : pos+4])
			size := int(binary.BigEndian.Uint32(b[pos+4:]))
			end := min(pos+8+size, len(b))
			payload := b[pos+8 : end]
			if id == "SSND" {
				// offset 3, block size 0, then 3 bytes the reader must skip.
				p := append([]byte{0, 0, 0, 3, 0, 0, 0, 0, 0xAA, 0xBB, 0xCC}, payload[8:]...)
				payload = p
			}
			chunk(id, payload)
			if id == "COMM" {
				chunk("APPL", []byte("xxxxodd"))
			}
			pos = end + size%2
		}
		var out bytes.Buffer
		out.WriteString("FORM")
		binary.Write(&out, binary.BigEndian, uint32(4+body.Len()))
		out.Write(b[8:12])
		out.Write(body.Bytes())
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// withID3 prepends an ID3v2 tag, as taggers do to FLAC files.
func withID3(inner func(t *testing.T, src, path string)) func(t *testing.T, src, path string) {
	return func(t *testing.T, src, path string) {
		tmp := path + ".plain.flac"
		inner(t, src, tmp)
		b, err := os.ReadFile(tmp)
		if err != nil {
			t.Fatal(err)
		}
		frame := append([]byte("TIT2\x00\x00\x00\x05\x00\x00\x03loop"), make([]byte, 20)...) // + padding
		tag := append([]byte{'I', 'D', '3', 4, 0, 0, 0, 0, 0, byte(len(frame))}, frame...)
		if err := os.WriteFile(path, append(tag, b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// soxConv converts with sox: output options, then the output file, then any effects
// after a "--" marker ("remix 1 2", "rate").
func soxConv(args ...string) func(t *testing.T, src, path string) {
	return func(t *testing.T, src, path string) {
		opts, effects := args, []string(nil)
		for i, a := range args {
			if a == "--" {
				opts, effects = args[:i], args[i+1:]
				break
			}
		}
		a := append([]string{src}, opts...)
		a = append(a, path)
		a = append(a, effects...)
		run(t, "sox", a...)
	}
}

func ffConv(args ...string) func(t *testing.T, src, path string) {
	return func(t *testing.T, src, path string) {
		a := append([]string{"-v", "error", "-y", "-i", src}, args...)
		a = append(a, path)
		run(t, "ffmpeg", a...)
	}
}

// withChunks rewrites a WAV made by sox, adding an odd-sized unknown chunk before fmt,
// a LIST chunk between fmt and data, and a trailing junk chunk.
func withChunks(inner func(t *testing.T, src, path string)) func(t *testing.T, src, path string) {
	return func(t *testing.T, src, path string) {
		tmp := path + ".plain.wav"
		inner(t, src, tmp)
		b, err := os.ReadFile(tmp)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		chunk := func(id string, payload []byte) {
			body.WriteString(id)
			binary.Write(&body, binary.LittleEndian, uint32(len(payload)))
			body.Write(payload)
			if len(payload)%2 == 1 {
				body.WriteByte(0)
			}
		}
		chunk("junk", []byte("odd"))   // odd size, padded
		chunk("bext", make([]byte, 9)) // unknown to us, odd
		pos := 12
		for pos+8 <= len(b) {
			id := string(b[pos : pos+4])
			size := int(binary.LittleEndian.Uint32(b[pos+4:]))
			end := pos + 8 + size
			if end > len(b) {
				end = len(b)
			}
			chunk(id, b[pos+8:end])
			if id == "fmt " {
				chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00test\x00"))
			}
			pos = end + size%2
		}
		chunk("zzzz", []byte{1, 2, 3})
		var out bytes.Buffer
		out.WriteString("RIFF")
		binary.Write(&out, binary.LittleEndian, uint32(4+body.Len()))
		out.WriteString("WAVE")
		out.Write(body.Bytes())
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDecodeMatchesSoxFFmpeg makes unusual but valid files with sox and ffmpeg and
// checks our decoded samples against ffmpeg's float32 decode of the same file.
func TestDecodeMatchesSoxFFmpeg(t *testing.T) {
	requireTool(t, "sox")
	requireTool(t, "ffmpeg")
	dir := t.TempDir()
	// A seed with distinct content per channel: 6 channels, 48 kHz, 0.5 s, float.
	src := filepath.Join(dir, "src6.wav")
	run(t, "sox", "-n", "-r", "48000", "-c", "6", "-e", "floating-point", "-b", "32", src,
		"synth", "0.5", "sine", "110", "sine", "220", "square", "330", "sawtooth", "440", "triangle", "550", "pinknoise", "vol", "0.7")
	src2 := filepath.Join(dir, "src2.wav")
	run(t, "sox", src, src2, "remix", "1", "2")

	const exact = 1e-6
	cases := []refCase{
		{"u8.wav", soxConv("-e", "unsigned-integer", "-b", "8"), exact, nil},
		{"s16.wav", soxConv("-b", "16"), exact, nil},
		{"s24.wav", soxConv("-b", "24"), exact, nil},
		{"s32.wav", soxConv("-e", "signed-integer", "-b", "32"), exact, nil},
		{"f32.wav", soxConv("-e", "floating-point", "-b", "32"), exact, nil},
		{"f64.wav", soxConv("-e", "floating-point", "-b", "64"), exact, nil},
		{"mono16.wav", soxConv("-b", "16", "--", "remix", "1"), exact, nil},
		{"c3_24.wav", soxConv("-b", "24", "--", "remix", "1", "2", "3"), exact, nil},
		{"c5_16.wav", soxConv("-b", "16", "--", "remix", "1", "2", "3", "4", "5"), exact, nil},
		{"r8k_16.wav", soxConv("-b", "16", "-r", "8000"), exact, nil},
		{"r44k_16.wav", soxConv("-b", "16", "-r", "44100"), exact, nil},
		{"r96k_24.wav", soxConv("-b", "24", "-r", "96000"), exact, nil},
		{"ext_s16_c6.wav", ffConv("-c:a", "pcm_s16le", "-rf64", "never"), exact, hasTag(0xFFFE)}, // ffmpeg writes EXTENSIBLE for >2 ch
		{"ext_f32_c6.wav", ffConv("-c:a", "pcm_f32le"), exact, hasTag(0xFFFE)},
		{"ext_s24_c4.wav", ffConv("-c:a", "pcm_s24le", "-af", "pan=4c|c0=c0|c1=c1|c2=c2|c3=c3"), exact, hasTag(0xFFFE)},
		{"ext_s24_c2_sox.wav", soxConv("-b", "24", "--", "remix", "1", "2"), exact, hasTag(0xFFFE)},   // sox: EXTENSIBLE above 16 bits
		{"fact_f32_c6_sox.wav", soxConv("-e", "floating-point", "-b", "32"), exact, hasBytes("fact")}, // sox: plain float tag plus a fact chunk
		{"bext_s16.wav", ffConv("-c:a", "pcm_s16le", "-ac", "2", "-write_bext", "1"), exact, hasBytes("bext")},
		{"rf64_s16.wav", ffConv("-c:a", "pcm_s16le", "-rf64", "always"), exact, hasPrefix("RF64")},
		{"rf64_f64.wav", ffConv("-c:a", "pcm_f64le", "-rf64", "always"), exact, hasPrefix("RF64")},
		{"piped_s16.wav", ffPipe("-c:a", "pcm_s16le", "-f", "wav"), exact, piped},
		{"chunks_s16.wav", withChunks(soxConv("-b", "16")), exact, hasBytes("junk", "bext", "LIST")},
		{"chunks_f32.wav", withChunks(soxConv("-e", "floating-point", "-b", "32")), exact, hasBytes("junk", "LIST")},
		{"chunks_u8_odd.wav", withChunks(soxConv("-e", "unsigned-integer", "-b", "8", "-r", "8000", "--", "remix", "1", "rate", "8000", "trim", "0", "1001s")), exact, hasBytes("junk")},
		{"s16.aiff", soxConv("-b", "16"), exact, nil},
		{"s8.aiff", soxConv("-b", "8"), exact, nil},
		{"s24.aiff", soxConv("-b", "24"), exact, nil},
		{"s32.aiff", soxConv("-b", "32"), exact, nil},
		{"mono_r22k.aiff", soxConv("-b", "16", "-r", "22050", "--", "remix", "1"), exact, nil},
		{"s16.aifc", soxConv("-b", "16"), exact, nil},
		{"sowt.aifc", ffConv("-c:a", "pcm_s16le", "-f", "aiff"), exact, hasBytes("AIFC", "sowt")},
		{"fl32.aifc", ffConv("-c:a", "pcm_f32be", "-f", "aiff"), exact, hasBytes("AIFC", "fl32")},
		{"fl64.aifc", ffConv("-c:a", "pcm_f64be", "-f", "aiff"), exact, hasBytes("AIFC", "fl64")},
		{"fl32_sox.aifc", soxConv("-e", "floating-point", "-b", "32"), exact, hasBytes("AIFC", "fl32")}, // long COMM with a compression name
		{"chunks.aiff", withAIFFChunks(soxConv("-b", "16", "--", "remix", "1", "2", "3")), exact, hasBytes("ANNO", "APPL")},
		{"s16.flac", soxConv("-b", "16"), exact, nil},
		{"s24.flac", soxConv("-b", "24"), exact, nil},
		{"s16_c6.flac", ffConv("-c:a", "flac", "-sample_fmt", "s16"), exact, nil},
		{"s24_r96k.flac", soxConv("-b", "24", "-r", "96000", "--", "remix", "1", "2"), exact, nil},
		{"mono.flac", soxConv("-b", "16", "--", "remix", "1"), exact, nil},
		{"flac_odd_block.flac", ffConv("-c:a", "flac", "-sample_fmt", "s16", "-frame_size", "1153"), exact, nil},
		{"s8.flac", soxConv("-b", "8", "--", "remix", "1", "2", "3"), exact, nil},
		{"id3.flac", withID3(soxConv("-b", "16", "--", "remix", "1", "2")), exact, hasPrefix("ID3")},
		// Vorbis decoders differ in float rounding of the inverse MDCT; 1e-4 is still far
		// below anything audible (-80 dBFS).
		{"q5.ogg", soxConv("-C", "5"), 1e-4, nil},
		{"mono_r44k.ogg", soxConv("-r", "44100", "--", "remix", "1"), 1e-4, nil},
		{"c5.ogg", ffConv("-c:a", "libvorbis", "-q:a", "4", "-ac", "5"), 1e-4, nil},
	}
	for _, c := range cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name)
			in := src
			if c.name == "s16.aiff" || c.name == "s8.aiff" || c.name == "mono_r22k.aiff" || c.name == "q5.ogg" {
				in = src2
			}
			c.make(t, in, path)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.has != nil {
				if err := c.has(data); err != nil {
					t.Fatalf("generated file lacks its feature: %v", err)
				}
			}
			b, err := DecodeFile(t.Context(), path, DefaultLimits())
			if err != nil {
				t.Fatalf("DecodeFile: %v", err)
			}
			var ref []float32
			var ch, rate int
			if filepath.Ext(path) == ".ogg" {
				ref, ch, rate = soxF32(t, path)
			} else {
				ref, ch, rate = ffmpegF32(t, path)
			}
			if b.Channels != ch || b.SampleRate != rate {
				t.Fatalf("got %d ch %d Hz, ffmpeg says %d ch %d Hz", b.Channels, b.SampleRate, ch, rate)
			}
			if len(b.Data) != len(ref) {
				t.Fatalf("got %d samples, ffmpeg %d", len(b.Data), len(ref))
			}
			var maxDiff float64
			for i := range ref {
				if d := math.Abs(float64(b.Data[i]) - float64(ref[i])); d > maxDiff {
					maxDiff = d
				}
			}
			if maxDiff > c.tol {
				t.Errorf("max abs diff %.3g > %.0g", maxDiff, c.tol)
			}
			// And after the same conversion the models see: mono at 22.05 kHz.
			mono := b.Mono()
			refBuf := &Buffer{SampleRate: rate, Channels: ch, Data: ref}
			ours, err := Resample(mono, rate, 22050)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := Resample(refBuf.Mono(), rate, 22050)
			if err != nil {
				t.Fatal(err)
			}
			for i := range ours {
				if d := math.Abs(float64(ours[i]) - float64(theirs[i])); d > 1e-4 {
					t.Fatalf("after mono+resample sample %d differs by %.3g", i, d)
				}
			}
			t.Logf("%s: %s %d ch %d Hz %d bits, max abs diff %.2g", c.name, b.Format, b.Channels, b.SampleRate, b.BitDepth, maxDiff)
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d reference files; the floor is 30", len(cases))
	}
}
