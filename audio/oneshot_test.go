package audio

import (
	"errors"
	"testing"
)

// TestOneShot: a one-shot keeps its first n samples, zero padded, never tiled, and the
// window rule's checks refuse silence and audio too short to be anything.
func TestOneShot(t *testing.T) {
	hit := make([]float32, 2205) // 0.1 s at 22,050 Hz
	for i := range hit {
		hit[i] = 0.5
	}
	out, err := OneShot(hit, 22050, 22050)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 22050 || out[2204] != 0.5 || out[2205] != 0 || out[22049] != 0 {
		t.Fatalf("len %d, out[2204] %v out[2205] %v out[end] %v: want the hit then zeros", len(out), out[2204], out[2205], out[22049])
	}
	long := make([]float32, 44100)
	long[0], long[22049], long[22050] = 1, 0.25, 0.75
	out, err = OneShot(long, 22050, 22050)
	if err != nil || len(out) != 22050 || out[0] != 1 || out[22049] != 0.25 {
		t.Fatalf("cut: %v, len %d", err, len(out))
	}
	if _, err := OneShot(make([]float32, 22050), 22050, 22050); !errors.Is(err, ErrSilent) {
		t.Errorf("silence: %v, want ErrSilent", err)
	}
	if _, err := OneShot(hit[:10], 22050, 22050); !errors.Is(err, ErrTooShort) {
		t.Errorf("10 samples: %v, want ErrTooShort", err)
	}
	if _, err := OneShot(hit, 0, 22050); err == nil {
		t.Error("rate 0 accepted")
	}
}
