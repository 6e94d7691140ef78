package loopid

import "testing"

func TestEmbedderCollection(t *testing.T) {
	name := EmbedderCollection(Collection("bass"), "musicnn_vgg")
	if name != "loops_bass__emb_musicnn_vgg" {
		t.Fatalf("EmbedderCollection = %q", name)
	}
	c, e, ok := ParseEmbedderCollection(name)
	if !ok || c != "loops_bass" || e != "musicnn_vgg" {
		t.Errorf("Parse(%q) = %q %q %v", name, c, e, ok)
	}
	for _, bad := range []string{"loops_bass", "__emb_x", "loops_bass__emb_", "loops_bass__emb_Bad", WindowsCollection("loops_bass")} {
		if _, _, ok := ParseEmbedderCollection(bad); ok {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
