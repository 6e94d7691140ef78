package analysis

import (
	"fmt"
	"math"

	"github.com/loopmatch/loopmatch/loopid"
)

// Key is an estimate of a tonal loop's key.
type Key struct {
	Key string // loopid's canonical spelling: "Am", "F#m", "Bb", ...
	// Confidence in 0..1: the best key's correlation with its profile, scaled down
	// when the runner-up (other than its relative, which shares its notes) is close.
	Confidence float64
}

// Key profiles: the weight of each scale degree (tonic first) in the loops of that
// mode. Published profiles (Krumhansl's, Temperley's) come from classical melodies and
// chords, where the third and the other scale tones weigh almost as much as the tonic;
// in electronic bass lines the tonic and fifth carry most of it, as EDMA-style
// profiles for electronic music say. These are the mean chroma of the corpus's train
// split's bass loops, rotated to their tonic (`go run ./analysis/measure -fit`, see
// README), never of held-out loops.
var (
	majorProfile = [12]float64{5.00, 0.13, 0.19, 0.08, 0.85, 0.57, 0.16, 1.72, 0.10, 0.69, 0.08, 0.34}
	minorProfile = [12]float64{5.00, 0.10, 0.18, 0.59, 0.21, 0.48, 0.13, 1.60, 0.51, 0.07, 0.55, 0.07}
)

// keyNames[pc] and keyNames[12+pc]: the major and minor key on pitch class pc, in
// loopid's spelling.
var keyNames = func() (out [24]string) {
	sharp := [12]string{"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"}
	for pc, n := range sharp {
		out[pc], _ = loopid.NormalizeKey(n)
		out[12+pc], _ = loopid.NormalizeKey(n + "m")
	}
	return out
}()

// keyIndex: 0..11 major on that pitch class, 12..23 minor; -1 for no key.
func keyIndex(k string) int {
	for i, n := range keyNames {
		if n == k {
			return i
		}
	}
	return -1
}

// KeyPitch returns a key's tonic pitch class (C = 0) and whether it is minor; tonic
// is -1 for a string that is not a key in loopid's spelling.
func KeyPitch(key string) (tonic int, minor bool) {
	i := keyIndex(key)
	if i < 0 {
		return -1, false
	}
	return i % 12, i >= 12
}

// EstimateKey estimates the key of a tonal loop from its audio (mono pcm at rate):
// the chroma profile is correlated with every rotation of the major and minor
// profiles and the best wins (Krumhansl-Schmuckler). Drum loops have no key: callers
// skip them.
func EstimateKey(pcm []float32, rate int) (Key, error) {
	c, err := Chroma(pcm, rate)
	if err != nil {
		return Key{}, err
	}
	return keyFromChroma(c)
}

func keyFromChroma(c [12]float64) (Key, error) {
	var r [24]float64
	for tonic := 0; tonic < 12; tonic++ {
		var maj, min [12]float64
		for d := 0; d < 12; d++ {
			maj[(tonic+d)%12] = majorProfile[d]
			min[(tonic+d)%12] = minorProfile[d]
		}
		r[tonic] = pearson(c, maj)
		r[12+tonic] = pearson(c, min)
	}
	best := 0
	for i, v := range r {
		if v > r[best] {
			best = i
		}
	}
	if !(r[best] > 0) {
		return Key{}, fmt.Errorf("%w: the pitch classes fit no key", ErrNoEstimate)
	}
	rel := relativeOf(best)
	second := math.Inf(-1)
	for i, v := range r {
		if i != best && i != rel {
			second = math.Max(second, v)
		}
	}
	margin := math.Min(1, math.Max(0, (r[best]-second)/0.2))
	return Key{Key: keyNames[best], Confidence: r[best] * (0.5 + 0.5*margin)}, nil
}

// relativeOf: the relative minor of a major key index, or the relative major of a
// minor one.
func relativeOf(i int) int {
	if i < 12 {
		return 12 + (i+9)%12
	}
	return (i - 12 + 3) % 12
}

func pearson(a, b [12]float64) float64 {
	var ma, mb float64
	for i := range a {
		ma += a[i]
		mb += b[i]
	}
	ma /= 12
	mb /= 12
	var num, da, db float64
	for i := range a {
		x, y := a[i]-ma, b[i]-mb
		num += x * y
		da += x * x
		db += y * y
	}
	if da == 0 || db == 0 {
		return 0
	}
	return num / math.Sqrt(da*db)
}

// CompareKeys classifies an estimated key against the true one as MIREX does and
// returns the class ("exact", "fifth", "relative", "parallel", "other") and its weight
// (1, 0.5, 0.3, 0.2, 0). Keys are in loopid's spelling; an unknown one is "other".
func CompareKeys(truth, est string) (string, float64) {
	t, e := keyIndex(truth), keyIndex(est)
	if t < 0 || e < 0 {
		return "other", 0
	}
	tm, em := t >= 12, e >= 12
	tp, ep := t%12, e%12
	switch {
	case t == e:
		return "exact", 1
	case tm == em && (ep == (tp+7)%12 || ep == (tp+5)%12):
		return "fifth", 0.5
	case e == relativeOf(t):
		return "relative", 0.3
	case tm != em && tp == ep:
		return "parallel", 0.2
	}
	return "other", 0
}
