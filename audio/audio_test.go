package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// wavBytes builds a canonical WAV in memory for tests.
func wavBytes(t testing.TB, samples []float32, rate int, enc WAVEncoding) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := EncodeWAV(&b, samples, rate, enc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	in := sine(440, 22050, 22050)
	in[10] = 1.5 // clipped in PCM16, kept in float
	for _, enc := range []WAVEncoding{PCM16, Float32} {
		b, err := DecodeBytes(wavBytes(t, in, 22050, enc), DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if b.SampleRate != 22050 || b.Channels != 1 || len(b.Data) != len(in) {
			t.Fatalf("enc %d: got %d Hz %d ch %d samples", enc, b.SampleRate, b.Channels, len(b.Data))
		}
		tol := 1.0 / 32767
		if enc == Float32 {
			tol = 0
		}
		for i, v := range in {
			want := float64(v)
			if enc == PCM16 {
				want = math.Max(-1, math.Min(1, want)) * 32767 / 32768
			}
			if d := math.Abs(float64(b.Data[i]) - want); d > tol {
				t.Fatalf("enc %d sample %d: %v vs %v", enc, i, b.Data[i], want)
			}
		}
	}
	if err := EncodeWAV(&bytes.Buffer{}, []float32{float32(math.NaN())}, 100, Float32); !errors.Is(err, ErrNonFinite) {
		t.Errorf("NaN float WAV: %v", err)
	}
}

func TestWindow(t *testing.T) {
	rate := 1000
	loop := make([]float32, 300) // 0.3 s
	for i := range loop {
		loop[i] = float32(i+1) / 300
	}
	w, err := Window(loop, rate, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1000 {
		t.Fatalf("len %d", len(w))
	}
	for i, v := range w {
		if v != loop[i%300] {
			t.Fatalf("tiling: sample %d = %v, want %v", i, v, loop[i%300])
		}
	}
	long := make([]float32, 2500)
	for i := range long {
		long[i] = float32(i) + 1
	}
	w, _ = Window(long, rate, 1)
	if len(w) != 1000 || w[0] != 1 || w[999] != 1000 {
		t.Errorf("cut: first window not kept")
	}
	cases := []struct {
		name string
		in   []float32
		want error
	}{
		{"silence", make([]float32, 500), ErrSilent},
		{"too short", []float32{0.5, 0.5}, ErrTooShort},
		{"nan", append(make([]float32, 99), float32(math.NaN())), ErrNonFinite},
		{"inf", append([]float32{0.1}, append(make([]float32, 99), float32(math.Inf(-1)))...), ErrNonFinite},
	}
	for _, c := range cases {
		if _, err := Window(c.in, rate, 1); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

func TestMono(t *testing.T) {
	b := &Buffer{Channels: 3, Data: []float32{0.3, 0.6, 0.9, -1, 0, 1}}
	m := b.Mono()
	if len(m) != 2 || math.Abs(float64(m[0])-0.6) > 1e-6 || m[1] != 0 {
		t.Errorf("Mono = %v", m)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "loop.wav")
	// 1 s stereo 44.1 kHz loop -> 22.05 kHz mono 4 s window: tiled 4 times.
	st := make([]float32, 2*44100)
	for i := 0; i < 44100; i++ {
		v := float32(0.5 * math.Sin(2*math.Pi*220*float64(i)/44100))
		st[2*i], st[2*i+1] = v, v
	}
	var buf bytes.Buffer
	writeStereoWAV(&buf, st, 44100)
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	w, info, err := Load(t.Context(), p, LoadOptions{SampleRate: 22050, WindowSeconds: 4})
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 88200 || info.Channels != 2 || info.SampleRate != 44100 || info.Duration != time.Second {
		t.Fatalf("len %d info %+v", len(w), info)
	}
	if w[100] != w[22050+100] {
		t.Errorf("window is not the loop tiled")
	}
}

func writeStereoWAV(b *bytes.Buffer, inter []float32, rate int) {
	b.WriteString("RIFF")
	binary.Write(b, binary.LittleEndian, uint32(36+len(inter)*2))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(2), uint32(rate), uint32(rate * 4), uint16(4), uint16(16)} {
		binary.Write(b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(b, binary.LittleEndian, uint32(len(inter)*2))
	for _, v := range inter {
		binary.Write(b, binary.LittleEndian, int16(v*32767))
	}
}

func TestSniff(t *testing.T) {
	cases := map[string]Format{
		"RIFF\x00\x00\x00\x00WAVE": WAV, "RF64\xff\xff\xff\xffWAVE": RF64, "FORM\x00\x00\x00\x00AIFF": AIFF,
		"FORM\x00\x00\x00\x00AIFC": AIFC, "fLaC\x00\x00\x00\x22": FLAC, "OggS\x00\x02": OGG,
		"ID3\x03\x00\x00\x00\x00\x00\x00fLaC": FLAC, "RIFF\x00\x00\x00\x00AVI ": Unknown, "\xff\xfb\x90": Unknown, "": Unknown,
	}
	for in, want := range cases {
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBrokenFiles: every kind of damage gives a typed error, never a panic, a hang or a
// huge allocation.
func TestBrokenFiles(t *testing.T) {
	good := wavBytes(t, sine(440, 22050, 4410), 22050, PCM16)
	le32 := func(b []byte, off int, v uint32) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(c[off:], v)
		return c
	}
	le16 := func(b []byte, off int, v uint16) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint16(c[off:], v)
		return c
	}
	be32 := func(b []byte, off int, v uint32) []byte {
		c := append([]byte(nil), b...)
		binary.BigEndian.PutUint32(c[off:], v)
		return c
	}
	aiff := func(comm []byte, ssnd []byte, form string) []byte {
		var b bytes.Buffer
		b.WriteString("FORM")
		binary.Write(&b, binary.BigEndian, uint32(4+8+len(comm)+8+len(ssnd)))
		b.WriteString(form)
		b.WriteString("COMM")
		binary.Write(&b, binary.BigEndian, uint32(len(comm)))
		b.Write(comm)
		if ssnd != nil {
			b.WriteString("SSND")
			binary.Write(&b, binary.BigEndian, uint32(len(ssnd)))
			b.Write(ssnd)
		}
		return b.Bytes()
	}
	comm := func(ch uint16, frames uint32, bits uint16, rateExp uint16) []byte {
		c := make([]byte, 18)
		binary.BigEndian.PutUint16(c[0:], ch)
		binary.BigEndian.PutUint32(c[2:], frames)
		binary.BigEndian.PutUint16(c[6:], bits)
		binary.BigEndian.PutUint16(c[8:], rateExp)     // 2^(exp-16383) * mant/2^63
		binary.BigEndian.PutUint64(c[10:], 0xAC44<<48) // 44100 with exp 16398
		return c
	}
	flacGood := readOrMake(t, "flac")
	oggGood := readOrMake(t, "ogg")
	// flacFrames rewrites STREAMINFO's 36-bit total-samples field (bytes 21..25).
	flacFrames := func(n uint64) []byte {
		c := append([]byte(nil), flacGood...)
		if string(c[:4]) != "fLaC" || c[4]&0x7f != 0 {
			t.Fatalf("sox FLAC does not start with STREAMINFO")
		}
		c[21] = c[21]&0xf0 | byte(n>>32)&0x0f
		binary.BigEndian.PutUint32(c[22:], uint32(n))
		return c
	}
	rf64 := func(dataSize uint64) []byte {
		var b bytes.Buffer
		b.WriteString("RF64\xff\xff\xff\xffWAVEds64")
		binary.Write(&b, binary.LittleEndian, uint32(28))
		binary.Write(&b, binary.LittleEndian, []uint64{dataSize + 36, dataSize, dataSize / 2})
		binary.Write(&b, binary.LittleEndian, uint32(0))
		b.Write(good[12:36]) // fmt chunk of the 16-bit mono file
		b.WriteString("data\xff\xff\xff\xff")
		b.Write(good[44:])
		return b.Bytes()
	}
	if _, err := DecodeBytes(rf64(uint64(len(good)-44)), DefaultLimits()); err != nil {
		t.Fatalf("the valid RF64 the damage cases start from does not decode: %v", err)
	}
	opus := readOrMakeFF(t, "opus.ogg", "-c:a", "libopus")

	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"garbage", []byte("this is not audio at all, just text"), ErrUnsupported},
		{"mp3 frame", []byte{0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0}, ErrUnsupported},
		{"wav header only", good[:12], ErrCorrupt},
		{"wav truncated fmt", good[:30], ErrTruncated},
		{"wav truncated data", good[:len(good)-100], ErrTruncated},
		{"wav no data chunk", good[:36], ErrCorrupt},
		{"wav zero channels", le16(good, 22, 0), ErrCorrupt},
		{"wav 1000 channels", le16(good, 22, 1000), ErrCorrupt},
		{"wav zero rate", le32(good, 24, 0), ErrCorrupt},
		{"wav zero bits", le16(good, 34, 0), ErrCorrupt},
		{"wav 12-bit float", le16(le16(good, 20, 3), 34, 12), ErrUnsupported},
		{"wav adpcm", le16(good, 20, 2), ErrUnsupported},
		{"wav data declares 4 GB", le32(good, 40, 0xFFFFFFF0), ErrTooLarge},
		{"wav fmt declares 4 GB", le32(good, 16, 0xFFFFFFF0), ErrTooLarge},
		{"wav short fmt chunk", le32(good, 16, 8), ErrCorrupt},
		{"wav extensible too short", le16(good, 20, 0xFFFE), ErrCorrupt},
		{"rf64 without ds64", append([]byte("RF64"), le32(good, 40, 0xFFFFFFFF)[4:]...), ErrCorrupt},
		{"aiff no COMM", []byte("FORM\x00\x00\x00\x04AIFF"), ErrCorrupt},
		{"aiff short COMM", aiff(make([]byte, 10), nil, "AIFF"), ErrCorrupt},
		{"aiff zero rate", aiff(make([]byte, 18), nil, "AIFF"), ErrCorrupt},
		{"aiff declares 4G frames", aiff(comm(2, 0xFFFFFFFF, 16, 16398), make([]byte, 8), "AIFF"), ErrTooLong},
		{"aiff missing SSND", aiff(comm(1, 100, 16, 16398), nil, "AIFF"), ErrCorrupt},
		{"aiff truncated SSND", aiff(comm(1, 1000, 16, 16398), make([]byte, 108), "AIFF"), ErrTruncated},
		{"aifc unknown codec", aiff(append(comm(1, 10, 16, 16398), "ima4\x00\x00"...), make([]byte, 40), "AIFC"), ErrUnsupported},
		{"aifc without codec", aiff(comm(1, 10, 16, 16398), make([]byte, 40), "AIFC"), ErrCorrupt},
		{"flac magic only", []byte("fLaC"), ErrCorrupt},
		{"flac truncated", flacGood[:len(flacGood)*2/3], ErrTruncated},
		{"flac corrupt frames", corruptTail(flacGood, 200), ErrCorrupt},
		{"ogg magic only", []byte("OggS\x00\x02\x00\x00"), ErrTruncated},
		{"ogg truncated", oggGood[:len(oggGood)/2], ErrTruncated},
		{"ogg corrupt pages", corruptTail(oggGood, 300), ErrCorrupt},
		{"ogg opus", opus, ErrUnsupported},
		// Found by fuzzing: jfreymuth/oggvorbis indexes past a page with no segments
		// and panics; guard must turn that into an error.
		{"ogg page without segments", []byte("OggS\x00000000000000000000000\x00"), ErrCorrupt},
		{"flac declares 9 min in 1 s of data", flacFrames(9 * 60 * 22050), ErrTruncated},
		{"flac declares 2 hours", flacFrames(2 * 3600 * 22050), ErrTooLong},
		{"rf64 ds64 declares 1 TB", rf64(1 << 40), ErrTooLarge},
		{"rf64 truncated data", rf64(uint64(len(good) - 44 + 1000)), ErrTruncated},
		{"wav 40-bit integer", le32(le16(le16(good, 34, 40), 32, 5), 28, 5*22050), ErrUnsupported},
		{"wav 7-bit integer", le16(good, 34, 7), ErrUnsupported},
		{"wav 12-bit integer", le16(le16(good, 34, 12), 32, 2), ErrUnsupported},
		{"wav RIFF declares 2 GB", le32(good, 4, 0x7FFFFFF0), ErrTooLarge},
		{"wav RIFF declares more than the file", le32(good, 4, uint32(len(good)+1000)), ErrTruncated},
		{"aiff FORM declares 2 GB", be32(aiff(comm(1, 10, 16, 16398), make([]byte, 28), "AIFF"), 4, 0x7FFFFFF0), ErrTooLarge},
		{"aiff FORM declares more than the file", be32(aiff(comm(1, 10, 16, 16398), make([]byte, 28), "AIFF"), 4, 5000), ErrTruncated},
		{"aiff SSND declares 4 GB", be32(aiff(comm(1, 10, 16, 16398), make([]byte, 28), "AIFF"), 12+8+18+4, 0xFFFFFFF0), ErrTooLarge},
		{"aiff NaN rate", aiff(comm(1, 10, 16, 0x7fff), make([]byte, 28), "AIFF"), ErrCorrupt},
		{"aiff 1000 channels", aiff(comm(1000, 10, 16, 16398), make([]byte, 28), "AIFF"), ErrCorrupt},
		{"aiff 40-bit integer samples", aiff(comm(1, 10, 40, 16398), make([]byte, 60), "AIFF"), ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := DecodeBytes(c.data, DefaultLimits())
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("no error")
			}
			if !errors.Is(err, c.want) && !(c.want == ErrCorrupt && errors.Is(err, ErrTruncated)) && !(c.want == ErrTruncated && errors.Is(err, ErrCorrupt)) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
			// Every file here is under 100 KB; 16 MB would be a header believed.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("allocated %d MB for a broken file", grew>>20)
			}
			t.Logf("%v", err)
		})
	}
	if len(cases) < 20 {
		t.Fatalf("%d kinds of broken file; the floor is 20", len(cases))
	}
}

// corruptTail flips bytes in the second half of a file, past the headers.
func corruptTail(b []byte, n int) []byte {
	c := append([]byte(nil), b...)
	for i := 0; i < n && len(c)/2+i*7 < len(c); i++ {
		c[len(c)/2+i*7] ^= 0x5a
	}
	return c
}

// readOrMakeFF makes a small file with ffmpeg for the damage tests.
func readOrMakeFF(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	requireTool(t, "ffmpeg")
	p := filepath.Join(t.TempDir(), name)
	a := append([]string{"-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.5"}, args...)
	run(t, "ffmpeg", append(a, p)...)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readOrMake makes a small valid FLAC or Ogg file with sox for the damage tests.
func readOrMake(t *testing.T, ext string) []byte {
	t.Helper()
	requireTool(t, "sox")
	p := filepath.Join(t.TempDir(), "ok."+ext)
	run(t, "sox", "-n", "-r", "22050", "-c", "2", "-b", "16", p, "synth", "1", "pinknoise", "vol", "0.5")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeFileLimits(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.wav")
	os.WriteFile(p, wavBytes(t, sine(440, 22050, 22050*3), 22050, PCM16), 0o644)
	if _, err := DecodeFile(t.Context(), p, Limits{MaxFileBytes: 1000}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("size limit: %v", err)
	}
	if _, err := DecodeFile(t.Context(), p, Limits{MaxDuration: time.Second}); !errors.Is(err, ErrTooLong) {
		t.Errorf("duration limit: %v", err)
	}
	if _, err := DecodeFile(t.Context(), filepath.Join(dir, "missing.wav"), Limits{}); err == nil {
		t.Error("missing file: want error")
	}
}

func TestDecodeReaderLimits(t *testing.T) {
	good := wavBytes(t, sine(440, 22050, 22050), 22050, PCM16)
	lim := Limits{MaxFileBytes: int64(len(good)) - 1}
	cases := []struct {
		name string
		size int64
		lim  Limits
		want error
	}{
		{"declared size over the limit", int64(len(good)), lim, ErrTooLarge},
		{"unknown size, stream over the limit", -1, lim, ErrTooLarge},
		{"size understated, stream over the limit", 10, lim, ErrTooLarge},
		{"unknown size within the limit", -1, DefaultLimits(), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Decode(bytes.NewReader(good), c.size, c.lim)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.want == nil && b.Frames() != 22050 {
				t.Fatalf("%d frames, want 22050", b.Frames())
			}
		})
	}
}

// TestTrailingDamage: chunks after the audio are never needed, so a damaged or absurd
// one there must not fail a file that players open fine.
func TestTrailingDamage(t *testing.T) {
	good := wavBytes(t, sine(440, 22050, 2205), 22050, PCM16)
	for _, tail := range [][]byte{
		[]byte("LIST\xf0\xff\xff\xff"),   // declares 4 GB
		[]byte("id3 \x10\x00\x00\x00ab"), // cut short
		[]byte("\x00\x01\x02"),           // not even a chunk header
	} {
		b, err := DecodeBytes(append(bytes.Clone(good), tail...), DefaultLimits())
		if err != nil || b.Frames() != 2205 {
			t.Errorf("tail %q: err %v", tail, err)
		}
	}
}

func TestLoadOptions(t *testing.T) {
	data := wavBytes(t, sine(440, 22050, 22050), 22050, PCM16)
	w, info, err := LoadBytes(data, LoadOptions{SampleRate: 16000})
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 4*16000 || info.SampleRate != 22050 || info.Format != WAV || info.BitDepth != 16 {
		t.Fatalf("default window: %d samples, info %+v", len(w), info)
	}
	for _, o := range []LoadOptions{
		{},
		{SampleRate: -1, WindowSeconds: 4},
		{SampleRate: 16000, WindowSeconds: -4},
		{SampleRate: 16000, WindowSeconds: math.NaN()},
		{SampleRate: 16000, WindowSeconds: MaxWindowSeconds * 2},
		{SampleRate: 16000, WindowSeconds: 1e-9},
	} {
		if _, _, err := LoadBytes(data, o); err == nil {
			t.Errorf("options %+v: want an error", o)
		}
	}
	if _, err := Window(sine(440, 1000, 1000), 1000, math.Inf(1)); err == nil {
		t.Error("infinite window: want an error")
	}
}
