package audio

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

// TestLoadMinDuration: a 20 ms tick is too short for a loop, and loads as a one-shot with
// OneShotMinDuration; a minimum under that is refused.
func TestLoadMinDuration(t *testing.T) {
	const rate = 44100
	x := make([]float32, rate/50)
	for i := range x {
		x[i] = float32(0.5 * math.Sin(float64(i)))
	}
	var buf bytes.Buffer
	if err := EncodeWAV(&buf, x, rate, PCM16); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadLoopBytes(buf.Bytes(), LoadOptions{SampleRate: 22050}); !errors.Is(err, ErrTooShort) {
		t.Fatalf("a loop: %v, want ErrTooShort", err)
	}
	l, err := LoadLoopBytes(buf.Bytes(), LoadOptions{SampleRate: 22050, MinDuration: OneShotMinDuration})
	if err != nil || len(l.Mono) < 400 {
		t.Fatalf("a one-shot: %v", err)
	}
	if _, err := OneShot(l.Mono, l.Rate, 22050); err != nil {
		t.Errorf("one-shot window: %v", err)
	}
	if _, err := LoadLoopBytes(buf.Bytes(), LoadOptions{SampleRate: 22050, MinDuration: time.Millisecond}); err == nil {
		t.Error("a 1 ms minimum was accepted")
	}
}
