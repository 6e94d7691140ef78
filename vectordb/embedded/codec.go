package embedded

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/loopmatch/loopmatch/vectordb"
)

// The row codec: how one row is laid out in bbolt, checksummed.

// encodeRow: [u32 json length][json fields][dim x f32 embedding][u32 crc32 of all before].
func encodeRow(r vectordb.Row) ([]byte, error) {
	fields, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 4+len(fields)+4*len(r.Embedding)+4)
	binary.LittleEndian.PutUint32(buf, uint32(len(fields)))
	copy(buf[4:], fields)
	off := 4 + len(fields)
	for i, v := range r.Embedding {
		binary.LittleEndian.PutUint32(buf[off+4*i:], math.Float32bits(v))
	}
	end := len(buf) - 4
	binary.LittleEndian.PutUint32(buf[end:], crc32.ChecksumIEEE(buf[:end]))
	return buf, nil
}

// errChecksum: a stored row does not match its checksum.
var errChecksum = errors.New("row checksum mismatch: the store file is damaged")

func decodeRow(b []byte, dim int) (vectordb.Row, error) {
	var r vectordb.Row
	if len(b) < 8 {
		return r, errChecksum
	}
	end := len(b) - 4
	if crc32.ChecksumIEEE(b[:end]) != binary.LittleEndian.Uint32(b[end:]) {
		return r, errChecksum
	}
	n := int(binary.LittleEndian.Uint32(b))
	if 4+n+4*dim != end {
		return r, fmt.Errorf("row is %d bytes, want %d for dimension %d", len(b), 4+n+4*dim+4, dim)
	}
	if err := json.Unmarshal(b[4:4+n], &r); err != nil {
		return r, err
	}
	r.Embedding = make([]float32, dim)
	for i := range r.Embedding {
		r.Embedding[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4+n+4*i:]))
	}
	return r, nil
}
