// Package milvus is the scale-out vectordb.Store: Milvus standalone or cluster through
// the official Go SDK, an HNSW index with the COSINE metric per collection.
//
// Each collection's schema: id VarChar primary key; instrument, pack, path, key,
// bundle_id VarChar; bpm, duration Double; sample_rate, ingested_at Int64; embedding
// FloatVector(dim). The bundle id also lives in the collection description so a
// mismatch is caught before any row is read. The index is created before the
// collection is loaded, as Milvus requires. Filters become expressions built only from
// typed values, every string escaped.
package milvus
