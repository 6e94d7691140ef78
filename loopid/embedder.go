package loopid

import "strings"

// EmbedderSeparator joins a collection's name and an embedder's (onnx role embedder) in
// the name of the collection that holds that embedder's vectors of the same loops, under
// the same ids: loops_bass__emb_musicnn_vgg beside loops_bass.
const EmbedderSeparator = "__emb_"

// EmbedderCollection names the collection of an embedder's vectors of the loops in
// collection.
func EmbedderCollection(collection, embedder string) string {
	return collection + EmbedderSeparator + embedder
}

// ParseEmbedderCollection splits a name EmbedderCollection made into the loops'
// collection and the embedder; ok is false for any other name.
func ParseEmbedderCollection(name string) (collection, embedder string, ok bool) {
	i := strings.LastIndex(name, EmbedderSeparator)
	if i <= 0 {
		return "", "", false
	}
	collection, embedder = name[:i], name[i+len(EmbedderSeparator):]
	return collection, embedder, ValidInstrument(embedder) // the same rule as an instrument name
}
