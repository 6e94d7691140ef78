package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// loopSpec is one synthetic loop: what it sounds like and how it is stored. Everything is
// derived from (seed, index), so a library regenerates byte for byte.
type loopSpec struct {
	index      int
	instrument string // "drum" or "bass": the folder name ingest infers it from
	pack       int
	bpm        int
	bars       int
	key        int // semitone of the root, 0 = C
	minor      bool
	rate       int
	channels   int
	format     string // wav16, wav24, flac, aiff, ogg
}

var (
	tempos    = []int{85, 90, 95, 100, 110, 122, 124, 126, 128, 130, 134, 140, 150, 160, 170, 174}
	noteNames = []string{"C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"}
)

// loopsPerPack: each pack holds drum and bass loops at one tempo and key, as a real
// loop pack does.
const loopsPerPack = 8

// library says how a library's loops are drawn.
type library struct {
	seed    uint64
	formats []string
	// monoRate, when set, stores every loop mono at this rate instead of the mix of
	// 44.1/48 kHz stereo and 22.05 kHz mono (the other draws are unchanged).
	monoRate int
}

func (l library) spec(i int) loopSpec {
	s := specFor(l.seed, i, l.formats)
	if l.monoRate > 0 {
		s.rate, s.channels = l.monoRate, 1
	}
	return s
}

func specFor(seed uint64, i int, formats []string) loopSpec {
	pack := i / loopsPerPack
	pr := rand.New(rand.NewPCG(seed, uint64(pack)+1<<40)) // the pack's shared tempo and key
	s := loopSpec{index: i, pack: pack, bpm: tempos[pr.IntN(len(tempos))], key: pr.IntN(12), minor: pr.IntN(3) > 0}
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	s.instrument = "drum"
	if i%2 == 1 {
		s.instrument = "bass"
	}
	s.bars = []int{1, 2, 4}[r.IntN(3)]
	switch p := r.IntN(100); {
	case p < 45:
		s.rate, s.channels = 44100, 2
	case p < 80:
		s.rate, s.channels = 48000, 2
	default:
		s.rate, s.channels = 22050, 1
	}
	s.format = formats[r.IntN(len(formats))]
	return s
}

func (s loopSpec) keyName() string {
	k := noteNames[s.key]
	if s.minor {
		k += "m"
	}
	return k
}

// relPath puts the loop under PACK/drums/ or PACK/bass/: the pack is the first folder
// level (ingest's default --pack-level 1) and the instrument comes from the folder name.
func (s loopSpec) relPath() string {
	folder := "drums"
	if s.instrument == "bass" {
		folder = "bass"
	}
	ext := map[string]string{"wav16": ".wav", "wav24": ".wav", "flac": ".flac", "aiff": ".aiff", "ogg": ".ogg"}[s.format]
	name := fmt.Sprintf("%s_loop_%06d_%dbpm_%s_%dbar%s", s.instrument, s.index, s.bpm, s.keyName(), s.bars, ext)
	return filepath.Join(fmt.Sprintf("Pack%05d", s.pack), folder, name)
}

// render synthesises the loop as interleaved samples in [-1, 1]. Drums: a pitched kick with
// a falling sweep, a noise snare and hats on a per-loop pattern with swing; bass: a
// filtered saw/square line on the pack's key. A little per-file noise and random
// parameters make every file, and so every content hash, distinct.
func (s loopSpec) render(seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(s.index)))
	beat := 60 / float64(s.bpm)
	frames := int(math.Round(float64(s.bars*4) * beat * float64(s.rate)))
	mono := make([]float64, frames)
	step := beat / 4 // sixteenth notes
	steps := s.bars * 16
	swing := r.Float64() * 0.2 * step
	at := func(k int) int {
		t := float64(k) * step
		if k%2 == 1 {
			t += swing
		}
		return int(t * float64(s.rate))
	}
	sr := float64(s.rate)
	if s.instrument == "drum" {
		kickPitch := 45 + r.Float64()*25
		kickDecay := 6 + r.Float64()*10
		snareTone := 160 + r.Float64()*80
		hatDecay := 40 + r.Float64()*80
		hatEvery := []int{1, 2, 2, 4}[r.IntN(4)]
		kickPattern := r.Uint32() | 1 // always a kick on the one
		for k := 0; k < steps; k++ {
			pos := k % 16
			if pos%4 == 0 && kickPattern&(1<<(pos/2)) != 0 || pos == 0 || (pos%2 == 0 && r.IntN(10) == 0) {
				addEnv(mono, sr, at(k), int(0.35*sr), func(t float64) float64 {
					f := kickPitch * (1 + 3*math.Exp(-t*40))
					return 0.9 * math.Sin(2*math.Pi*f*t) * math.Exp(-t*kickDecay)
				})
			}
			if pos == 4 || pos == 12 || (pos%2 == 1 && r.IntN(14) == 0) {
				addEnv(mono, sr, at(k), int(0.2*sr), func(t float64) float64 {
					return (0.5*(r.Float64()*2-1) + 0.3*math.Sin(2*math.Pi*snareTone*t)) * math.Exp(-t*25)
				})
			}
			if pos%hatEvery == 0 {
				prev := 0.0
				addEnv(mono, sr, at(k), int(0.06*sr), func(t float64) float64 {
					n := r.Float64()*2 - 1
					hp := n - prev // crude high-pass: hats are bright
					prev = n
					return 0.15 * hp * math.Exp(-t*hatDecay)
				})
			}
		}
	} else {
		root := 32.70 * math.Pow(2, float64(s.key)/12) // C1 and up
		scale := []int{0, 2, 4, 5, 7, 9, 11}
		if s.minor {
			scale = []int{0, 2, 3, 5, 7, 8, 10}
		}
		square := r.IntN(2) == 0
		cutoff := 0.02 + r.Float64()*0.08
		noteLen := []int{2, 4, 4, 8}[r.IntN(4)]
		lp := 0.0
		for k := 0; k < steps; k += noteLen {
			if r.IntN(6) == 0 {
				continue // a rest
			}
			deg := scale[[]int{0, 0, 0, 4, 3, 5, 6}[r.IntN(7)]%len(scale)]
			oct := float64(r.IntN(2))
			f := root * math.Pow(2, float64(deg)/12+oct)
			dur := int(float64(noteLen) * step * sr * 0.9)
			phase := r.Float64()
			addEnv(mono, sr, at(k), dur, func(t float64) float64 {
				ph := math.Mod(phase+f*t, 1)
				v := 2*ph - 1
				if square {
					v = math.Copysign(1, v)
				}
				lp += cutoff * (v - lp)
				env := math.Min(1, t*200) * math.Exp(-t*2)
				return 0.6 * lp * env
			})
		}
	}
	out := make([]float64, frames*s.channels)
	pan := 0.35 + 0.3*r.Float64()
	for i, v := range mono {
		v += 1e-4 * (r.Float64()*2 - 1) // dither: no two files share their bytes
		v = math.Tanh(v)
		if s.channels == 1 {
			out[i] = v
			continue
		}
		out[2*i] = v * (1 - pan) * 1.4
		out[2*i+1] = v * pan * 1.4
	}
	return out
}

// addEnv adds f(t), t in seconds, for n samples from frame start (clipped to the loop).
func addEnv(dst []float64, sr float64, start, n int, f func(t float64) float64) {
	for i := 0; i < n && start+i < len(dst); i++ {
		dst[start+i] += f(float64(i) / sr)
	}
}

// writeWAV writes interleaved samples as integer PCM WAV (16 or 24 bit): the audio
// package's encoder writes mono 16-bit or float only, and libraries are mostly stereo.
func writeWAV(path string, samples []float64, rate, channels, bits int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	bps := bits / 8
	dataLen := len(samples) * bps
	hdr := make([]byte, 44)
	copy(hdr[0:], "RIFF")
	binary.LittleEndian.PutUint32(hdr[4:], uint32(36+dataLen))
	copy(hdr[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(hdr[16:], 16)
	binary.LittleEndian.PutUint16(hdr[20:], 1)
	binary.LittleEndian.PutUint16(hdr[22:], uint16(channels))
	binary.LittleEndian.PutUint32(hdr[24:], uint32(rate))
	binary.LittleEndian.PutUint32(hdr[28:], uint32(rate*channels*bps))
	binary.LittleEndian.PutUint16(hdr[32:], uint16(channels*bps))
	binary.LittleEndian.PutUint16(hdr[34:], uint16(bits))
	copy(hdr[36:], "data")
	binary.LittleEndian.PutUint32(hdr[40:], uint32(dataLen))
	w.Write(hdr)
	full := float64(int64(1)<<(bits-1) - 1)
	var b [3]byte
	for _, v := range samples {
		q := int32(math.Round(math.Max(-1, math.Min(1, v)) * full))
		switch bits {
		case 16:
			binary.LittleEndian.PutUint16(b[:], uint16(int16(q)))
			w.Write(b[:2])
		case 24:
			b[0], b[1], b[2] = byte(q), byte(q>>8), byte(q>>16)
			w.Write(b[:3])
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// generate writes loops from to to-1 of the library under root, skipping the work when a
// previous run with the same range and library completed there. It returns their paths.
func generate(ctx context.Context, root string, lib library, from, to int) ([]string, error) {
	stamp := fmt.Sprintf("loops=%d-%d seed=%d formats=%s mono-rate=%d\n", from, to, lib.seed, strings.Join(lib.formats, ","), lib.monoRate)
	done := filepath.Join(root, ".complete")
	paths := make([]string, to-from)
	for i := range paths {
		paths[i] = filepath.Join(root, lib.spec(from+i).relPath())
	}
	if b, err := os.ReadFile(done); err == nil && string(b) == stamp {
		return paths, nil
	}
	if err := os.RemoveAll(root); err != nil {
		return nil, fmt.Errorf("clear %s: %w", root, err)
	}
	idx := make(chan int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := writeLoop(ctx, root, lib.seed, lib.spec(i)); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := from; i < to; i++ {
		select {
		case idx <- i:
		case err := <-errs:
			close(idx)
			wg.Wait()
			return nil, err
		case <-ctx.Done():
			close(idx)
			wg.Wait()
			return nil, ctx.Err()
		}
	}
	close(idx)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := os.WriteFile(done, []byte(stamp), 0o644); err != nil {
		return nil, fmt.Errorf("mark %s complete: %w", root, err)
	}
	return paths, nil
}

func writeLoop(ctx context.Context, root string, seed uint64, s loopSpec) error {
	path := filepath.Join(root, s.relPath())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("loop %d: %w", s.index, err)
	}
	samples := s.render(seed)
	switch s.format {
	case "wav16":
		return writeWAV(path, samples, s.rate, s.channels, 16)
	case "wav24":
		return writeWAV(path, samples, s.rate, s.channels, 24)
	}
	// FLAC, AIFF and Ogg Vorbis come from sox, a real encoder: the audio package only
	// decodes them.
	tmp := path + ".tmp.wav"
	bits := 16
	if s.format == "flac" && s.index%3 == 0 {
		bits = 24
	}
	if err := writeWAV(tmp, samples, s.rate, s.channels, bits); err != nil {
		return err
	}
	defer os.Remove(tmp)
	args := []string{"-q", tmp}
	if s.format == "ogg" {
		args = append(args, "-C", "5")
	}
	args = append(args, path)
	out, err := exec.CommandContext(ctx, "sox", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("sox %s: %w: %s (install sox, or use -formats wav16,wav24)", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func parseFormats(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case "wav16", "wav24", "flac", "aiff", "ogg":
			out = append(out, f)
		case "":
		default:
			return nil, fmt.Errorf("format %q: want wav16, wav24, flac, aiff or ogg", f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no formats in %q", s)
	}
	return out, nil
}

// writeCopy writes copy k of the library's WAV files under dir, at the same relative
// paths: each file gains an unknown RIFF chunk "LMcp" holding k after its audio, so its
// bytes (and its id) differ from every other copy's while decoders read the same audio.
func writeCopy(lib, dir string, paths []string, k int) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, p := range paths {
		rel, err := filepath.Rel(lib, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if len(data) < 12 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WAVE" || len(data)%2 != 0 {
			return fmt.Errorf("%s: not an even-sized RIFF WAVE file", p)
		}
		chunk := binary.LittleEndian.AppendUint32([]byte("LMcp"), 4)
		chunk = binary.LittleEndian.AppendUint32(chunk, uint32(k))
		data = append(data, chunk...)
		binary.LittleEndian.PutUint32(data[4:], uint32(len(data)-8))
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
