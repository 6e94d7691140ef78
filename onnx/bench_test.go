package onnx

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkEncoderFullsize runs the production-shaped encoder (88200 samples in, 1024
// latent values out) over 64 rows with different chunk sizes, to choose MaxBatch.
func BenchmarkEncoderFullsize(b *testing.B) {
	enc := open(b, fullsizeBundle, drumEncoder)
	const rows = 64
	in := randRows(rand.New(rand.NewPCG(5, 6)), rows, enc.InputSize())
	cancellable, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct {
		maxBatch int
		ctx      context.Context
		name     string
	}{
		{1, context.Background(), "background"}, {8, context.Background(), "background"},
		{32, context.Background(), "background"}, {64, context.Background(), "background"},
		{32, cancellable, "cancellable"},
	} {
		b.Run(fmt.Sprintf("maxBatch=%d/ctx=%s", c.maxBatch, c.name), func(b *testing.B) {
			enc.SetMaxBatch(c.maxBatch)
			b.SetBytes(int64(rows * enc.InputSize() * 4))
			for b.Loop() {
				if _, err := enc.Run(c.ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkMapperCallOverhead: the small mapper is all per-call cost, so this measures
// what one ONNX Runtime call costs and what batching saves.
func BenchmarkMapperCallOverhead(b *testing.B) {
	mp := open(b, testBundle, drum2bass)
	const rows = 64
	in := randRows(rand.New(rand.NewPCG(1, 6)), rows, mp.InputSize())
	for _, maxBatch := range []int{1, 64} {
		b.Run(fmt.Sprintf("maxBatch=%d", maxBatch), func(b *testing.B) {
			mp.SetMaxBatch(maxBatch)
			for b.Loop() {
				if _, err := mp.Run(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkEncoderParallel: many goroutines sharing one session, as the HTTP service does.
func BenchmarkEncoderParallel(b *testing.B) {
	enc := open(b, fullsizeBundle, drumEncoder)
	in := randRows(rand.New(rand.NewPCG(3, 6)), 4, enc.InputSize())
	b.SetBytes(int64(len(in) * 4))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := enc.Run(context.Background(), in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkShippedClassifierVsEncoder: what the instrument classifier adds to ingest per
// loop, beside the drum encoder it runs next to, at ingest's batch of 16 (shipped bundle).
func BenchmarkShippedClassifierVsEncoder(b *testing.B) {
	bundle, err := LoadBundle(shippedBundle)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bundle.Classifier(); err != nil {
		b.Skip("the shipped bundle has no classifier")
	}
	const rows = 16
	for _, c := range []struct {
		name string
		pick func(*Bundle) (ModelSpec, error)
	}{{"classifier", (*Bundle).Classifier}, {"drum_encoder", drumEncoder}} {
		b.Run(c.name, func(b *testing.B) {
			m := open(b, shippedBundle, c.pick)
			in := randRows(rand.New(rand.NewPCG(7, 6)), rows, m.InputSize())
			for b.Loop() {
				if _, err := m.Run(context.Background(), in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(rows*b.N), "ms/loop")
		})
	}
}
