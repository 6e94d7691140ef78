// Context queries on the page: the kept loops (up to five) as a context, the one-shots of
// a chosen kind ranked for it (POST /v1/recommend with context and target), and an
// audition: the context's loops playing together, aligned from their starts and looped,
// with the one-shot triggered on a simple pattern at the context's tempo.

/** The most loops a context holds (the API's bound). */
export const MAX_CONTEXT = 5;

/**
 * Beats (0-based, in quarter notes within one 4/4 bar) on which a one-shot of this kind
 * is triggered: kicks on every beat, snares and claps on 2 and 4, hats on eighths, open
 * hats on the off-beats, rides on quarters, crashes on the one, toms and the rest on 4.
 */
export function pattern(kind) {
  switch (kind) {
    case "kick": return [0, 1, 2, 3];
    case "snare": case "clap": case "rim": return [1, 3];
    case "hat": return [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5];
    case "open_hat": return [0.5, 1.5, 2.5, 3.5];
    case "ride": return [0, 1, 2, 3];
    case "crash": return [0];
    default: return [3];
  }
}

/** Times (seconds after the start) of the hits in the first `bars` bars at bpm. */
export function hitTimes(kind, bpm, bars) {
  const beat = 60 / (bpm > 0 ? bpm : 120);
  const out = [];
  for (let b = 0; b < bars; b++) for (const q of pattern(kind)) out.push((4 * b + q) * beat);
  return out;
}

/** The context request's body for the kept loops and a kind. */
export function contextRequest(tray, kind, k) {
  return { context: tray.slice(0, MAX_CONTEXT).map((x) => ({ id: x.id, instrument: x.instrument })),
    target: { collection: "oneshot", kind }, k };
}

/**
 * Plays the context: every loop started at one AudioContext time and looped over its
 * whole file (aligned from the starts, as the API mixes them), and a one-shot's hits
 * scheduled ahead on the pattern, bars at a time, while it plays.
 */
export class ContextPlayer {
  constructor(ctx) {
    this.ctx = ctx;
    this.sources = [];
    this.timer = null;
    this.hits = 0; // one-shot hits scheduled so far (the page's tests read it)
    this.startedAt = null;
  }

  get playing() { return this.startedAt !== null; }

  start(buffers, shot, kind, bpm) {
    this.stop();
    const t0 = this.ctx.currentTime + 0.12;
    const out = this.ctx.createGain();
    out.gain.value = 0.8 / Math.max(1, Math.sqrt(buffers.length));
    out.connect(this.ctx.destination);
    for (const b of buffers) {
      const s = this.ctx.createBufferSource();
      s.buffer = b;
      s.loop = true;
      s.connect(out);
      s.start(t0);
      this.sources.push(s);
    }
    this.startedAt = t0;
    this.hits = 0;
    if (!shot) return;
    const barSec = (4 * 60) / (bpm > 0 ? bpm : 120);
    let bar = 0;
    const ahead = () => { // schedule the next two bars whenever the clock nears them
      while (this.startedAt !== null && t0 + bar * barSec < this.ctx.currentTime + 2 * barSec) {
        for (const t of hitTimes(kind, bpm, 1)) {
          const s = this.ctx.createBufferSource();
          s.buffer = shot;
          s.connect(out);
          s.start(t0 + bar * barSec + t);
          this.sources.push(s);
          this.hits++;
        }
        bar++;
      }
    };
    ahead();
    this.timer = setInterval(ahead, 250);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const s of this.sources) { try { s.stop(); } catch { /* not started */ } }
    this.sources = [];
    this.startedAt = null;
  }
}
