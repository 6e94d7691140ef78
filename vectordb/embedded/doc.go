// Package embedded is the default vector store: one bbolt file in a data folder, exact
// cosine search over an in-memory matrix of unit vectors with SIMD dot products.
//
// Durability comes from bbolt: every Upsert or Delete is one transaction, so after a
// crash (kill -9 included) a row is whole or absent; each stored row also carries a
// CRC-32 that Open verifies. Memory: the unit vectors of every collection stay in RAM
// (rows x dim x 4 bytes: 100k rows of 1024 dims is 400 MB) next to their scalar fields;
// embeddings as given are read back from the file only by Get.
//
// One process at a time: bbolt's file lock makes a second Open fail with
// vectordb.ErrLocked instead of corrupting the file. Within a process one writer runs
// at a time and searches run concurrently with it.
package embedded
