package embedded

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb"
)

// A row written before the provenance fields existed (its JSON lacks them) decodes
// with them empty, and a row without provenance is written exactly as before, so old
// and new stores read each other's rows.
func TestLegacyRowDecodes(t *testing.T) {
	fields := `{"id":"a","instrument":"bass","pack":"P","path":"/x.wav","bpm":120,"key":"Am","duration":2,"sample_rate":44100,"bundle_id":"e@1:d","ingested_at":"2026-01-02T03:04:05Z"}`
	b := make([]byte, 4+len(fields)+8+4)
	binary.LittleEndian.PutUint32(b, uint32(len(fields)))
	copy(b[4:], fields)
	binary.LittleEndian.PutUint32(b[4+len(fields):], math.Float32bits(1))
	binary.LittleEndian.PutUint32(b[8+len(fields):], math.Float32bits(-1))
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	r, err := decodeRow(b, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "a" || r.BPM != 120 || r.Key != "Am" || r.BPMSource != "" || r.KeySource != "" || r.InstrumentSource != "" ||
		r.BPMConfidence != 0 || r.KeyConfidence != 0 || r.Embedding[1] != -1 {
		t.Errorf("legacy row decoded as %+v", r)
	}
	again, err := encodeRow(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(b) {
		t.Errorf("a row without provenance is written differently from before:\n%q\n%q", again, b)
	}
	r.BPMSource, r.BPMConfidence = vectordb.SourceAudio, 0.75
	withProv, _ := encodeRow(r)
	if !strings.Contains(string(withProv), `"bpm_source":"audio","bpm_confidence":0.75`) {
		t.Errorf("provenance not written: %q", withProv)
	}
}
