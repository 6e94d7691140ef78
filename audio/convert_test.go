package audio

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestConvertFastPaths: the 16- and 24-bit little-endian loops give, for every sample
// value, the float32 of the general integer path (float64 product, then float32).
func TestConvertFastPaths(t *testing.T) {
	for _, width := range []int{2, 3} {
		n := 1 << (8 * width)
		raw := make([]byte, n*width)
		for v := 0; v < n; v++ {
			for b := 0; b < width; b++ {
				raw[v*width+b] = byte(v >> (8 * b))
			}
		}
		got, err := convert(raw, kindPCMLE, width)
		if err != nil {
			t.Fatal(err)
		}
		scale := 1 / float64(uint64(1)<<(8*width-1))
		shift := 32 - 8*width
		for v := 0; v < n; v++ {
			iv := int32(uint32(v)<<shift) >> shift
			if want := float32(float64(iv) * scale); math.Float32bits(got[v]) != math.Float32bits(want) {
				t.Fatalf("%d-bit sample %#x: %v, want %v", 8*width, v, got[v], want)
			}
		}
	}
}

// TestMonoStereoSameBits: the stereo loop gives the general loop's bits, signed zeros
// included.
func TestMonoStereoSameBits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1e-30, -1e-30, 0.5, float32(math.SmallestNonzeroFloat32)}
	var d []float32
	for _, a := range vals {
		for _, b := range vals {
			d = append(d, a, b)
		}
	}
	for range 10000 {
		d = append(d, r.Float32()*2-1, r.Float32()*2-1)
	}
	got := (&Buffer{Channels: 2, Data: d}).Mono()
	for i := range got {
		var s float32
		for _, v := range d[2*i : 2*i+2] {
			s += v
		}
		if want := s * (1 / float32(2)); math.Float32bits(got[i]) != math.Float32bits(want) {
			t.Fatalf("frame %d (%v, %v): %v, want %v", i, d[2*i], d[2*i+1], got[i], want)
		}
	}
}
