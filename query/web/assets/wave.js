// Waveform thumbnails drawn from decoded audio: min and max of each pixel column of
// the channels' mix, computed once per buffer and redrawn with a playhead.

/** Min/max pairs of `columns` equal slices of the buffer (channels mixed). */
export function peaks(buffer, columns) {
  const n = buffer.length;
  const chans = [];
  for (let c = 0; c < buffer.numberOfChannels; c++) chans.push(buffer.getChannelData(c));
  const out = new Float32Array(columns * 2);
  const per = n / columns;
  for (let i = 0; i < columns; i++) {
    const a = Math.floor(i * per);
    const b = Math.max(a + 1, Math.floor((i + 1) * per));
    let lo = 1, hi = -1;
    // A stride keeps long loops cheap; 2000 reads per column are plenty for a picture.
    const step = Math.max(1, Math.floor((b - a) / 2000));
    for (let j = a; j < b && j < n; j += step) {
      let v = 0;
      for (const ch of chans) v += ch[j];
      v /= chans.length;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (lo > hi) lo = hi = 0;
    out[2 * i] = lo;
    out[2 * i + 1] = hi;
  }
  return out;
}

/**
 * Draws peaks into a canvas sized by CSS, at the device's pixel ratio. loopEnd (0..1)
 * shades what lies past the loop; playhead (0..1) draws a line.
 */
export function drawWave(canvas, pk, { playhead = null, loopEnd = 1, color = "#7fd1b9" } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, w, h);
  if (!pk) return;
  const cols = pk.length / 2;
  // Normalise to the loudest column so quiet loops still show their shape.
  let peak = 1e-6;
  for (const v of pk) peak = Math.max(peak, Math.abs(v));
  const mid = h / 2;
  g.fillStyle = color;
  for (let x = 0; x < w; x++) {
    const i = Math.min(cols - 1, Math.floor((x / w) * cols));
    const lo = pk[2 * i] / peak, hi = pk[2 * i + 1] / peak;
    const y0 = mid - hi * mid * 0.95, y1 = mid - lo * mid * 0.95;
    g.fillRect(x, y0, 1, Math.max(1, y1 - y0));
  }
  if (loopEnd < 1) {
    g.fillStyle = "rgba(0,0,0,0.45)";
    g.fillRect(Math.round(loopEnd * w), 0, w, h);
  }
  if (playhead !== null) {
    g.fillStyle = "#ffd166";
    g.fillRect(Math.round(playhead * w), 0, Math.max(1, Math.round(dpr)), h);
  }
}
