// AIFF and AIFF-C for the page: Chromium's decodeAudioData refuses them, and they are
// what producers on macOS have. A stored loop plays from the server's WAV rendition; a
// file dropped on the page has no stored copy, so it is read here. Integer PCM of 8 to
// 32 bits (big-endian; AIFF-C "NONE"/"twos", and little-endian "sowt") and float
// ("fl32"/"fl64"), as the server's reader accepts.

/** True when the bytes start like an AIFF or AIFF-C file. */
export function isAIFF(bytes) {
  const b = new Uint8Array(bytes, 0, Math.min(12, bytes.byteLength));
  const tag = (o) => String.fromCharCode(...b.subarray(o, o + 4));
  return b.length >= 12 && tag(0) === "FORM" && (tag(8) === "AIFF" || tag(8) === "AIFC");
}

// 80-bit IEEE 754 extended (the COMM chunk's sample rate).
function extended(v, o) {
  const exp = ((v.getUint8(o) & 0x7f) << 8) | v.getUint8(o + 1);
  const hi = v.getUint32(o + 2);
  const lo = v.getUint32(o + 6);
  if (exp === 0 && hi === 0 && lo === 0) return 0;
  const sign = v.getUint8(o) & 0x80 ? -1 : 1;
  return sign * (hi * 2 ** (exp - 16383 - 31) + lo * 2 ** (exp - 16383 - 63));
}

/**
 * Decodes an AIFF or AIFF-C file: { sampleRate, channels: Float32Array[] } with samples in
 * [-1, 1]. Throws an Error that says what is wrong with the file.
 */
export function decodeAIFF(bytes) {
  if (!isAIFF(bytes)) throw new Error("not an AIFF file (no FORM/AIFF header)");
  const v = new DataView(bytes);
  const aifc = String.fromCharCode(v.getUint8(8), v.getUint8(9), v.getUint8(10), v.getUint8(11)) === "AIFC";
  let comm = null;
  let ssnd = null;
  for (let o = 12; o + 8 <= v.byteLength;) {
    const id = String.fromCharCode(v.getUint8(o), v.getUint8(o + 1), v.getUint8(o + 2), v.getUint8(o + 3));
    const size = v.getUint32(o + 4);
    const body = o + 8;
    if (body + size > v.byteLength && id !== "SSND") throw new Error(`chunk ${id} runs past the end of the file`);
    if (id === "COMM") {
      if (size < 18) throw new Error("COMM chunk too short");
      comm = {
        channels: v.getUint16(body), frames: v.getUint32(body + 2), bits: v.getUint16(body + 6),
        rate: extended(v, body + 8), compression: aifc && size >= 22 ? String.fromCharCode(
          v.getUint8(body + 18), v.getUint8(body + 19), v.getUint8(body + 20), v.getUint8(body + 21)) : "NONE",
      };
    } else if (id === "SSND") {
      const offset = v.getUint32(body);
      ssnd = { start: body + 8 + offset, end: Math.min(body + size, v.byteLength) };
    }
    o = body + size + (size & 1);
  }
  if (!comm) throw new Error("no COMM chunk");
  if (!ssnd) throw new Error("no SSND (sound data) chunk");
  const { channels, bits } = comm;
  if (!(channels >= 1 && channels <= 64)) throw new Error(`${channels} channels`);
  if (!(comm.rate >= 1000 && comm.rate <= 768000)) throw new Error(`sample rate ${comm.rate}`);
  const comp = comm.compression.toLowerCase();
  let bytesPer;
  let read;
  if (comp === "none" || comp === "twos" || comp === "sowt") {
    if (!(bits >= 1 && bits <= 32)) throw new Error(`${bits}-bit samples`);
    bytesPer = Math.ceil(bits / 8);
    const little = comp === "sowt";
    const scale = 2 ** (8 * bytesPer - 1);
    read = (o) => {
      let x = 0;
      for (let i = 0; i < bytesPer; i++) x = x * 256 + v.getUint8(little ? o + bytesPer - 1 - i : o + i);
      if (x >= scale) x -= 2 * scale;
      return x / scale;
    };
  } else if (comp === "fl32") {
    bytesPer = 4;
    read = (o) => v.getFloat32(o);
  } else if (comp === "fl64") {
    bytesPer = 8;
    read = (o) => v.getFloat64(o);
  } else {
    throw new Error(`AIFF-C compression "${comm.compression}" is not supported: re-export as PCM`);
  }
  const frames = Math.min(comm.frames, Math.floor((ssnd.end - ssnd.start) / (bytesPer * channels)));
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let f = 0, o = ssnd.start; f < frames; f++) {
    for (let c = 0; c < channels; c++, o += bytesPer) out[c][f] = read(o);
  }
  return { sampleRate: comm.rate, channels: out };
}
