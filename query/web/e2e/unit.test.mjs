// Unit tests of the page's tempo and mixing arithmetic (assets/player.js), in Node.
import { test } from "node:test";
import assert from "node:assert/strict";
import { beatsIn, loopLength, previewLength, tempoRate, mixGains, bpmFromName } from "../assets/player.js";

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
