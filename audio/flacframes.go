package audio

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// flacFrames decodes the audio frames of a FLAC stream held in memory, several times
// faster than github.com/mewkiz/flac's frame parser (which reads every bit through an
// io.Reader chain): it reads a 64-bit cache straight from the bytes and decodes each
// channel in place into buffers it reuses from frame to frame.
//
// It is a fast path only. It accepts exactly the streams the reference parser accepts
// and gives the same samples (FuzzFLACFrames compares the two on every input); anything
// it does not handle the same way, or any damage at all (a CRC that does not match, a
// reserved pattern, a cut), makes it give up with errFLACSlowPath, and decodeFLAC then
// decodes the whole file with the reference parser, so its errors and what it accepts
// are exactly as before.
type flacFrames struct {
	data  []byte
	pos   int    // next byte to load into cache
	cache uint64 // unread bits, most significant first; the bits below n are zero
	n     uint   // how many bits of cache are unread

	channels int       // the stream's, from STREAMINFO
	chans    [][]int32 // one frame's samples per channel, reused
	coeffs   [32]int32
}

// errFLACSlowPath: the fast path does not decode this stream; the reference parser does.
var errFLACSlowPath = errors.New("flac: not handled by the fast path")

// flacFramesOffset is where the first frame starts: after "fLaC" and the metadata
// blocks. A stream with anything before "fLaC" (an ID3v2 tag) is left to the
// reference parser.
func flacFramesOffset(data []byte) (int, error) {
	if len(data) < 4 || string(data[:4]) != "fLaC" {
		return 0, errFLACSlowPath
	}
	off := 4
	for {
		if off+4 > len(data) {
			return 0, errFLACSlowPath
		}
		last := data[off]&0x80 != 0
		off += 4 + (int(data[off+1])<<16 | int(data[off+2])<<8 | int(data[off+3]))
		if last {
			break
		}
	}
	if off > len(data) {
		return 0, errFLACSlowPath
	}
	return off, nil
}

func newFLACFrames(data []byte, off, channels int) *flacFrames {
	return &flacFrames{data: data, pos: off, channels: channels, chans: make([][]int32, channels)}
}

// fill loads whole bytes into the cache while they fit.
func (f *flacFrames) fill() {
	for f.n <= 56 && f.pos < len(f.data) {
		f.cache |= uint64(f.data[f.pos]) << (56 - f.n)
		f.pos++
		f.n += 8
	}
}

// read returns the next k bits (k <= 32); false at the end of the data.
func (f *flacFrames) read(k uint) (uint32, bool) {
	if k == 0 {
		return 0, true
	}
	if f.n < k {
		f.fill()
		if f.n < k {
			return 0, false
		}
	}
	v := uint32(f.cache >> (64 - k))
	f.cache <<= k
	f.n -= k
	return v, true
}

// unary counts zero bits up to the next one bit, which it consumes.
func (f *flacFrames) unary() (uint32, bool) {
	var count uint32
	for {
		if f.n == 0 {
			f.fill()
			if f.n == 0 {
				return 0, false
			}
		}
		z := uint(bits.LeadingZeros64(f.cache))
		if z < f.n {
			f.cache <<= z + 1
			f.n -= z + 1
			return count + uint32(z), true
		}
		count += uint32(f.n)
		f.cache, f.n = 0, 0
		if count > 1<<20 { // no real residual is this long: leave damage to the reference parser
			return 0, false
		}
	}
}

// bytePos is the offset of the next unread byte once the reader is byte-aligned.
func (f *flacFrames) bytePos() int { return f.pos - int(f.n/8) }

// align drops the bits left in the current byte.
func (f *flacFrames) align() {
	r := f.n % 8
	f.cache <<= r
	f.n -= r
}

// next decodes one frame: its block size, and each channel's samples in f.chans
// (valid until the next call). done is true at the clean end of the data.
func (f *flacFrames) next() (blockSize int, done bool, err error) {
	start := f.bytePos()
	d := f.data
	if start == len(d) {
		return 0, true, nil
	}
	// Frame header: sync, block size and rate codes, channels, sample size, the
	// UTF-8-coded frame or sample number, optional block size and rate, CRC-8.
	if start+5 > len(d) || d[start] != 0xFF || d[start+1]&0xFE != 0xF8 {
		return 0, false, errFLACSlowPath
	}
	bsCode, rateCode := d[start+2]>>4, d[start+2]&0x0F
	chCode, sizeCode := d[start+3]>>4, (d[start+3]>>1)&0x07
	if d[start+3]&1 != 0 || bsCode == 0 || rateCode == 0x0F || chCode >= 0x0B {
		return 0, false, errFLACSlowPath
	}
	bps := [8]int{0, 8, 12, 0, 16, 20, 24, 0}[sizeCode]
	if bps == 0 { // 0 (STREAMINFO's) and the reserved codes: the reference parser's business
		return 0, false, errFLACSlowPath
	}
	p, ok := skipFLACNumber(d, start+4)
	if !ok {
		return 0, false, errFLACSlowPath
	}
	switch {
	case bsCode == 1:
		blockSize = 192
	case bsCode <= 5:
		blockSize = 576 << (bsCode - 2)
	case bsCode == 6:
		if p+1 > len(d) {
			return 0, false, errFLACSlowPath
		}
		blockSize, p = int(d[p])+1, p+1
	case bsCode == 7:
		if p+2 > len(d) {
			return 0, false, errFLACSlowPath
		}
		blockSize, p = (int(d[p])<<8|int(d[p+1]))+1, p+2
		if blockSize > 1<<16 { // the reference parser keeps block sizes in 16 bits
			return 0, false, errFLACSlowPath
		}
	default:
		blockSize = 256 << (bsCode - 8)
	}
	switch rateCode {
	case 0x0C:
		p++
	case 0x0D, 0x0E:
		p += 2
	}
	if p+1 > len(d) || crc8(d[start:p]) != d[p] {
		return 0, false, errFLACSlowPath
	}
	f.pos, f.cache, f.n = p+1, 0, 0

	nch := 1 + int(chCode)
	if chCode >= 8 {
		nch = 2
	}
	if nch != f.channels {
		return 0, false, errFLACSlowPath
	}
	for c := 0; c < nch; c++ {
		b := bps
		if (chCode == 8 || chCode == 10) && c == 1 || chCode == 9 && c == 0 {
			b++ // the side channel carries one more bit
		}
		if cap(f.chans[c]) < blockSize {
			f.chans[c] = make([]int32, blockSize, max(blockSize, 4096))
		}
		f.chans[c] = f.chans[c][:blockSize]
		if err := f.subframe(f.chans[c], uint(b)); err != nil {
			return 0, false, err
		}
	}
	correlate(chCode, f.chans)
	f.align()
	end := f.bytePos()
	if end+2 > len(d) || binary.BigEndian.Uint16(d[end:]) != crc16(d[start:end]) {
		return 0, false, errFLACSlowPath
	}
	f.pos, f.cache, f.n = end+2, 0, 0
	return blockSize, false, nil
}

// skipFLACNumber steps over the frame header's UTF-8-coded number, refusing what the
// reference parser refuses (a stray continuation byte, a longer code than needed).
func skipFLACNumber(d []byte, p int) (int, bool) {
	if p >= len(d) {
		return 0, false
	}
	c0 := d[p]
	if c0 < 0x80 {
		return p + 1, true
	}
	var l int
	var x uint64
	switch {
	case c0 < 0xC0:
		return 0, false
	case c0 < 0xE0:
		l, x = 1, uint64(c0&0x1F)
	case c0 < 0xF0:
		l, x = 2, uint64(c0&0x0F)
	case c0 < 0xF8:
		l, x = 3, uint64(c0&0x07)
	case c0 < 0xFC:
		l, x = 4, uint64(c0&0x03)
	case c0 < 0xFE:
		l, x = 5, uint64(c0&0x01)
	case c0 < 0xFF:
		l = 6
	default:
		return 0, false
	}
	if p+1+l > len(d) {
		return 0, false
	}
	for _, c := range d[p+1 : p+1+l] {
		if c&0xC0 != 0x80 {
			return 0, false
		}
		x = x<<6 | uint64(c&0x3F)
	}
	if x <= [7]uint64{0, 1<<7 - 1, 1<<11 - 1, 1<<16 - 1, 1<<21 - 1, 1<<26 - 1, 1<<31 - 1}[l] {
		return 0, false
	}
	return p + 1 + l, true
}

// subframe decodes one channel's subframe of len(s) samples at bps bits into s.
func (f *flacFrames) subframe(s []int32, bps uint) error {
	h, ok := f.read(8)
	if !ok || h&0x80 != 0 {
		return errFLACSlowPath
	}
	kind := h >> 1 & 0x3F
	var wasted uint
	if h&1 != 0 {
		w, ok := f.unary()
		if !ok {
			return errFLACSlowPath
		}
		wasted = uint(w) + 1
	}
	if wasted >= bps {
		return errFLACSlowPath
	}
	bps -= wasted
	switch {
	case kind == 0: // constant
		x, ok := f.read(bps)
		if !ok {
			return errFLACSlowPath
		}
		v := signExtend(x, bps)
		for i := range s {
			s[i] = v
		}
	case kind == 1: // verbatim
		for i := range s {
			x, ok := f.read(bps)
			if !ok {
				return errFLACSlowPath
			}
			s[i] = signExtend(x, bps)
		}
	case kind >= 8 && kind <= 12: // fixed predictor of order 0-4
		order := int(kind & 7)
		if err := f.warmup(s, order, bps); err != nil {
			return err
		}
		if err := f.residual(s, order); err != nil {
			return err
		}
		fixedPredict(s, order)
	case kind >= 32: // LPC
		order := int(kind&0x1F) + 1
		if err := f.warmup(s, order, bps); err != nil {
			return err
		}
		x, ok := f.read(4)
		if !ok || x == 0x0F {
			return errFLACSlowPath
		}
		prec := uint(x) + 1
		sh, ok := f.read(5)
		if !ok {
			return errFLACSlowPath
		}
		shift := signExtend(sh, 5)
		if shift < 0 {
			return errFLACSlowPath
		}
		coeffs := f.coeffs[:order]
		for i := range coeffs {
			c, ok := f.read(prec)
			if !ok {
				return errFLACSlowPath
			}
			coeffs[i] = signExtend(c, prec)
		}
		if err := f.residual(s, order); err != nil {
			return err
		}
		lpcPredict(s, coeffs, uint(shift))
	default:
		return errFLACSlowPath
	}
	if wasted > 0 {
		for i := range s {
			s[i] <<= wasted
		}
	}
	return nil
}

// warmup reads a predictor's first order samples, verbatim.
func (f *flacFrames) warmup(s []int32, order int, bps uint) error {
	if order > len(s) {
		return errFLACSlowPath
	}
	for i := 0; i < order; i++ {
		x, ok := f.read(bps)
		if !ok {
			return errFLACSlowPath
		}
		s[i] = signExtend(x, bps)
	}
	return nil
}

// residual reads the Rice-coded residual of s[order:] into place.
func (f *flacFrames) residual(s []int32, order int) error {
	method, ok := f.read(2)
	if !ok || method > 1 {
		return errFLACSlowPath
	}
	paramBits, escape := uint(4), uint32(0x0F)
	if method == 1 {
		paramBits, escape = 5, 0x1F
	}
	po, ok := f.read(4)
	if !ok {
		return errFLACSlowPath
	}
	parts := 1 << po
	n := len(s)
	if n%parts != 0 || n/parts < order {
		return errFLACSlowPath // the reference parser's counts would not add up to the block
	}
	i := order
	for p := 0; p < parts; p++ {
		end := (p + 1) * (n / parts)
		k, ok := f.read(paramBits)
		if !ok {
			return errFLACSlowPath
		}
		if k == escape {
			eb, ok := f.read(5)
			if !ok {
				return errFLACSlowPath
			}
			for ; i < end; i++ {
				x, ok := f.read(uint(eb))
				if !ok {
					return errFLACSlowPath
				}
				if eb == 0 {
					s[i] = 0
				} else {
					s[i] = signExtend(x, uint(eb))
				}
			}
			continue
		}
		for ; i < end; i++ {
			q, ok := f.unary()
			if !ok {
				return errFLACSlowPath
			}
			low, ok := f.read(uint(k))
			if !ok {
				return errFLACSlowPath
			}
			u := q<<k | low
			s[i] = int32(u>>1) ^ -int32(u&1)
		}
	}
	return nil
}

// fixedPredict adds the fixed predictor of the given order to the residual in s[order:],
// with the reference parser's arithmetic (a 64-bit sum, a wrapping 32-bit add).
func fixedPredict(s []int32, order int) {
	switch order {
	case 1:
		for i := 1; i < len(s); i++ {
			s[i] += int32(int64(s[i-1]))
		}
	case 2:
		for i := 2; i < len(s); i++ {
			s[i] += int32(2*int64(s[i-1]) - int64(s[i-2]))
		}
	case 3:
		for i := 3; i < len(s); i++ {
			s[i] += int32(3*int64(s[i-1]) - 3*int64(s[i-2]) + int64(s[i-3]))
		}
	case 4:
		for i := 4; i < len(s); i++ {
			s[i] += int32(4*int64(s[i-1]) - 6*int64(s[i-2]) + 4*int64(s[i-3]) - int64(s[i-4]))
		}
	}
}

// lpcPredict adds the LPC prediction to the residual in s[len(coeffs):].
func lpcPredict(s []int32, coeffs []int32, shift uint) {
	order := len(coeffs)
	for i := order; i < len(s); i++ {
		var sum int64
		hist := s[i-order : i]
		for j, c := range coeffs {
			sum += int64(c) * int64(hist[order-1-j])
		}
		s[i] += int32(sum >> shift)
	}
}

// correlate undoes the stereo decorrelation of channel assignments 8-10.
func correlate(chCode byte, ch [][]int32) {
	switch chCode {
	case 8: // left, side
		l, s := ch[0], ch[1]
		for i := range s {
			s[i] = l[i] - s[i]
		}
	case 9: // side, right
		s, r := ch[0], ch[1]
		for i := range s {
			s[i] = r[i] + s[i]
		}
	case 10: // mid, side
		mid, side := ch[0], ch[1]
		for i := range side {
			m, s := mid[i], side[i]
			m = m*2 | s&1
			mid[i] = (m + s) / 2
			side[i] = (m - s) / 2
		}
	}
}

// signExtend reads the low n bits of x (1 <= n <= 32) as a two's-complement number.
func signExtend(x uint32, n uint) int32 {
	if n < 32 && x&(1<<(n-1)) != 0 {
		return int32(x | ^uint32(0)<<n)
	}
	return int32(x)
}

var crc8Table, crc16Table = crcTables()

func crcTables() (t8 [256]uint8, t16 [256]uint16) {
	for i := range 256 {
		c8 := uint8(i)
		c16 := uint16(i) << 8
		for range 8 {
			if c8&0x80 != 0 {
				c8 = c8<<1 ^ 0x07
			} else {
				c8 <<= 1
			}
			if c16&0x8000 != 0 {
				c16 = c16<<1 ^ 0x8005
			} else {
				c16 <<= 1
			}
		}
		t8[i], t16[i] = c8, c16
	}
	return t8, t16
}

// crc8 is FLAC's frame header check (polynomial 0x07).
func crc8(b []byte) uint8 {
	var c uint8
	for _, v := range b {
		c = crc8Table[c^v]
	}
	return c
}

// crc16 is FLAC's frame check (polynomial 0x8005).
func crc16(b []byte) uint16 {
	var c uint16
	for _, v := range b {
		c = c<<8 ^ crc16Table[byte(c>>8)^v]
	}
	return c
}
