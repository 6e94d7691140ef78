// Package vectordb stores loop embeddings, one collection per instrument, and searches
// them by cosine similarity. Store is the contract; embedded/ (bbolt, exact search, the
// default) and milvus/ (HNSW, the scale-out backend) implement it and must give the
// same answers: vectordbtest/ is the one conformance suite both run. The package knows
// nothing of audio or models: rows carry a bundle id, vectors are plain float32.
package vectordb
