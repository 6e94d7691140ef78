package analysis

// Options choose what Analyze estimates.
type Options struct {
	// Key: estimate a key (tonal loops; leave it off for drum loops, which have none).
	Key bool
}

// Result is what Analyze found. An estimate that failed has its error set and its
// value zero; the other estimate still stands.
type Result struct {
	Tempo    Tempo
	TempoErr error
	Key      Key
	KeyErr   error // nil and Key zero when Options.Key is off
}

// Analyze estimates a loop's tempo and (with Options.Key) its key from pcm (mono at
// rate: the loop, or the model's window of it) and the whole loop's duration in
// seconds (0 when unknown). It fails only on input neither estimator can read; an
// estimate that finds nothing is reported in its own error.
func Analyze(pcm []float32, rate int, duration float64, o Options) (Result, error) {
	var r Result
	if err := checkInput(pcm, rate); err != nil {
		return r, err
	}
	r.Tempo, r.TempoErr = EstimateTempo(pcm, rate, duration)
	if o.Key {
		r.Key, r.KeyErr = EstimateKey(pcm, rate)
	}
	return r, nil
}
