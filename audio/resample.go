package audio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/zaf/resample"
)

// Resample converts mono float32 from one rate to another with libsoxr at its very high
// quality setting (passband to 0.91 of Nyquist, stopband >= 170 dB): a loop's highs must
// not alias into the model's input.
func Resample(in []float32, fromRate, toRate int) ([]float32, error) {
	if fromRate <= 0 || toRate <= 0 {
		return nil, fmt.Errorf("resample %d Hz -> %d Hz: rates must be positive", fromRate, toRate)
	}
	if fromRate == toRate || len(in) == 0 {
		return append([]float32(nil), in...), nil
	}
	want := int(math.Round(float64(len(in)) * float64(toRate) / float64(fromRate)))
	var out bytes.Buffer
	out.Grow(want*4 + 1024)
	r, err := resample.New(&out, float64(fromRate), float64(toRate), 1, resample.F32, resample.VeryHighQ)
	if err != nil {
		return nil, fmt.Errorf("resample %d Hz -> %d Hz: libsoxr: %w", fromRate, toRate, err)
	}
	raw := make([]byte, 4*len(in))
	for i, v := range in {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	// soxr wants at least one output frame per write; very short inputs go in one piece.
	if _, err := r.Write(raw); err != nil && want > 0 {
		r.Close()
		return nil, fmt.Errorf("resample %d Hz -> %d Hz: libsoxr: %w", fromRate, toRate, err)
	}
	if err := r.Close(); err != nil {
		return nil, fmt.Errorf("resample %d Hz -> %d Hz: libsoxr flush: %w", fromRate, toRate, err)
	}
	b := out.Bytes()
	n := len(b) / 4
	res := make([]float32, want)
	for i := 0; i < n && i < want; i++ {
		res[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return res, nil
}
