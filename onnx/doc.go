// Package onnx runs the model bundle's encoders, decoders, mappers and reranker (pairfront
// and scorer) in ONNX Runtime and loads and checks the bundle manifest. It knows nothing of
// audio files or storage: it takes and returns float32 tensors, row-major, batch first.
//
// One Runtime per process (the C library's environment is process-global), created in
// main and passed down; Runtime.Open gives a Model whose Run (RunInputs for the scorer's
// two inputs) is safe for concurrent use.
package onnx
