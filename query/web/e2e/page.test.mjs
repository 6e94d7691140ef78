// End-to-end tests of the producer's page: a real `loopmatch serve` on the demo library,
// the page in headless Chromium (Debian's chromium, driven by playwright-core).
//
// Playback is checked where it is decided: an init script wraps
// AudioBufferSourceNode.prototype.start and records, for every start, the time it was
// scheduled for, the context, the loop points, the playback rate and the buffer. The
// expected loop points and rates are computed here from the loops' BPM and decoded
// durations, independently of the page's own code.
//
// LOOPMATCH_SCREENSHOTS=DIR saves the main states of the page as PNG files in DIR.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import path from "node:path";
import { chromium } from "playwright-core";
import { startServer, AIFF_LOOPS, DAMAGED_LOOP, E2E_EMBEDDER } from "./server.mjs";
import { drumLoopWAV } from "./wav.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SHOTS = process.env.LOOPMATCH_SCREENSHOTS || "";

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  if (SHOTS) await mkdir(SHOTS, { recursive: true });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

// Runs in the page before its scripts: records every AudioBufferSourceNode.start.
function recordStarts() {
  window.__starts = [];
  const contexts = [];
  const orig = AudioBufferSourceNode.prototype.start;
  AudioBufferSourceNode.prototype.start = function (when = 0, offset = 0, duration) {
    let ctx = contexts.indexOf(this.context);
    if (ctx < 0) ctx = contexts.push(this.context) - 1;
    window.__starts.push({
      when, offset, ctx, ctxTime: this.context.currentTime, loop: this.loop, loopStart: this.loopStart,
      loopEnd: this.loopEnd, rate: this.playbackRate.value, duration: this.buffer ? this.buffer.duration : null,
      sampleRate: this.buffer ? this.buffer.sampleRate : null,
    });
    return orig.apply(this, arguments);
  };
}

async function openPage(t) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  await context.addInitScript(recordStarts);
  const page = await context.newPage();
  const problems = [];
  const foreign = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error" && !/status of 4\d\d/.test(m.text())) problems.push(`console: ${m.text()}`); });
  page.on("request", (r) => { if (!r.url().startsWith(server.url) && !r.url().startsWith("blob:") && !r.url().startsWith("data:")) foreign.push(r.url()); });
  t.after(async () => {
    await context.close();
    assert.deepEqual(problems, [], "the page logged errors");
    assert.deepEqual(foreign, [], "the page requested something outside its own server");
  });
  await page.goto(server.url + "/");
  await page.waitForSelector("#library li");
  return page;
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

const lm = (page) => page.evaluate(() => ({
  lastStart: window.__loopmatch.lastStart, playing: window.__loopmatch.playing, selected: window.__loopmatch.selected,
  items: window.__loopmatch.items, seed: window.__loopmatch.seed, time: window.__loopmatch.contextTime,
  state: window.__loopmatch.contextState, starts: window.__starts,
}));

/** Searches the library and takes the first loop found as the seed. */
async function chooseSeed(page, q) {
  await page.fill("#q", q);
  await page.click("#search-btn");
  await page.waitForFunction((q) => {
    const names = [...document.querySelectorAll("#library li .name:not(.meta)")].map((e) => e.textContent.toLowerCase());
    return names.length > 0 && names.every((n) => q.split(" ").every((w) => n.includes(w)));
  }, q.toLowerCase());
  const name = await page.textContent("#library li .name:not(.meta)");
  await page.click("#library li button.use");
  await waitResults(page);
  return name;
}

async function waitResults(page) {
  await page.waitForSelector("#results li.loop");
  await page.waitForFunction(() => {
    const l = window.__loopmatch;
    return l.seed && l.seed.decoded && l.items.length > 0 && l.items.every((i) => i.decoded);
  }, null, { timeout: 30000 });
}

// The expected schedule, from first principles.
const loopOf = (duration, bpm) => (bpm > 0 ? (Math.max(1, Math.round((duration * bpm) / 60)) * 60) / bpm : duration);
function rateOf(seedBPM, candBPM) {
  if (!(seedBPM > 0 && candBPM > 0)) return 1;
  let r = seedBPM / candBPM;
  while (r > Math.SQRT2) r /= 2;
  while (r < Math.SQRT1_2) r *= 2;
  return r;
}
const close = (a, b, what, eps = 1e-6) => assert.ok(Math.abs(a - b) <= eps, `${what}: ${a}, want ${b}`);

/** The two latest starts are the seed and the candidate, scheduled together. */
async function assertSynced(page, item) {
  await page.waitForFunction(() => window.__loopmatch.playing);
  const s0 = await lm(page);
  const [seed, cand] = s0.starts.slice(-2);
  assert.ok(seed && cand, "two sources were started");
  assert.equal(seed.ctx, cand.ctx, "both sources play in one AudioContext");
  assert.equal(seed.when, cand.when, "seed and candidate start at the same AudioContext time");
  assert.ok(seed.when > seed.ctxTime, `the start (${seed.when}) is scheduled ahead of the context time (${seed.ctxTime})`);
  assert.ok(seed.loop && cand.loop, "both sources loop");
  assert.equal(seed.offset, 0);
  assert.deepEqual({ seedT0: s0.lastStart.seedT0, candT0: s0.lastStart.candT0 }, { seedT0: seed.when, candT0: cand.when });
  const it = s0.items.find((x) => x.id === item.id);
  // A long loop plays from the window that matched best; a preview from its start.
  const wantOffset = it.kind === "loop" && it.window_offset > 0 && it.window_offset < cand.loopEnd ? it.window_offset : 0;
  close(cand.offset, wantOffset, "candidate start offset (its matched window)", 1e-9);
  assert.equal(s0.lastStart.candOffset, cand.offset);
  close(seed.rate, 1, "seed playback rate");
  close(seed.loopEnd, loopOf(s0.seed.duration, s0.seed.bpm), "seed loopEnd", 1e-5);
  if (it.kind === "preview") {
    close(cand.rate, 1, "preview playback rate");
    const bar = 240 / s0.seed.bpm;
    close(cand.loopEnd, Math.floor(it.duration / bar + 1e-9) * bar, "preview loopEnd (whole bars at the seed's tempo)", 1e-5);
  } else {
    close(cand.rate, rateOf(s0.seed.bpm, it.bpm), "candidate playback rate (varispeed)", 1e-5);
    close(cand.loopEnd, loopOf(it.duration, it.bpm), "candidate loopEnd", 1e-5);
  }
  assert.ok(cand.duration >= cand.loopEnd - 1e-6, "the candidate's buffer holds its loop");
  // The clock runs past t0: the context really plays.
  await page.waitForFunction((t0) => window.__loopmatch.contextTime > t0 + 0.2, seed.when, { timeout: 10000 });
  assert.equal((await lm(page)).state, "running");
  return { seed, cand };
}

test("the page loads with the library and the instrument pairs", async (t) => {
  const page = await openPage(t);
  assert.equal(await page.title(), "loopmatch: audition loops in time with your seed");
  assert.equal(await page.inputValue("#from"), "drum");
  assert.equal(await page.inputValue("#to"), "bass");
  assert.match(await page.textContent("#lib-status"), /drum loops?: pick one/);
  assert.ok(await page.locator("#library li").count() > 10);
  assert.match(await page.textContent("#bundle"), /loopmatch-v2/);
  await shot(page, "initial");
});

test("the library search filters by name, BPM, key and pack", async (t) => {
  const page = await openPage(t);
  await page.fill("#q", "house");
  await page.fill("#minbpm", "125");
  await page.fill("#maxbpm", "125");
  await page.click("#search-btn");
  await page.waitForFunction(() => /pick one/.test(document.querySelector("#lib-status").textContent) &&
    [...document.querySelectorAll("#library li .meta")].every((m) => /^125 BPM/.test(m.textContent)));
  const rows = await page.$$eval("#library li", (lis) => lis.map((li) => li.textContent));
  assert.ok(rows.length > 0);
  for (const r of rows) assert.match(r, /house/i);
  const pack = (await page.textContent("#library li .meta")).split(" \u00b7 ").at(-1);
  await page.fill("#q", "");
  await page.fill("#minbpm", "");
  await page.fill("#maxbpm", "");
  await page.fill("#pack", pack);
  await page.click("#search-btn");
  await page.waitForFunction((pack) => [...document.querySelectorAll("#library li .meta")].every((m) => m.textContent.endsWith(pack)), pack);
  assert.ok(await page.locator("#library li").count() >= 1);
  // Another instrument lists its own loops.
  await page.fill("#pack", "");
  await page.selectOption("#from", "bass");
  await page.waitForFunction(() => [...document.querySelectorAll("#library li .name:not(.meta)")].every((n) => /bass/.test(n.textContent)));
  assert.equal(await page.inputValue("#to"), "drum");
});

test("a stored seed gets ranked loops that play in sync with it", async (t) => {
  const page = await openPage(t);
  const seedName = await chooseSeed(page, "house drum main");
  assert.match(await page.textContent("#rec-status"), /bass loops? for/);
  const first = page.locator("#results li.loop").first();
  const text = await first.textContent();
  assert.match(text, /score \d\.\d{3}/);
  assert.match(text, /\d+ BPM/);
  assert.match(text, /Pack\d+-/);
  assert.equal(await page.textContent("#seed-name"), seedName);
  // Every waveform is drawn (non-empty pixels) from the decoded audio.
  const drawn = await page.$$eval("#results li canvas, #seed-wave", (cs) => cs.map((c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  }));
  assert.ok(drawn.every((n) => n > 50), `waveforms drawn: ${drawn}`);
  await shot(page, "results");

  // Space plays the selected loop (rank 1) with the seed.
  await page.locator("body").focus();
  await page.keyboard.press("Space");
  const s = await lm(page);
  const rank1 = s.items.find((i) => i.kind === "loop");
  await assertSynced(page, rank1);
  assert.match(await page.textContent("#play-status"), /Playing rank 1/);
  assert.equal(await first.locator("button.play").getAttribute("aria-pressed"), "true");
  await shot(page, "playing");

  // A loop of another tempo follows the seed's by varispeed (when the results have one).
  const other = s.items.findIndex((i) => i.kind === "loop" && i.bpm !== s.seed.bpm);
  if (other >= 0) {
    await page.locator(`#results li[data-index="${other}"] button.play`).click();
    await page.waitForFunction((id) => window.__loopmatch.lastStart.candidate === id, s.items[other].id);
    const { cand } = await assertSynced(page, s.items[other]);
    close(cand.rate, rateOf(s.seed.bpm, s.items[other].bpm), "rate of a loop at another tempo", 1e-6);
    assert.match(await page.textContent("#play-status"), /Varispeed/);
    await shot(page, "tempo-follow");
  } else {
    t.diagnostic("every result has the seed's tempo: the seed tempo field tests tempo follow");
  }

  // A different seed tempo: the candidate follows it by varispeed, restarted in sync.
  const current = other >= 0 ? s.items[other] : rank1;
  // A tempo the candidate does not have, so it must follow by varispeed.
  const newTempo = current.bpm === 100 ? 90 : 100;
  await page.fill("#seedbpm", String(newTempo));
  await page.locator("#seedbpm").blur();
  await page.waitForFunction((want) => window.__loopmatch.lastStart && Math.abs(window.__loopmatch.lastStart.rate - want) < 1e-6,
    rateOf(newTempo, current.bpm));
  const { cand } = await assertSynced(page, current);
  // playbackRate is a float32 AudioParam.
  close(cand.rate, rateOf(newTempo, current.bpm), "rate after the seed tempo changed", 1e-6);
  assert.match(await page.textContent("#play-status"), /Varispeed/);

  // Space stops.
  await page.locator("body").focus();
  await page.keyboard.press("Space");
  await page.waitForFunction(() => !window.__loopmatch.playing);
  assert.equal(await page.textContent("#play-status"), "Stopped.");
});

test("more like this lists loops like a result, and the tray recommends from kept loops", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "house drum main");
  const first = (await lm(page)).items.find((i) => i.kind === "loop");
  await page.locator("#results li.loop").first().locator("button.like").click();
  await page.waitForFunction(() => /like /.test(document.querySelector("#rec-status").textContent));
  await waitResults(page);
  const like = await lm(page);
  assert.match(await page.textContent("#rec-status"), new RegExp(`^\\d+ bass loops? like `));
  assert.ok(like.items.length > 0 && like.items.every((i) => i.kind === "loop" && i.id !== first.id), "the loop itself is not among those like it");
  // They play with the seed, in sync, as recommendations do.
  await page.locator("#results li.loop").first().locator("button.play").click();
  await assertSynced(page, like.items[0]);
  await shot(page, "more-like-this");

  // Keep two loops: the tray lists them, and the browser remembers them.
  assert.equal(await page.isDisabled("#tray-recommend"), true);
  await page.locator("#results li.loop").nth(0).locator("button.keep").click();
  await page.locator("#results li.loop").nth(1).locator("button.keep").click();
  assert.equal(await page.locator("#results li.loop").nth(0).locator("button.keep").getAttribute("aria-pressed"), "true");
  assert.equal(await page.locator("#tray li").count(), 2);
  const stored = await page.evaluate(() => JSON.parse(localStorage.getItem("loopmatch.tray")));
  assert.deepEqual(stored.map((x) => x.id), like.items.slice(0, 2).map((i) => i.id));
  await page.reload();
  await page.waitForSelector("#library li");
  assert.equal(await page.locator("#tray li").count(), 2, "the tray survives a reload");

  // Recommend from the tray: bass loops, none of the kept ones.
  await page.click("#tray-recommend");
  await page.waitForFunction(() => /kept bass loops/.test(document.querySelector("#rec-status").textContent));
  const prof = await lm(page);
  assert.ok(prof.items.length > 0, "the tray gives recommendations");
  for (const i of prof.items) assert.ok(!stored.some((x) => x.id === i.id), `kept loop ${i.id} recommended again`);
  await shot(page, "tray");

  // Removing one and emptying the tray.
  await page.locator("#tray li").first().locator("button").click();
  assert.equal(await page.locator("#tray li").count(), 1);
  await page.click("#tray-clear");
  assert.equal(await page.locator("#tray li").count(), 0);
  assert.equal(await page.isDisabled("#tray-recommend"), true);
});

test("the kept loops are a context: one-shots of a kind ranked for it, auditioned with it on a pattern", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "house drum main");
  assert.equal(await page.isDisabled("#context-find"), true, "no kept loops, no context");
  // keep the seed's first two results (bass loops): they are the context
  await page.locator("#results li.loop").nth(0).locator("button.keep").click();
  await page.locator("#results li.loop").nth(1).locator("button.keep").click();
  await page.selectOption("#context-kind", "snare");
  await page.click("#context-find");
  await page.waitForFunction(() => window.__loopmatch.context.oneshots.length > 0 || /No snare/.test(document.querySelector("#context-status").textContent));
  const c = await page.evaluate(() => window.__loopmatch.context);
  assert.ok(c.oneshots.length > 0, "the demo library's snares are ranked");
  assert.ok(c.oneshots.every((o) => o.kind === "snare"), "only snares");
  for (let i = 1; i < c.oneshots.length; i++) assert.ok(c.oneshots[i - 1].score >= c.oneshots[i].score, "best first");
  assert.equal(await page.locator("#oneshots li").count(), c.oneshots.length);
  assert.match(await page.textContent("#context-status"), /snare one-shots? for the context, best first/);
  // audition the best: the context plays with the snare scheduled on 2 and 4
  await page.locator("#oneshots li").first().locator("button").click();
  await page.waitForFunction(() => window.__loopmatch.context.playing && window.__loopmatch.context.hits >= 4);
  const p = await page.evaluate(() => window.__loopmatch.context);
  assert.equal(p.audition, c.oneshots[0].id);
  await shot(page, "context-oneshots");
  await page.click("#context-stop");
  assert.equal((await page.evaluate(() => window.__loopmatch.context)).playing, false);
});

test("more like this and the tray rank by another embedder the library was ingested with", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "house drum main");
  await waitResults(page);
  // the selector lists the latent and the one embedder the library holds, not the bundle's other
  assert.equal(await page.isVisible("#embedder-field"), true);
  const options = await page.locator("#embedder option").evaluateAll((os) => os.map((o) => o.value));
  assert.deepEqual(options, ["latent", E2E_EMBEDDER]);
  assert.equal(await page.inputValue("#embedder"), "latent", "the latent is the default");

  await page.selectOption("#embedder", E2E_EMBEDDER);
  const first = (await lm(page)).items.find((i) => i.kind === "loop");
  await page.locator("#results li.loop").first().locator("button.like").click();
  await page.waitForFunction((e) => new RegExp(`like .* by ${e}`).test(document.querySelector("#rec-status").textContent), E2E_EMBEDDER);
  await waitResults(page);
  const like = await lm(page);
  const k = like.items.length;
  // the page shows what the API answers for this embedder, which is not the latent's answer
  const byEmbedder = await page.evaluate(async ({ id, e, k }) => (await (await fetch("/v1/similar", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ seed_id: id, instrument: "bass", k, embedder: e }) })).json()), { id: first.id, e: E2E_EMBEDDER, k });
  assert.equal(byEmbedder.embedder, E2E_EMBEDDER);
  assert.deepEqual(like.items.map((i) => i.id), byEmbedder.results.map((r) => r.id));
  const byLatent = await page.evaluate(async ({ id, k }) => (await (await fetch("/v1/similar", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ seed_id: id, instrument: "bass", k }) })).json()), { id: first.id, k });
  assert.equal(byLatent.embedder, "latent");
  assert.notDeepEqual(byLatent.results.map((r) => r.id), byEmbedder.results.map((r) => r.id), "the two representations rank the same");

  // the tray's profile of bass loops for bass loops ranks by it too
  await page.locator("#results li.loop").nth(0).locator("button.keep").click();
  await page.locator("#results li.loop").nth(1).locator("button.keep").click();
  await page.click("#tray-recommend");
  await page.waitForFunction((e) => new RegExp(`kept bass loops by ${e}`).test(document.querySelector("#rec-status").textContent), E2E_EMBEDDER);
  assert.ok((await lm(page)).items.length > 0, "the tray gives recommendations by the embedder");
  await page.click("#tray-clear");
});

test("each result says which stage ranked it, and the rerank toggle follows the bundle", async (t) => {
  const page = await openPage(t);
  const rr = await page.evaluate(async () => (await (await fetch("/v1/collections")).json()).rerank);
  // No preview: the stage is about the ranked loops (and a test bundle's preview, at its
  // 100 Hz, is not audio a browser decodes: LOOPMATCH_BUNDLE=onnx/testdata/bundle runs this
  // test against a bundle with a scorer).
  await page.setChecked("#preview", false);
  await chooseSeed(page, "house drum main");
  const box = page.locator("#rerank");
  const stages = () => page.$$eval("#results li.loop .stage", (els) => els.map((e) => e.textContent));
  if (!rr.available) {
    // This bundle has no pair model: the toggle is off and says why; the cosine search ranks.
    assert.equal(await box.isDisabled(), true);
    assert.equal(await box.isChecked(), false);
    assert.match(await page.getAttribute("#rerank-label", "title"), /no pair model/);
    const s = await stages();
    assert.ok(s.length > 0 && s.every((x) => x === "cosine"), `stages: ${s}`);
    assert.match(await page.textContent("#rec-status"), /score: cosine similarity/);
    t.diagnostic("the bundle has no scorer: tested the page without one");
    return;
  }
  assert.equal(await box.isDisabled(), false);
  assert.equal(await box.isChecked(), rr.default);
  await box.setChecked(true);
  await page.waitForFunction(() => /reranked by the pair model/.test(document.querySelector("#rec-status").textContent));
  await waitResults(page);
  const on = await stages();
  assert.ok(on.length > 0 && on.every((x) => x === "pair model"), `stages with rerank: ${on}`);
  assert.match(await page.locator("#results li.loop .meta").first().textContent(), /pair -?\d+\.\d{3} \u00b7 cosine -?\d\.\d{3} \(was #\d+\)/);
  await shot(page, "reranked");
  await box.setChecked(false);
  await page.waitForFunction(() => /score: cosine similarity/.test(document.querySelector("#rec-status").textContent));
  await waitResults(page);
  const off = await stages();
  assert.ok(off.length > 0 && off.every((x) => x === "cosine"), `stages without rerank: ${off}`);
});

test("the hub toggle follows the bundle, and the status and result lines say how loops were scored", async (t) => {
  const page = await openPage(t);
  const hub = await page.evaluate(async () => (await (await fetch("/v1/collections")).json()).hub);
  await page.setChecked("#preview", false);
  await chooseSeed(page, "house drum main");
  const box = page.locator("#hub");
  const status = () => page.textContent("#rec-status");
  const firstMeta = () => page.locator("#results li.loop .meta").first().textContent();
  if (!hub.available) {
    assert.equal(await box.isDisabled(), true);
    assert.equal(await box.isChecked(), false);
    assert.match(await page.getAttribute("#hub-label", "title"), /no hubness correction/);
    assert.doesNotMatch(await status(), /hub score/);
    t.diagnostic("the bundle has no hubness correction: tested the page without one");
    return;
  }
  assert.equal(await box.isDisabled(), false);
  assert.equal(await box.isChecked(), hub.default);
  await box.setChecked(true);
  await page.waitForFunction(() => /less [\d.]+ \u00d7 its hub score/.test(document.querySelector("#rec-status").textContent));
  await waitResults(page);
  assert.match(await firstMeta(), /score -?\d\.\d{3} \u00b7 cosine -?\d\.\d{3} \(was #\d+\), hub -?\d\.\d{3}/);
  await box.setChecked(false);
  await page.waitForFunction(() => /score: cosine similarity to the predicted loop\)/.test(document.querySelector("#rec-status").textContent));
  await waitResults(page);
  assert.doesNotMatch(await firstMeta(), /hub/);
});

test("arrow keys move through the results and switch the playing loop in sync", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "techno drum busy");
  const before = await lm(page);
  assert.equal(before.items[before.selected].kind, "loop");
  await page.locator("#playstop").click();
  await assertSynced(page, before.items[before.selected]);
  const n0 = (await lm(page)).starts.length;
  await page.keyboard.press("ArrowDown");
  await page.waitForFunction((n) => window.__starts.length >= n + 2 && window.__loopmatch.playing, n0);
  const s1 = await lm(page);
  assert.equal(s1.selected, before.selected + 1);
  assert.equal(s1.lastStart.candidate, s1.items[s1.selected].id);
  await assertSynced(page, s1.items[s1.selected]);
  // The focus follows the selection, onto the row's play button.
  assert.equal(await page.evaluate(() => document.activeElement.closest("li").dataset.index), String(s1.selected));
  await page.keyboard.press("ArrowUp");
  await page.keyboard.press("ArrowUp");
  await page.waitForFunction(() => window.__loopmatch.selected === 0 && window.__loopmatch.lastStart.kind === "preview");
  await assertSynced(page, (await lm(page)).items[0]);
});

test("the best-guess preview plays in sync, looping whole bars of the seed's tempo", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "disco drum main");
  const prev = page.locator("#results li.preview");
  await prev.locator("button.play").click();
  const s = await lm(page);
  assert.equal(s.items[0].kind, "preview");
  await page.waitForFunction(() => window.__loopmatch.lastStart && window.__loopmatch.lastStart.kind === "preview");
  await assertSynced(page, s.items[0]);
  assert.match(await page.textContent("#play-status"), /preview loops \d+ bar/);
  // Another seed instrument: a stored seed of the old one no longer applies.
  await page.selectOption("#from", "bass");
  await page.waitForFunction(() => !window.__loopmatch.playing && !window.__loopmatch.seed);
  assert.equal(await page.isHidden("#current-seed"), true);
  assert.equal(await page.locator("#results li").count(), 0);
  assert.equal(await page.isDisabled("#recommend"), true);
});

test("solo, mute and volume per track", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "house drum busy");
  await page.locator("#playstop").click();
  await page.waitForFunction(() => window.__loopmatch.playing);
  const gains = (want) => page.waitForFunction((want) => JSON.stringify(window.__loopmatch.gains) === JSON.stringify(want), want, { timeout: 5000 });
  await gains([1, 1]);
  await page.click("button.solo[data-track=seed]");
  await gains([1, 0]);
  assert.equal(await page.getAttribute("button.solo[data-track=seed]", "aria-pressed"), "true");
  await page.click("button.mute[data-track=seed]");
  await gains([0, 0]);
  await page.click("button.solo[data-track=seed]");
  await gains([0, 1]);
  await page.click("button.mute[data-track=seed]");
  await gains([1, 1]);
  await page.focus("input.vol[data-track=cand]");
  await page.keyboard.press("Home");
  await gains([1, 0]);
  await page.keyboard.press("End");
  await gains([1, 1.5]);
});

test("an AIFF seed and AIFF results play in sync, through the server's WAV rendition", async (t) => {
  const page = await openPage(t);
  const wavRequests = [];
  page.on("request", (r) => { if (/\/audio\?format=wav$/.test(r.url())) wavRequests.push(r.url()); });
  // Every bass loop comes back, the AIFF copies among them.
  await page.fill("#k", "100");
  const seedName = await chooseSeed(page, "mac kick groove");
  assert.equal(seedName, AIFF_LOOPS[0].name);
  const s = await lm(page);
  // Chromium cannot decode the AIFF itself: the seed was decoded from its WAV rendition.
  assert.equal(s.seed.rendition, "wav", "the AIFF seed is played from the WAV rendition");
  assert.ok(s.seed.duration > 1, `decoded seed duration ${s.seed.duration}`);
  assert.ok(wavRequests.some((u) => u.includes(`/v1/loops/drum/${s.seed.id}/audio?format=wav`)), `requests: ${wavRequests}`);
  const aiffNames = new Set(AIFF_LOOPS.filter((l) => l.instrument === "bass").map((l) => l.name));
  const aiff = s.items.filter((i) => aiffNames.has(i.name));
  assert.equal(aiff.length, aiffNames.size, `AIFF results: ${aiff.map((i) => i.name)}`);
  for (const it of aiff) assert.equal(it.rendition, "wav", `${it.name} is played from the WAV rendition`);
  // Loops the browser decodes itself are fetched as they are.
  assert.ok(s.items.some((i) => i.kind === "loop" && i.rendition === ""), "FLAC results decode without a rendition");
  // The seed's waveform is drawn from the rendition.
  const seedPixels = await page.$eval("#seed-wave", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(seedPixels > 50, `seed waveform pixels: ${seedPixels}`);
  // An AIFF result plays with the AIFF seed, started at the same context time.
  const idx = s.items.findIndex((i) => i.id === aiff[0].id);
  await page.locator(`#results li[data-index="${idx}"] button.play`).click();
  await page.waitForFunction((id) => window.__loopmatch.lastStart && window.__loopmatch.lastStart.candidate === id, aiff[0].id);
  await assertSynced(page, aiff[0]);
  await shot(page, "aiff");
});

test("a candidate downloads under its file name", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "trap drum main");
  const row = page.locator("#results li.loop").first();
  const name = await row.locator(".name:not(.meta)").textContent();
  const [dl] = await Promise.all([page.waitForEvent("download"), row.locator("button.download").click()]);
  assert.equal(dl.suggestedFilename(), name);
  const bytes = await readFile(await dl.path());
  assert.equal(bytes.subarray(0, 4).toString("latin1"), "fLaC");
  assert.ok(bytes.length > 1000);
});

test("an uploaded WAV is the seed: results and synced playback at its tempo", async (t) => {
  const page = await openPage(t);
  await page.setInputFiles("#file", { name: "my_groove_120bpm.wav", mimeType: "audio/wav", buffer: drumLoopWAV({ bpm: 120 }) });
  await waitResults(page);
  assert.equal(await page.inputValue("#seedbpm"), "120");
  assert.match(await page.textContent("#seed-name"), /my_groove_120bpm\.wav/);
  assert.ok(await page.locator("#results li.loop").count() >= 5);
  const s = await lm(page);
  assert.equal(s.seed.kind, "upload");
  close(s.seed.duration, 4, "decoded seed duration", 1e-3);
  await page.locator("#results li.loop button.play").first().click();
  await assertSynced(page, s.items.find((i) => i.kind === "loop"));
  await shot(page, "upload");
});

test("a dropped WAV is the seed", async (t) => {
  const page = await openPage(t);
  const b64 = drumLoopWAV({ bpm: 90, bars: 1, seed: 7 }).toString("base64");
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "dropped_90bpm.wav", { type: "audio/wav" }));
    document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, b64);
  await waitResults(page);
  assert.match(await page.textContent("#seed-name"), /dropped_90bpm\.wav/);
  assert.equal(await page.inputValue("#seedbpm"), "90");
  assert.ok(await page.locator("#results li.loop").count() >= 5);
  // The same file asked about as a bass loop: drum loops come back.
  await page.selectOption("#from", "bass");
  await page.waitForFunction(() => /drum loops? for dropped_90bpm/.test(document.querySelector("#rec-status").textContent));
  await waitResults(page);
});

test("a dropped AIFF is the seed and plays in sync (read by the page: Chromium refuses AIFF)", async (t) => {
  const page = await openPage(t);
  const dir = await mkdtemp(path.join(tmpdir(), "loopmatch-e2e-aiff-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, "in.wav"), drumLoopWAV({ bpm: 100, bars: 1, seed: 11 }));
  await promisify(execFile)("sox", ["-D", path.join(dir, "in.wav"), "-b", "24", "-c", "2", path.join(dir, "out.aiff")]);
  const b64 = (await readFile(path.join(dir, "out.aiff"))).toString("base64");
  await page.evaluate((b64) => {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], "mac_groove_100bpm.aif", { type: "audio/aiff" }));
    document.getElementById("drop").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, b64);
  await waitResults(page);
  assert.match(await page.textContent("#seed-name"), /mac_groove_100bpm\.aif/);
  assert.equal(await page.inputValue("#seedbpm"), "100");
  const s = await lm(page);
  assert.equal(s.seed.kind, "upload");
  close(s.seed.duration, 2.4, "decoded seed duration (one bar at 100 BPM)", 1e-3);
  await page.locator("#results li.loop button.play").first().click();
  await assertSynced(page, s.items.find((i) => i.kind === "loop"));
});

test("a file that is not audio gives a readable error", async (t) => {
  const page = await openPage(t);
  await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("these are not sounds\n".repeat(20)) });
  await page.waitForSelector("#error:not([hidden])");
  assert.equal(await page.textContent("#error-title"), "The uploaded file is not a supported audio format");
  const detail = await page.textContent("#error-detail");
  assert.ok(detail.length > 10 && !detail.includes("{"), `detail: ${detail}`);
  assert.match(await page.textContent("#error-id"), /Request id [0-9a-f]+ \(HTTP 415\)/);
  assert.equal(await page.locator("#results li").count(), 0);
  assert.match(await page.textContent("#rec-status"), /No recommendations/);
  await shot(page, "error");
  await page.click("#error-close");
  assert.equal(await page.isHidden("#error"), true);
});

test("a bad filter gives a readable error from the API", async (t) => {
  const page = await openPage(t);
  await page.fill("#key", "H");
  await page.click("#search-btn");
  await page.waitForSelector("#error:not([hidden])");
  assert.equal(await page.textContent("#error-title"), "A parameter is out of range or inconsistent");
  assert.match(await page.textContent("#error-detail"), /key "H" is not a musical key/);
});

// The Camelot wheel, written out: the keys that mix with a key (itself, its relative, a
// fifth up and down), independently of the page and the server.
const WHEEL = { Abm: "1A", Ebm: "2A", Bbm: "3A", Fm: "4A", Cm: "5A", Gm: "6A", Dm: "7A", Am: "8A", Em: "9A", Bm: "10A",
  "F#m": "11A", Dbm: "12A", B: "1B", "F#": "2B", Db: "3B", Ab: "4B", Eb: "5B", Bb: "6B", F: "7B", C: "8B", G: "9B", D: "10B",
  A: "11B", E: "12B" };
function camelotKeys(key) {
  const code = WHEEL[key];
  const n = parseInt(code, 10);
  const l = code.slice(-1);
  const at = (m, letter) => Object.keys(WHEEL).find((k) => WHEEL[k] === `${((m + 11) % 12) + 1}${letter}`);
  return [key, at(n, l === "A" ? "B" : "A"), at(n + 1, l), at(n - 1, l)];
}

test("tempo and key filters keep compatible loops and say what they left out", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "house drum main");
  const seed = (await lm(page)).seed;
  assert.ok(seed.bpm > 0 && WHEEL[seed.key], `the demo seed has a tempo and a key: ${JSON.stringify(seed)}`);
  const apiSays = (filter) => page.evaluate(async ({ id, filter }) => {
    const r = await fetch("/v1/recommend", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ seed_id: id, from: "drum", to: "bass", k: 10, filter }) });
    return r.json();
  }, { id: seed.id, filter });
  const settled = (want) => page.waitForFunction((want) => {
    const f = document.querySelector("#rec-filter");
    return !f.hidden && f.textContent.includes(want) && !/Finding/.test(document.querySelector("#rec-status").textContent);
  }, want, { timeout: 30000 });
  const loops = async () => (await lm(page)).items.filter((i) => i.kind === "loop");

  // Tempo: the seed's, within 4 %, or half or double it.
  await page.selectOption("#tempomatch", "halfdouble");
  await settled("Tempo");
  const inTempo = (bpm) => [seed.bpm, seed.bpm / 2, seed.bpm * 2].some((b) => bpm >= b * 0.96 - 1e-9 && bpm <= b * 1.04 + 1e-9);
  let api = await apiSays({ tempo: { half_double: true, bpm: seed.bpm } });
  let got = await loops();
  assert.deepEqual(got.map((i) => i.id), api.results.map((r) => r.id), "the page shows what the API answers");
  for (const it of got) assert.ok(inTempo(it.bpm), `${it.name} at ${it.bpm} BPM does not match ${seed.bpm}`);
  const left = api.excluded_unknown && api.excluded_unknown.bpm;
  assert.equal(/Left out: \d+ of unknown tempo/.test(await page.textContent("#rec-filter")), left > 0, "the left-out count is shown when there is one");
  await shot(page, "tempo-filter");

  // Key: Camelot neighbours of the seed's key, on top of the tempo.
  await page.selectOption("#keymatch", "camelot");
  const keys = camelotKeys(seed.key);
  await settled(`Keys: ${keys.join(", ")}.`);
  api = await apiSays({ tempo: { half_double: true, bpm: seed.bpm }, key_compat: { mode: "camelot" } });
  got = await loops();
  assert.deepEqual(got.map((i) => i.id), api.results.map((r) => r.id));
  for (const it of got) assert.ok(keys.includes(it.key) && inTempo(it.bpm), `${it.name} (${it.bpm} BPM, ${it.key}) passes the filters`);

  // Unknowns kept: nothing is left out any more.
  await page.check("#unknowns");
  await page.waitForFunction(() => !/Left out|Finding/.test(document.querySelector("#rec-filter").textContent + document.querySelector("#rec-status").textContent));
  // Back to any tempo and key: the filter line goes.
  await page.selectOption("#tempomatch", "");
  await page.selectOption("#keymatch", "");
  await page.waitForFunction(() => document.querySelector("#rec-filter").hidden);

  // The seed picker: a key and its Camelot neighbours.
  await page.fill("#q", "");
  await page.fill("#key", "Am");
  await page.selectOption("#libkeymatch", "camelot");
  await page.click("#search-btn");
  await page.waitForFunction(() => /pick one/.test(document.querySelector("#lib-status").textContent));
  const metas = await page.$$eval("#library li .meta", (ms) => ms.map((m) => m.textContent.split(" \u00b7 ")[1]));
  assert.ok(metas.length > 0);
  for (const k of metas) assert.ok(["Am", "C", "Em", "Dm"].includes(k), `listed key ${k} is not a neighbour of Am`);
  assert.ok(metas.some((k) => k !== "Am"), "the neighbours are listed too");
});

test("loops flagged anomalous carry a badge, list alone, sort first, and can be left out of the results", async (t) => {
  const page = await openPage(t);
  await page.selectOption("#from", "bass");
  await page.waitForFunction(() => /bass loops?: pick one/.test(document.querySelector("#lib-status").textContent));
  const api = await page.evaluate(async () => (await fetch("/v1/loops/bass?limit=500")).json());
  assert.ok(api.loops.every((l) => l.health), "every loop is scored at ingest");
  const flagged = api.loops.filter((l) => l.health.anomalous);
  const damaged = api.loops.find((l) => l.name === DAMAGED_LOOP.name);
  assert.ok(damaged && damaged.health.anomalous, `the clipped loop is flagged: ${JSON.stringify(damaged && damaged.health)}`);
  assert.ok(damaged.health.causes.includes("clipping"), `the clipped loop's causes: ${damaged.health.causes}`);

  // Health: flagged anomalous lists exactly the flagged loops, each with its badge.
  await page.selectOption("#libhealth", "true");
  await page.waitForFunction((n) => {
    const lis = [...document.querySelectorAll("#library li")];
    return lis.length === n && lis.every((li) => li.querySelector(".flag"));
  }, flagged.length);
  const badge = await page.locator("#library li", { hasText: DAMAGED_LOOP.name }).locator(".flag").textContent();
  assert.match(badge, /^anomalous: .*clipping/);
  await shot(page, "anomalous-loops");

  // Order: most unusual first, over the loops listed.
  await page.selectOption("#libhealth", "");
  await page.selectOption("#libsort", "anomaly");
  await page.waitForFunction(() => document.querySelectorAll("#library li").length >= 50 && !/Searching/.test(document.querySelector("#lib-status").textContent));
  const scores = await page.$$eval("#library li", (lis) => lis.map((li) => parseFloat(li.dataset.anomaly)));
  for (let i = 1; i < scores.length; i++) assert.ok(scores[i] <= scores[i - 1], `listed in order of anomaly score: ${scores}`);
  const firstPage = await page.evaluate(async () => (await fetch("/v1/loops/bass?limit=50")).json());
  assert.equal(scores[0], Math.max(...firstPage.loops.map((l) => l.health.anomaly_score)));
  await page.selectOption("#libsort", "");
  const inOrder = await page.$$eval("#library li", (lis) => lis.map((li) => li.dataset.id));
  assert.deepEqual(inOrder, firstPage.loops.map((l) => l.id), "library order is the API's");

  // Recommendations: the flagged loops can be left out.
  await page.selectOption("#from", "drum");
  await chooseSeed(page, "house drum main");
  const seed = (await lm(page)).seed;
  await page.fill("#k", "60");
  await page.check("#exclude-anomalous");
  await page.waitForFunction(() => !/Finding/.test(document.querySelector("#rec-status").textContent) &&
    window.__loopmatch.items.filter((i) => i.kind === "loop").length > 0);
  const items = (await lm(page)).items.filter((i) => i.kind === "loop");
  assert.ok(items.every((i) => !(i.health && i.health.anomalous)), "no flagged loop among the results");
  const want = await page.evaluate(async (id) => (await (await fetch("/v1/recommend", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ seed_id: id, from: "drum", to: "bass", k: 60, filter: { exclude_anomalous: true } }) })).json()), seed.id);
  assert.deepEqual(items.map((i) => i.id), want.results.map((r) => r.id), "the page shows what the API answers");
});

test("every control is labelled and reachable by keyboard", async (t) => {
  const page = await openPage(t);
  await chooseSeed(page, "house drum main");
  const unlabelled = await page.$$eval("button, input, select, canvas, a", (els) => els.filter((e) => {
    if (e.closest("[hidden]") || e.type === "hidden") return false;
    const name = e.getAttribute("aria-label") || (e.labels && [...e.labels].map((l) => l.textContent).join("")) || e.textContent;
    return !name || !name.trim();
  }).map((e) => e.outerHTML.slice(0, 80)));
  assert.deepEqual(unlabelled, []);
  // Tab through the whole page and collect what takes the focus.
  await page.locator("body").focus();
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    await page.keyboard.press("Tab");
    const id = await page.evaluate(() => {
      const e = document.activeElement;
      return e.id || e.className || e.getAttribute("aria-label") || e.tagName;
    });
    seen.add(id);
  }
  for (const want of ["q", "pack", "key", "libkeymatch", "minbpm", "maxbpm", "search-btn", "file", "seedbpm", "to", "k",
    "tempomatch", "keymatch", "unknowns", "preview", "exclude",
    "recommend", "playstop", "mute", "solo", "vol", "play", "download", "use"]) {
    assert.ok(seen.has(want), `Tab never reaches ${want}: ${[...seen].join(", ")}`);
  }
});
