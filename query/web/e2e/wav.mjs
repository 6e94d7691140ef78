// A synthetic drum loop as a 16-bit mono WAV file: kicks on the beats, a noisy hat on
// the off-beats, at a given tempo. It is a seed a producer might drop on the page.

export function drumLoopWAV({ bpm = 120, bars = 2, rate = 22050, seed = 1 } = {}) {
  const beat = 60 / bpm;
  const n = Math.round(bars * 4 * beat * rate);
  const pcm = new Float32Array(n);
  let s = seed >>> 0;
  const noise = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
  for (let b = 0; b < bars * 4; b++) {
    const k0 = Math.round(b * beat * rate);
    for (let i = 0; i < rate * 0.25 && k0 + i < n; i++) {
      const t = i / rate;
      pcm[k0 + i] += 0.8 * Math.sin(2 * Math.PI * (50 + 90 * Math.exp(-t * 30)) * t) * Math.exp(-t * 12);
    }
    const h0 = Math.round((b + 0.5) * beat * rate);
    for (let i = 0; i < rate * 0.05 && h0 + i < n; i++) pcm[h0 + i] += 0.25 * noise() * Math.exp(-(i / rate) * 80);
  }
  const buf = Buffer.alloc(44 + 2 * n);
  buf.write("RIFF", 0);
  buf.writeUInt32LE(36 + 2 * n, 4);
  buf.write("WAVE", 8);
  buf.write("fmt ", 12);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20); // PCM
  buf.writeUInt16LE(1, 22); // mono
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write("data", 36);
  buf.writeUInt32LE(2 * n, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(pcm[i] * 32767))), 44 + 2 * i);
  return buf;
}
