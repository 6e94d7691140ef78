// Synchronised loop playback with the Web Audio API.
//
// Two tracks, the seed and a candidate (a ranked loop or the decoded preview), each an
// AudioBufferSourceNode with loop = true. Both are started with start(t0) for one
// AudioContext time t0, so they begin on the same sample frame of the output and
// stay locked: the context's clock drives both, no timers are involved.
//
// Tempo follow is varispeed: the candidate's playbackRate is seedBPM / candidateBPM
// (folded by octaves into [1/sqrt2, sqrt2], i.e. half- or double-time, when the tempos
// are far apart), which changes its pitch along with its tempo, as a turntable does.
// Each loop's loopEnd is its exact musical length, a whole number of beats at its own
// tempo (beats = round(duration * bpm / 60)), so a file with a few samples of padding
// or a missing tail still loops on the beat. The decoded preview is the predicted loop
// for the seed's first model window (4 s) at the seed's tempo: it plays at rate 1,
// looping the whole bars of the seed's tempo that fit in it.

/** The lead time between a click and the scheduled start, seconds. */
export const START_LEAD = 0.12;

/** Number of beats a loop of this duration holds at this tempo (at least 1). */
export function beatsIn(duration, bpm) {
  if (!(bpm > 0) || !(duration > 0)) return 0;
  return Math.max(1, Math.round((duration * bpm) / 60));
}

/**
 * The musical length of a loop, seconds in its own time: a whole number of beats at
 * its tempo. Without a tempo, the whole file.
 */
export function loopLength(duration, bpm) {
  const beats = beatsIn(duration, bpm);
  return beats > 0 ? (beats * 60) / bpm : duration;
}

/**
 * The length of the preview's loop: the whole bars (4 beats) of the seed's tempo that
 * fit in the decoded window, or whole beats when not even one bar fits.
 */
export function previewLength(duration, seedBPM) {
  if (!(seedBPM > 0) || !(duration > 0)) return duration;
  const beat = 60 / seedBPM;
  const bars = Math.floor(duration / (4 * beat) + 1e-9);
  if (bars >= 1) return bars * 4 * beat;
  const beats = Math.floor(duration / beat + 1e-9);
  return beats >= 1 ? beats * beat : duration;
}

/**
 * The playbackRate that makes a loop at candBPM follow a seed at seedBPM (varispeed),
 * folded by octaves into [1/sqrt2, sqrt2] so a 70 BPM loop under a 140 BPM seed plays
 * in double time rather than twice as high. 1 when either tempo is unknown.
 */
export function tempoRate(seedBPM, candBPM) {
  if (!(seedBPM > 0) || !(candBPM > 0)) return 1;
  let r = seedBPM / candBPM;
  while (r > Math.SQRT2) r /= 2;
  while (r < Math.SQRT1_2) r *= 2;
  return r;
}

/** A tempo written in a file name, such as "groove_124bpm.wav" or "loop 92.5 BPM.flac"; 0 if none. */
export function bpmFromName(name) {
  const m = /(?:^|[^0-9])([4-9][0-9]|1[0-9]{2}|2[0-9]{2})(?:[.,]([0-9]+))?[ _-]?bpm/i.exec(name || "");
  return m ? parseFloat(m[1] + (m[2] ? "." + m[2] : "")) : 0;
}

/** Effective gains of tracks with volume, mute and solo, as a mixing desk does. */
export function mixGains(tracks) {
  const anySolo = tracks.some((t) => t.solo);
  return tracks.map((t) => (t.muted || (anySolo && !t.solo) ? 0 : t.volume));
}

/** A copy of buf padded with silence to at least `seconds` (for a loopEnd past its end). */
function padTo(ctx, buf, seconds) {
  const need = Math.ceil(seconds * buf.sampleRate);
  if (need <= buf.length) return buf;
  const out = ctx.createBuffer(buf.numberOfChannels, need, buf.sampleRate);
  for (let c = 0; c < buf.numberOfChannels; c++) out.copyToChannel(buf.getChannelData(c), c);
  return out;
}

/** One mixer channel: a gain node and its settings. */
class Track {
  constructor(ctx, out, name) {
    this.name = name;
    this.gain = ctx.createGain();
    this.gain.connect(out);
    this.volume = 1;
    this.muted = false;
    this.solo = false;
  }
}

export class Player {
  constructor(ctx) {
    this.ctx = ctx;
    this.master = ctx.createGain();
    this.master.connect(ctx.destination);
    this.seed = new Track(ctx, this.master, "seed");
    this.cand = new Track(ctx, this.master, "candidate");
    this.sources = [];
    /** What plays now: {t0, seed: {...}, cand: {...}, id} or null. */
    this.now = null;
    /** The last synchronised start, for the page's status and the tests. */
    this.lastStart = null;
    this.onchange = () => {};
  }

  applyMix() {
    const tracks = [this.seed, this.cand];
    const gains = mixGains(tracks);
    const t = this.ctx.currentTime;
    tracks.forEach((tr, i) => {
      tr.gain.gain.cancelScheduledValues(t);
      tr.gain.gain.setValueAtTime(gains[i], t);
    });
  }

  set(trackName, field, value) {
    const tr = trackName === "seed" ? this.seed : this.cand;
    tr[field] = value;
    this.applyMix();
    this.onchange();
  }

  /**
   * Plays the seed and a candidate together, both looping, from one start time.
   * seed: {buffer, bpm}; cand: {buffer, bpm, kind: "loop" | "preview", id, offset}, where
   * offset (seconds into the candidate) is where its best-matching window starts: a long
   * loop plays from there, then loops whole.
   * Synchronous, so nothing can interleave between the two starts; the caller resumes
   * a suspended context first. Returns the schedule.
   */
  play(seed, cand) {
    this.stop(false);
    const ctx = this.ctx;
    const seedLoop = loopLength(seed.buffer.duration, seed.bpm);
    let rate = 1;
    let candLoop;
    if (cand.kind === "preview") {
      candLoop = previewLength(cand.buffer.duration, seed.bpm);
    } else {
      rate = tempoRate(seed.bpm, cand.bpm);
      candLoop = loopLength(cand.buffer.duration, cand.bpm);
    }
    const mk = (buf, loopEnd, playbackRate, track) => {
      const src = ctx.createBufferSource();
      src.buffer = padTo(ctx, buf, loopEnd);
      src.loop = true;
      src.loopStart = 0;
      src.loopEnd = loopEnd;
      src.playbackRate.value = playbackRate;
      src.connect(track.gain);
      return src;
    };
    const s = mk(seed.buffer, seedLoop, 1, this.seed);
    const c = mk(cand.buffer, candLoop, rate, this.cand);
    this.applyMix();
    // One time for both: the whole point. Scheduled slightly ahead so neither start
    // is late on a busy main thread.
    const t0 = ctx.currentTime + START_LEAD;
    const candOffset = cand.kind === "loop" && cand.offset > 0 && cand.offset < candLoop ? cand.offset : 0;
    s.start(t0);
    c.start(t0, candOffset);
    this.sources = [s, c];
    this.now = {
      t0, id: cand.id, kind: cand.kind, rate,
      seed: { loop: seedLoop, duration: seed.buffer.duration },
      cand: { loop: candLoop, duration: cand.buffer.duration, offset: candOffset },
    };
    this.lastStart = { seedT0: t0, candT0: t0, rate, seedLoopEnd: seedLoop, candLoopEnd: candLoop, candidate: cand.id, kind: cand.kind, candOffset };
    this.onchange();
    return this.now;
  }

  stop(notify = true) {
    for (const src of this.sources) {
      try { src.stop(); } catch { /* never started */ }
      src.disconnect();
    }
    this.sources = [];
    this.now = null;
    if (notify) this.onchange();
  }

  /** Playhead positions (0..1 of each buffer) now, or null when stopped. */
  positions() {
    const n = this.now;
    if (!n) return null;
    const el = this.ctx.currentTime - n.t0;
    if (el < 0) return { seed: 0, cand: 0 };
    return {
      seed: (el % n.seed.loop) / n.seed.duration,
      cand: ((el * n.rate + n.cand.offset) % n.cand.loop) / n.cand.duration,
    };
  }
}
