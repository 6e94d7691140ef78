// Unit tests of the page's tempo and mixing arithmetic (assets/player.js), in Node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { beatsIn, loopLength, previewLength, tempoRate, mixGains, bpmFromName } from "../assets/player.js";
import { isAIFF, decodeAIFF } from "../assets/aiff.js";
import { drumLoopWAV } from "./wav.mjs";

const close = (a, b, what) => assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a}, want ${b}`);

test("tempoRate is seed BPM over candidate BPM, folded into half an octave", () => {
  for (const [seed, cand, want] of [
    [124, 124, 1], [130, 124, 130 / 124], [120, 126, 120 / 126], [140, 70, 1], [174, 87, 1],
    [170, 85, 1], [90, 150, 180 / 150], [150, 90, 150 / 180], [128, 0, 1], [0, 128, 1], [NaN, 120, 1],
  ]) close(tempoRate(seed, cand), want, `tempoRate(${seed}, ${cand})`);
  for (let s = 60; s <= 200; s += 7) {
    for (let c = 60; c <= 200; c += 11) {
      const r = tempoRate(s, c);
      assert.ok(r >= Math.SQRT1_2 - 1e-12 && r <= Math.SQRT2 + 1e-12, `rate ${r} for ${s}/${c}`);
      // The folded rate still puts the candidate's beats on the seed's (or its halves/doubles).
      const k = Math.log2((r * c) / s);
      close(k, Math.round(k), `octave fold ${s}/${c}`);
    }
  }
});

test("loopLength is a whole number of beats at the loop's own tempo", () => {
  assert.equal(beatsIn(60 / 124 * 16, 124), 16);
  close(loopLength(7.741935, 124), 16 * 60 / 124, "4 bars at 124 with a shortened tail");
  close(loopLength(7.75, 124), 16 * 60 / 124, "4 bars at 124 with padding");
  close(loopLength(1.9047619, 126), 4 * 60 / 126, "one bar at 126");
  close(loopLength(0.1, 120), 0.5, "shorter than a beat: one beat");
  close(loopLength(3.3, 0), 3.3, "unknown tempo: the whole file");
});

test("previewLength is the whole bars of the seed's tempo in the window", () => {
  close(previewLength(4, 120), 4, "two bars at 120 fill 4 s");
  close(previewLength(4, 130), 2 * 240 / 130, "two bars at 130");
  close(previewLength(4, 50), 3 * 60 / 50, "no whole bar at 50: whole beats");
  close(previewLength(4, 0), 4, "unknown tempo: the whole window");
});

test("mixGains: mute silences, solo silences the others", () => {
  const t = (volume, muted, solo) => ({ volume, muted, solo });
  assert.deepEqual(mixGains([t(1, false, false), t(0.5, false, false)]), [1, 0.5]);
  assert.deepEqual(mixGains([t(1, true, false), t(0.5, false, false)]), [0, 0.5]);
  assert.deepEqual(mixGains([t(1, false, true), t(0.5, false, false)]), [1, 0]);
  assert.deepEqual(mixGains([t(1, false, true), t(0.5, false, true)]), [1, 0.5]);
  assert.deepEqual(mixGains([t(1, true, true), t(0.5, false, false)]), [0, 0]);
});

test("bpmFromName reads a tempo written in a file name", () => {
  for (const [name, want] of [
    ["pack0004_garage_drum_main_130bpm_Fm.flac", 130], ["my groove 92.5 BPM.wav", 92.5], ["loop-174-bpm.ogg", 174],
    ["beat_90bpm.wav", 90], ["kick.wav", 0], ["take_2024_final.wav", 0], ["1300bpm.wav", 0], ["", 0],
  ]) assert.equal(bpmFromName(name), want, name);
});

test("decodeAIFF reads the AIFF and AIFF-C files sox writes, sample for sample", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "loopmatch-aiff-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const wav = drumLoopWAV({ bpm: 120, bars: 1, rate: 22050, seed: 3 });
  const src = path.join(dir, "src.wav");
  await writeFile(src, wav);
  const n = (wav.length - 44) / 2;
  const want = Float32Array.from({ length: n }, (_, i) => wav.readInt16LE(44 + 2 * i) / 32768);
  const cases = [
    { name: "16-bit AIFF", file: "a16.aiff", args: ["-b", "16"], tol: 1e-9 },
    { name: "24-bit AIFF", file: "a24.aiff", args: ["-b", "24"], tol: 1e-9 },
    { name: "8-bit AIFF", file: "a8.aiff", args: ["-b", "8"], tol: 1 / 128 + 1e-9 },
    { name: "32-bit float AIFF-C", file: "f32.aifc", args: ["-e", "floating-point", "-b", "32"], tol: 1e-7 },
    { name: "stereo 16-bit AIFF", file: "st.aiff", args: ["-b", "16", "-c", "2"], tol: 1e-9, channels: 2 },
  ];
  for (const c of cases) {
    const out = path.join(dir, c.file);
    await promisify(execFile)("sox", ["-D", src, ...c.args, out]);
    const b = await readFile(out);
    const bytes = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    assert.ok(isAIFF(bytes), `${c.name}: isAIFF`);
    const got = decodeAIFF(bytes);
    assert.equal(got.sampleRate, 22050, `${c.name}: rate`);
    assert.equal(got.channels.length, c.channels || 1, `${c.name}: channels`);
    for (const ch of got.channels) {
      assert.equal(ch.length, n, `${c.name}: frames`);
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(ch[i] - want[i]));
      assert.ok(worst <= c.tol, `${c.name}: largest difference ${worst}, tolerance ${c.tol}`);
    }
  }
  // What is not a readable AIFF says why.
  const ab = (s) => new TextEncoder().encode(s).buffer;
  assert.equal(isAIFF(wav.buffer.slice(wav.byteOffset, wav.byteOffset + 64)), false);
  assert.throws(() => decodeAIFF(ab("RIFF....WAVEfmt ")), /not an AIFF/);
  assert.throws(() => decodeAIFF(ab("FORM\0\0\0\x04AIFF")), /no COMM/);
  const a16 = await readFile(path.join(dir, "a16.aiff"));
  const cut = a16.buffer.slice(a16.byteOffset, a16.byteOffset + 30);
  assert.throws(() => decodeAIFF(cut), /past the end|no COMM|too short/);
});

test("decodeAIFF on damaged files returns or throws an Error, never hangs or reads out of bounds", async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), "loopmatch-aiff-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const src = path.join(dir, "src.wav");
  await writeFile(src, drumLoopWAV({ bpm: 120, bars: 1, rate: 8000, seed: 5 }));
  const seeds = [];
  for (const [file, args] of [["a.aiff", ["-b", "16", "-c", "2"]], ["f.aifc", ["-e", "floating-point", "-b", "32"]]]) {
    await promisify(execFile)("sox", ["-D", src, ...args, path.join(dir, file)]);
    seeds.push(new Uint8Array(await readFile(path.join(dir, file))));
  }
  let s = 12345;
  const rnd = () => { s = (s * 1103515245 + 12345) >>> 0; return s / 2 ** 32; };
  let decoded = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const src = seeds[i % seeds.length];
    const b = src.slice(0, Math.max(12, Math.floor(src.length * (rnd() < 0.2 ? rnd() : 1))));
    for (let m = 1 + Math.floor(rnd() * 8); m > 0; m--) {
      const at = rnd() < 0.7 ? Math.floor(rnd() * Math.min(b.length, 64)) : Math.floor(rnd() * b.length);
      b[at] = Math.floor(rnd() * 256);
    }
    try {
      const r = decodeAIFF(b.buffer);
      assert.ok(r.channels.length >= 1 && r.sampleRate > 0);
      for (const ch of r.channels) assert.ok(ch.length <= b.length);
      decoded++;
    } catch (e) {
      assert.ok(e instanceof Error && e.message.length > 0, `not an Error: ${e}`);
      refused++;
    }
  }
  t.diagnostic(`3000 damaged files: ${decoded} decoded, ${refused} refused`);
});

test("compatFilter builds the API's tempo and key filters, and their upload fields", async () => {
  const { compatFilter, compatFields, describeFilter } = await import("../assets/api.js");
  assert.equal(compatFilter({}), null);
  assert.deepEqual(compatFilter({ tempo: "halfdouble", bpm: 124, keyMode: "camelot", key: "Am" }),
    { tempo: { half_double: true, bpm: 124 }, key_compat: { mode: "camelot", key: "Am" } });
  assert.deepEqual(compatFilter({ tempo: "same", unknowns: true }), { tempo: { half_double: false }, include_unknown_bpm: true });
  // The unknowns opt-in goes only with a filter on that field (alone it is a 422).
  assert.equal(compatFilter({ unknowns: true }), null);
  assert.deepEqual(compatFilter({ keyMode: "same", unknowns: true }), { key_compat: { mode: "same" }, include_unknown_key: true });
  assert.deepEqual(compatFields(compatFilter({ tempo: "same", keyMode: "fifths", unknowns: true })),
    { tempo: "seed", half_double: "false", key_compat: "fifths", include_unknown_bpm: "true", include_unknown_key: "true" });
  assert.deepEqual(compatFields(compatFilter({ tempo: "halfdouble", bpm: 87.5, keyMode: "relative", key: "F#m" })),
    { tempo: "87.5", half_double: "true", key_compat: "relative", key_compat_key: "F#m" });
  assert.deepEqual(compatFields(null), {});
  assert.equal(describeFilter(null, null), "");
  assert.equal(describeFilter({ tempo_bpm: 120, bpm_ranges: [{ min: 115.2, max: 124.8 }, { min: 57.6, max: 62.4 }], key_compat: "same", keys: ["Am"] },
    { bpm: 3, key: 0 }),
  "Tempo 120 BPM: 115.2\u2013124.8, 57.6\u201362.4. Keys: Am. Left out: 3 of unknown tempo (tick \u201cKeep loops of unknown tempo or key\u201d to see them).");
});

test("byAnomaly puts the most unusual loops first and unscored ones last; healthLabel names the causes", async () => {
  const { byAnomaly, healthLabel } = await import("../assets/api.js");
  const loops = [{ id: "a" }, { id: "b", health: { anomaly_score: 2 } }, { id: "c", health: { anomaly_score: 5 } },
    { id: "d" }, { id: "e", health: { anomaly_score: 2 } }];
  assert.deepEqual(byAnomaly(loops).map((l) => l.id), ["c", "b", "e", "a", "d"]);
  assert.deepEqual(loops.map((l) => l.id), ["a", "b", "c", "d", "e"], "the listing itself keeps its order");
  assert.deepEqual(healthLabel({ anomaly_score: 7.25, anomalous: true, causes: ["clipping", "seam_jump"] }),
    { flag: "anomalous: clipping, seam_jump", title: "Anomaly score 7.250 (above the model's threshold); likely cause: clipping, seam_jump" });
  assert.equal(healthLabel({ anomaly_score: 7.25, anomalous: true, causes: [] }).flag, "anomalous");
  assert.equal(healthLabel({ anomaly_score: 0.5, anomalous: false, causes: [] }).flag, "");
  assert.match(healthLabel(undefined).title, /--rescore/);
});

test("context: the audition's pattern per kind, its hit times at a tempo, and the request for the kept loops", async () => {
  const { pattern, hitTimes, contextRequest, MAX_CONTEXT } = await import("../assets/context.js");
  assert.deepEqual(pattern("snare"), [1, 3]);
  assert.equal(pattern("hat").length, 8);
  assert.deepEqual(hitTimes("kick", 120, 2), [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5]);
  assert.deepEqual(hitTimes("snare", 0, 1), [0.5, 1.5], "no tempo: 120 BPM");
  const tray = Array.from({ length: 7 }, (_, i) => ({ id: `id${i}`, instrument: i % 2 ? "bass" : "drum", name: `l${i}` }));
  const r = contextRequest(tray, "clap", 10);
  assert.equal(r.context.length, MAX_CONTEXT);
  assert.deepEqual(r.context[1], { id: "id1", instrument: "bass" });
  assert.deepEqual(r.target, { collection: "oneshot", kind: "clap" });
});
