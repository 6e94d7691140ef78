// The producer's page: pick a seed (a stored loop or a dropped file), ask the API for
// the loops that fit it, and audition each one looping in time with the seed.
import { Api, ApiError, compatFilter, describeFilter, byAnomaly, healthLabel } from "./api.js";
import { Player, tempoRate, loopLength, previewLength, bpmFromName } from "./player.js";
import { peaks, drawWave } from "./wave.js";
import { isAIFF, decodeAIFF } from "./aiff.js";
import { ContextPlayer, contextRequest, MAX_CONTEXT } from "./context.js";

const $ = (id) => document.getElementById(id);
const api = new Api();

const state = {
  pairs: [], // [{from, to}]
  rerank: { available: false, pairs: [], default: false, n: 100 }, // the bundle's second stage
  hub: { available: false, default: false }, // the bundle's hubness correction of the first stage
  counts: {}, // instrument -> stored loops
  from: "",
  to: "",
  libOffset: 0,
  libLoops: [], // the listed loops, in library order
  libSeq: 0,
  seed: null, // {kind: "stored" | "upload", id, name, pack, key, bpm, url, file, audio: Promise<{buffer, peaks}>}
  items: [], // [{kind: "preview" | "loop", id, name, rank, score, stage, ann_rank, pair_score, note, bpm, key, pack, url, el}]
  selected: -1,
  playing: -1,
  recSeq: 0,
  playSeq: 0,
  loading: false,
  // The kept loops: [{id, instrument, name, pack, bpm, key}], kept in the browser only
  // (localStorage), since profiles are stateless on the server.
  tray: [],
  mix: { seed: { volume: 1, muted: false, solo: false }, cand: { volume: 1, muted: false, solo: false } },
};

let ctx = null;
let player = null;

/** The one AudioContext: every buffer is decoded in it and every source plays in it. */
function audioContext() {
  if (!ctx) {
    ctx = new AudioContext({ latencyHint: "interactive" });
    player = new Player(ctx);
    for (const t of ["seed", "cand"]) for (const [k, v] of Object.entries(state.mix[t])) player[t][k] = v;
    player.applyMix();
    player.onchange = renderTransport;
  }
  return ctx;
}

// What the page exposes for its end-to-end tests and for curious producers.
window.__loopmatch = {
  get lastStart() { return player ? player.lastStart : null; },
  get playing() { return !!(player && player.now); },
  get selected() { return state.selected; },
  get items() {
    return state.items.map(({ kind, id, name, bpm, key, decoded, window_offset, health }) => ({ kind, id, name, bpm, key: key || "", decoded: !!decoded,
      window_offset: window_offset || 0, health: health || null,
      duration: decoded ? decoded.buffer.duration : null, rendition: decoded ? decoded.rendition || "" : null }));
  },
  get seed() {
    const s = state.seed;
    return s ? { kind: s.kind, id: s.id, name: s.name, bpm: seedTempo(), key: s.key || "", decoded: !!s.decoded,
      duration: s.decoded ? s.decoded.buffer.duration : null, rendition: s.decoded ? s.decoded.rendition || "" : null } : null;
  },
  get tray() { return state.tray.map(({ id, instrument, name }) => ({ id, instrument, name })); },
  get context() {
    return { oneshots: ctxShots.map(({ id, kind, score }) => ({ id, kind, score })), bpm: ctxBPM,
      playing: !!(ctxPlayer && ctxPlayer.playing), hits: ctxPlayer ? ctxPlayer.hits : 0, audition: ctxAudition };
  },
  get gains() { return player ? [player.seed.gain.gain.value, player.cand.gain.gain.value] : null; },
  get contextTime() { return ctx ? ctx.currentTime : null; },
  get contextState() { return ctx ? ctx.state : null; },
};

// ---- errors -----------------------------------------------------------------

function showError(err) {
  const e = err instanceof ApiError ? err : new ApiError({ title: "Something went wrong in the page", detail: String(err && err.message || err) });
  $("error-title").textContent = e.title;
  const detail = e.errors.length > 1 ? e.errors.join("; ") : e.detail;
  $("error-detail").textContent = detail;
  $("error-detail").hidden = !detail;
  $("error-id").textContent = e.requestId ? `Request id ${e.requestId}${e.status ? ` (HTTP ${e.status})` : ""}` : "";
  $("error").hidden = false;
}

function clearError() { $("error").hidden = true; }

// ---- decoding ---------------------------------------------------------------

const decodedURLs = new Map();

/** The WAV rendition of a stored loop's audio URL, or "" for other URLs (previews are WAV). */
function wavRenditionURL(url) {
  return /^\/v1\/loops\/[^/?]+\/[^/?]+\/audio$/.test(url) ? `${url}?format=wav` : "";
}

function cannotDecode(e, what) {
  return new ApiError({ title: `This browser cannot decode ${what} for playback`,
    detail: `${e.message || e}. The page plays WAV, FLAC, Ogg Vorbis and PCM AIFF.` });
}

async function decodeBytes(bytes, what) {
  // decodeAudioData detaches the bytes: keep a copy of an AIFF to read it here after.
  const aiff = isAIFF(bytes) ? bytes.slice(0) : null;
  try {
    return await audioContext().decodeAudioData(bytes);
  } catch (e) {
    if (!aiff) throw cannotDecode(e, what);
    try {
      const { sampleRate, channels } = decodeAIFF(aiff);
      const buf = audioContext().createBuffer(channels.length, Math.max(1, channels[0].length), sampleRate);
      channels.forEach((ch, i) => buf.copyToChannel(ch, i));
      return buf;
    } catch (e2) {
      throw cannotDecode(e2, what);
    }
  }
}

/** Fetches and decodes an API audio URL once; the result has the buffer and its peaks.
 * A stored loop the browser cannot decode (Chromium refuses AIFF) is fetched again as the
 * server's WAV rendition of it (?format=wav), so every format ingest accepts plays. */
function decodeURL(url, what) {
  if (!decodedURLs.has(url)) {
    const p = api.audio(url).then(async ({ bytes }) => {
      let buffer;
      let rendition = "";
      try {
        buffer = await audioContext().decodeAudioData(bytes);
      } catch (e) {
        const wav = wavRenditionURL(url);
        if (!wav) throw cannotDecode(e, what);
        buffer = await decodeBytes((await api.audio(wav)).bytes, what);
        rendition = "wav";
      }
      return { buffer, peaks: peaks(buffer, 600), rendition };
    });
    p.catch(() => decodedURLs.delete(url));
    decodedURLs.set(url, p);
  }
  return decodedURLs.get(url);
}

// ---- collections and the library --------------------------------------------

async function loadCollections() {
  try {
    const c = await api.collections();
    clearError();
    state.pairs = c.pairs.map((p) => { const [from, to] = p.split("->"); return { from, to }; });
    state.counts = {};
    for (const col of c.collections) if (col.instrument) state.counts[col.instrument] = col.count;
    setEmbedders(c.embedders || {});
    state.rerank = c.rerank || { available: false, pairs: [], default: false, n: 100 };
    $("rerank").checked = state.rerank.default;
    state.hub = c.hub || { available: false, default: false };
    $("hub").checked = state.hub.default;
    $("hub").disabled = !state.hub.available;
    $("hub-label").title = state.hub.available
      ? `Score each loop by its cosine less ${state.hub.beta} \u00d7 its hub score (how near it sits to the predictions for most seeds), so loops that fit everything stop topping every list`
      : "This model bundle has no hubness correction: the first stage ranks by cosine similarity";
    $("bundle").textContent = `model bundle ${c.bundle}`;
    const froms = [...new Set(state.pairs.map((p) => p.from))];
    const sel = $("from");
    sel.replaceChildren(...froms.map((f) => new Option(`${f} (${state.counts[f] ?? 0} stored)`, f)));
    if (froms.length === 0) {
      $("lib-status").textContent = "The model bundle has no mapper: nothing can be recommended.";
      return;
    }
    // Drum2Bass is the use case the models are built around: start there when it exists.
    setFrom(froms.includes(state.from) ? state.from : froms.includes("drum") ? "drum" : froms[0]);
  } catch (e) {
    showError(e);
    if (e.status === 401) $("keybox").open = true;
  }
}

function setFrom(from) {
  state.from = from;
  $("from").value = from;
  const tos = state.pairs.filter((p) => p.from === from).map((p) => p.to);
  $("to").replaceChildren(...tos.map((t) => new Option(`${t} loops`, t)));
  state.to = tos.includes(state.to) ? state.to : tos[0];
  $("to").value = state.to;
  renderRerankToggle();
  renderTray();
  searchLibrary(true);
}

function libraryFilters(offset) {
  const f = { q: $("q").value, pack: $("pack").value, key: $("key").value, min_bpm: $("minbpm").value,
    max_bpm: $("maxbpm").value, anomalous: $("libhealth").value, limit: 50, offset };
  // "Keys shown" widens the key to its neighbours on the Camelot wheel.
  const mode = $("libkeymatch").value;
  if (mode && f.key.trim() !== "") {
    f.key_compat = mode;
    f.key_compat_key = f.key;
    delete f.key;
  }
  return f;
}

/** What a listing's filter left out for want of a tempo or key, as a sentence. */
function leftOutNote(excluded) {
  const left = [];
  if (excluded && excluded.bpm > 0) left.push(`${excluded.bpm} of unknown tempo`);
  if (excluded && excluded.key > 0) left.push(`${excluded.key} of unknown key`);
  return left.length > 0 ? ` Not shown: ${left.join(" and ")}.` : "";
}

async function searchLibrary(reset) {
  const seq = ++state.libSeq;
  const list = $("library");
  try {
    $("lib-status").textContent = "Searching\u2026";
    const r = await api.listLoops(state.from, libraryFilters(reset ? 0 : state.libOffset));
    if (seq !== state.libSeq) return;
    clearError();
    if (reset) {
      list.replaceChildren();
      state.libLoops = [];
    }
    state.libLoops.push(...r.loops);
    renderLibrary();
    state.libOffset = r.next_offset ?? 0;
    $("more").hidden = r.next_offset == null;
    const n = list.children.length;
    $("lib-status").textContent = n === 0
      ? `No ${state.from} loops match${state.counts[state.from] ? "" : ": ingest a library first (loopmatch ingest)"}.`
      : `${n}${r.next_offset != null ? "+" : ""} ${state.from} loop${n === 1 ? "" : "s"}: pick one as the seed.`;
    $("lib-status").textContent += leftOutNote(r.excluded_unknown);
    const packs = new Set([...$("packs").options].map((o) => o.value));
    for (const l of r.loops) packs.add(l.pack);
    $("packs").replaceChildren(...[...packs].filter(Boolean).sort().map((p) => new Option(p)));
  } catch (e) {
    if (seq !== state.libSeq) return;
    $("lib-status").textContent = "The search failed.";
    showError(e);
  }
}

/** The listed loops, in library order or most unusual first ("Order"). */
function renderLibrary() {
  const loops = $("libsort").value === "anomaly" ? byAnomaly(state.libLoops) : state.libLoops;
  $("library").replaceChildren(...loops.map(libraryItem));
}

/** A badge for a loop the anomaly model flagged, its score and causes in the title. */
function healthBadge(h) {
  const { flag, title } = healthLabel(h);
  if (!flag) return null;
  const b = document.createElement("span");
  b.className = "flag";
  b.textContent = flag;
  b.title = title;
  return b;
}

function libraryItem(l) {
  const li = document.createElement("li");
  li.dataset.id = l.id;
  const info = document.createElement("div");
  info.className = "info";
  const name = document.createElement("p");
  name.className = "name";
  name.textContent = l.name || l.id;
  name.title = l.name || l.id;
  const meta = document.createElement("p");
  meta.className = "meta name";
  meta.textContent = [fmtBPM(l.bpm), l.key, l.pack].filter(Boolean).join(" \u00b7 ");
  info.append(name, meta);
  if (l.health) li.dataset.anomaly = String(l.health.anomaly_score);
  li.title = healthLabel(l.health).title;
  const badge = healthBadge(l.health);
  if (badge) info.prepend(badge);
  const use = button("Use as seed", `Use ${l.name || l.id} as the seed`, () => chooseStoredSeed(l, li));
  use.className = "use";
  li.append(info, use);
  if (state.seed && state.seed.id === l.id) li.setAttribute("aria-current", "true");
  return li;
}

function button(text, label, onclick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", (e) => { e.stopPropagation(); onclick(e); });
  return b;
}

function fmtBPM(bpm) { return bpm > 0 ? `${Math.round(bpm * 100) / 100} BPM` : ""; }

// ---- the seed ---------------------------------------------------------------

function seedTempo() {
  const v = parseFloat($("seedbpm").value);
  return v > 0 ? v : 0;
}

function chooseStoredSeed(l, li) {
  for (const x of $("library").querySelectorAll("li[aria-current]")) x.removeAttribute("aria-current");
  if (li) li.setAttribute("aria-current", "true");
  setSeed({ kind: "stored", id: l.id, name: l.name || l.id, pack: l.pack, key: l.key, bpm: l.bpm, url: l.audio_url });
}

function chooseFile(file) {
  if (!file) return;
  for (const x of $("library").querySelectorAll("li[aria-current]")) x.removeAttribute("aria-current");
  setSeed({ kind: "upload", id: "", name: file.name || "dropped file", pack: "", key: "", bpm: bpmFromName(file.name), file });
}

function setSeed(seed) {
  stop();
  state.seed = seed;
  $("current-seed").hidden = false;
  $("seed-name").textContent = seed.name;
  $("seed-name").title = seed.name;
  $("seed-meta").textContent = seed.kind === "stored"
    ? [state.from, fmtBPM(seed.bpm), seed.key, seed.pack].filter(Boolean).join(" \u00b7 ")
    : `uploaded ${state.from} loop, ${Math.max(1, Math.round((seed.file.size || 0) / 1024))} KiB`;
  $("seedbpm").value = seed.bpm > 0 ? String(seed.bpm) : "";
  $("seed-note").textContent = seed.bpm > 0 ? "" : "Enter the seed's tempo for the candidates to follow it.";
  drawWave($("seed-wave"), null);
  seed.audio = seed.kind === "stored"
    ? decodeURL(seed.url, "the seed")
    : seed.file.arrayBuffer().then((b) => decodeBytes(b, "the seed")).then((buffer) => ({ buffer, peaks: peaks(buffer, 600) }));
  seed.audio.then((d) => {
    if (state.seed !== seed) return;
    seed.decoded = d;
    drawSeed();
  }, () => { /* reported when it is played; the server may still take the file */ });
  $("recommend").disabled = false;
  recommend();
}

function clearSeed() {
  stop();
  state.recSeq++;
  state.seed = null;
  state.items = [];
  state.selected = -1;
  $("results").replaceChildren();
  $("current-seed").hidden = true;
  $("recommend").disabled = true;
  $("rec-status").textContent = "Pick a seed to see the loops that fit it.";
  $("rec-filter").hidden = true;
  renderTransport();
}

function drawSeed(playhead = null) {
  const s = state.seed;
  if (!s || !s.decoded) return;
  const len = loopLength(s.decoded.buffer.duration, seedTempo());
  drawWave($("seed-wave"), s.decoded.peaks, { playhead, loopEnd: Math.min(1, len / s.decoded.buffer.duration) });
}

// ---- recommendations ----------------------------------------------------------

/** The settings every ranked request shares: how many, and the tempo and key filter. */
function rankSettings() {
  const k = Math.max(1, Math.min(100, parseInt($("k").value, 10) || 10));
  const compat = compatFilter({ tempo: $("tempomatch").value, bpm: seedTempo(), keyMode: $("keymatch").value,
    key: (state.seed && state.seed.key) || "", unknowns: $("unknowns").checked });
  return { k, compat };
}

/** Runs one ranked request and shows its answer as the result list. fetch() returns the
 * response; status(r, n) says what the n loops are. */
async function showRanked(working, fetch, status) {
  const seq = ++state.recSeq;
  stop();
  $("rec-status").textContent = working;
  $("rec-filter").hidden = true;
  $("results").replaceChildren();
  state.items = [];
  state.selected = -1;
  renderTransport();
  try {
    const r = await fetch();
    if (seq !== state.recSeq) return;
    clearError();
    const items = [];
    if (r.preview_url) {
      items.push({ kind: "preview", id: "preview", name: "Best guess (decoded preview)", url: r.preview_url,
        available: r.preview_available !== false, bpm: 0 });
    }
    const inst = r.to || r.instrument;
    for (const x of r.results) items.push({ kind: "loop", instrument: inst, ...x, url: x.audio_url });
    state.items = items;
    renderResults();
    const said = describeFilter(r.filter, r.excluded_unknown);
    $("rec-filter").textContent = said;
    $("rec-filter").hidden = said === "";
    $("rec-status").textContent = r.results.length === 0
      ? `No ${inst} loops matched: ingest ${inst} loops or relax the filters.`
      : status(r, r.results.length);
    if (items.length > 0) select(items.findIndex((it) => it.kind === "loop") >= 0 ? items.findIndex((it) => it.kind === "loop") : 0, false);
    loadWaveforms(items, seq);
  } catch (e) {
    if (seq !== state.recSeq) return;
    $("rec-status").textContent = "No recommendations: see the message above.";
    showError(e);
  }
}

const plural = (n, what) => `${n} ${what} loop${n === 1 ? "" : "s"}`;

async function recommend() {
  const seed = state.seed;
  if (!seed) return;
  const { k, compat } = rankSettings();
  const args = { from: state.from, to: state.to, k, preview: $("preview").checked, compat,
    excludeAnomalous: $("exclude-anomalous").checked };
  if (rerankable()) args.rerank = $("rerank").checked;
  if (state.hub.available) args.hub = $("hub").checked;
  await showRanked(`Finding ${state.to} loops that fit ${seed.name}\u2026`,
    () => (seed.kind === "stored"
      ? api.recommendStored({ ...args, seedId: seed.id, excludeSeedPack: $("exclude").checked })
      : api.recommendUpload({ ...args, file: seed.file })),
    (r, n) => `${plural(n, r.to)} for ${seed.name}, best first ${rankedBy(r.rerank, r.hub)}.`);
}

/** Fills the "by" selector with the representations every instrument of the library can
 * be ranked by (latent first), keeping the choice when it is still there; hidden when the
 * latent is the only one. */
function setEmbedders(byInstrument) {
  const lists = Object.entries(byInstrument).filter(([inst]) => state.counts[inst]).map(([, names]) => names);
  const names = lists.length === 0 ? ["latent"] : lists.reduce((a, b) => a.filter((n) => b.includes(n)));
  const sel = $("embedder");
  const keep = sel.value;
  sel.replaceChildren(...names.map((n) => new Option(n === "latent" ? "latent (default)" : n, n)));
  sel.value = names.includes(keep) ? keep : "latent";
  $("embedder-field").hidden = names.length < 2;
}

/** The representation chosen for similar and profile, and how a status line names it. */
function chosenEmbedder() {
  const e = $("embedder").value || "latent";
  return { embedder: e, by: e === "latent" ? "" : ` by ${e}` };
}

/** "More like this": loops of the result's own instrument nearest to it, still played
 * with the seed. */
async function moreLikeThis(it) {
  const { k, compat } = rankSettings();
  const label = it.name || it.id;
  const { embedder, by } = chosenEmbedder();
  await showRanked(`Finding ${it.instrument} loops like ${label}\u2026`,
    () => api.similar({ seedId: it.id, instrument: it.instrument, k, compat, excludeSeedPack: $("exclude").checked,
      excludeAnomalous: $("exclude-anomalous").checked, embedder }),
    (r, n) => `${plural(n, r.instrument)} like ${label}${by}, best first (score: cosine similarity to it). Recommend again for the loops that fit the seed.`);
}

// ---- the kept loops (tray) ------------------------------------------------------

const TRAY_KEY = "loopmatch.tray";

function loadTray() {
  try {
    const t = JSON.parse(localStorage.getItem(TRAY_KEY) || "[]");
    state.tray = Array.isArray(t) ? t.filter((x) => x && typeof x.id === "string" && typeof x.instrument === "string") : [];
  } catch {
    state.tray = [];
  }
}

function saveTray() {
  try { localStorage.setItem(TRAY_KEY, JSON.stringify(state.tray)); } catch { /* private mode: the tray lasts the page */ }
  renderTray();
  for (const it of state.items) renderKeep(it);
}

const kept = (it) => state.tray.some((x) => x.id === it.id && x.instrument === it.instrument);

function toggleKeep(it) {
  if (kept(it)) state.tray = state.tray.filter((x) => !(x.id === it.id && x.instrument === it.instrument));
  else state.tray.push({ id: it.id, instrument: it.instrument, name: it.name || it.id, pack: it.pack || "", bpm: it.bpm || 0, key: it.key || "" });
  saveTray();
}

function renderKeep(it) {
  const b = it.el && it.el.querySelector("button.keep");
  if (!b) return;
  const on = kept(it);
  b.textContent = on ? "Kept" : "Keep";
  b.setAttribute("aria-pressed", on ? "true" : "false");
}

/** Which tray loops a profile uses: those of the instrument being recommended, else
 * those of the seed's instrument (mapped across). */
function trayProfile() {
  const same = state.tray.filter((x) => x.instrument === state.to);
  if (same.length > 0) return { instrument: state.to, liked: same };
  const from = state.tray.filter((x) => x.instrument === state.from);
  return { instrument: state.from, liked: from };
}

function renderTray() {
  const ul = $("tray");
  ul.replaceChildren(...state.tray.map((x) => {
    const li = document.createElement("li");
    li.dataset.id = x.id;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `${x.name} (${x.instrument})`;
    name.title = name.textContent;
    li.append(name, button("Remove", `Remove ${x.name} from the kept loops`, () => {
      state.tray = state.tray.filter((y) => y !== x);
      saveTray();
    }));
    return li;
  }));
  const p = trayProfile();
  $("tray-recommend").disabled = p.liked.length === 0;
  $("tray-clear").disabled = state.tray.length === 0;
  renderContextButtons();
  $("tray-status").textContent = state.tray.length === 0
    ? "Keep loops from the results to build a taste profile."
    : `${state.tray.length} kept; \u201cRecommend from my tray\u201d uses the ${p.liked.length} ${p.instrument} loop${p.liked.length === 1 ? "" : "s"}` +
      (p.instrument === state.to ? "." : `, mapped to ${state.to}.`);
}

// ---- one-shots for the kept loops (a context query) ------------------------------

let ctxShots = [];
let ctxBPM = 0;
let ctxPlayer = null;
let ctxAudition = "";

function renderContextButtons() {
  const n = Math.min(state.tray.length, MAX_CONTEXT);
  $("context-find").disabled = n === 0;
  $("context-play").disabled = n === 0;
  $("context-stop").disabled = !(ctxPlayer && ctxPlayer.playing);
}

async function findOneShots() {
  const kind = $("context-kind").value;
  const n = Math.min(state.tray.length, MAX_CONTEXT);
  $("context-status").textContent = `Ranking ${kind} one-shots for ${n} kept loop${n === 1 ? "" : "s"}\u2026`;
  try {
    const r = await api.json("/v1/recommend", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(contextRequest(state.tray, kind, 10)) });
    ctxShots = r.results;
    ctxBPM = r.bpm || state.tray.find((x) => x.bpm > 0)?.bpm || 0;
    $("context-status").textContent = ctxShots.length === 0
      ? `No ${kind} one-shots in the library: ingest a folder of hits (one-shots/, named kick, snare, hh, ...).`
      : `${ctxShots.length} ${kind} one-shot${ctxShots.length === 1 ? "" : "s"} for the context, best first${ctxBPM > 0 ? `; auditioned at ${Math.round(ctxBPM)} BPM` : ""}.`;
    $("oneshots").replaceChildren(...ctxShots.map((o, i) => {
      const li = document.createElement("li");
      li.dataset.id = o.id;
      li.dataset.kind = o.kind;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = `${i + 1}. ${o.name || o.id} (${o.pack}, ${o.score.toFixed(3)})`;
      li.append(name, button("Audition", `Audition ${o.name || o.id} with the context`, () => playContext(o)));
      return li;
    }));
  } catch (e) {
    showError(e);
    $("context-status").textContent = "";
  }
}

async function playContext(shot) {
  try {
    const ac = audioContext();
    if (ac.state === "suspended") await ac.resume();
    stop();
    const loops = state.tray.slice(0, MAX_CONTEXT);
    const buffers = await Promise.all(loops.map((x) => decodeURL(`/v1/loops/${x.instrument}/${x.id}/audio`, x.name).then((d) => d.buffer)));
    const hit = shot ? (await decodeURL(shot.audio_url, shot.name || "the one-shot")).buffer : null;
    if (!ctxPlayer) ctxPlayer = new ContextPlayer(ac);
    ctxPlayer.start(buffers, hit, shot ? shot.kind : "", ctxBPM || loops.find((x) => x.bpm > 0)?.bpm || 120);
    ctxAudition = shot ? shot.id : "";
    $("context-status").textContent = shot ? `Playing the context with ${shot.name || shot.id}.` : "Playing the context.";
  } catch (e) {
    showError(e);
  }
  renderContextButtons();
}

function stopContext() {
  if (ctxPlayer) ctxPlayer.stop();
  ctxAudition = "";
  renderContextButtons();
}

async function recommendFromTray() {
  const p = trayProfile();
  if (p.liked.length === 0) return;
  const { k, compat } = rankSettings();
  // another representation ranks within the kept loops' own instrument: the mapper maps latents
  const { embedder, by } = p.instrument === state.to ? chosenEmbedder() : { embedder: "latent", by: "" };
  await showRanked(`Finding ${state.to} loops for your ${p.liked.length} kept loops\u2026`,
    () => api.profile({ liked: p.liked.map((x) => x.id), instrument: p.instrument, to: state.to, k, compat,
      excludeAnomalous: $("exclude-anomalous").checked, embedder }),
    (r, n) => `${plural(n, r.to)} for your ${r.profile.liked} kept ${r.from} loop${r.profile.liked === 1 ? "" : "s"}${by}, best first (score: cosine similarity to their mean).`);
}

/** Decodes the results a few at a time, drawing each waveform as it arrives. */
async function loadWaveforms(items, seq) {
  let next = 0;
  const worker = async () => {
    while (next < items.length && seq === state.recSeq) {
      const it = items[next++];
      if (it.kind === "preview" && !it.available) continue;
      try {
        it.decoded = await decodeURL(it.url, it.kind === "preview" ? "the preview" : it.name || "the loop");
        drawItem(it);
      } catch (e) {
        it.error = e;
        const note = it.el && it.el.querySelector(".note");
        if (note) note.textContent = e.title || String(e);
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

function itemRate(it) {
  return it.kind === "loop" ? tempoRate(seedTempo(), it.bpm) : 1;
}

function itemLoop(it) {
  const d = it.decoded;
  if (!d) return 1;
  const len = it.kind === "preview" ? previewLength(d.buffer.duration, seedTempo()) : loopLength(d.buffer.duration, it.bpm);
  return Math.min(1, len / d.buffer.duration);
}

function drawItem(it, playhead = null) {
  if (it.el && it.decoded) drawWave(it.el.querySelector("canvas"), it.decoded.peaks, { playhead, loopEnd: itemLoop(it) });
}

function itemLabel(it) {
  return it.kind === "preview" ? "the best-guess preview" : `rank ${it.rank}, ${it.name || it.id}`;
}

function renderResults() {
  const ol = $("results");
  ol.replaceChildren(...state.items.map((it, i) => {
    const li = document.createElement("li");
    li.className = it.kind === "preview" ? "preview" : "loop";
    li.dataset.index = String(i);
    li.dataset.id = it.id;
    const rank = document.createElement("span");
    rank.className = "rank";
    rank.textContent = it.kind === "preview" ? "\u2605" : String(it.rank);
    rank.setAttribute("aria-hidden", "true");
    const info = document.createElement("div");
    const name = document.createElement("p");
    name.className = "name";
    name.textContent = it.kind === "preview" ? it.name : it.name || it.id;
    name.title = name.textContent;
    const meta = document.createElement("p");
    meta.className = "meta";
    const note = document.createElement("p");
    note.className = "note";
    info.append(name, meta, note);
    if (it.kind === "loop") {
      // Which stage put the loop here: the pair model (rerank) or the cosine search.
      const stage = document.createElement("span");
      stage.className = `stage stage-${it.stage || "ann"}`;
      stage.textContent = it.stage === "rerank" ? "pair model" : "cosine";
      stage.title = it.stage === "rerank"
        ? `Placed by the pair model's score (cosine rank was ${it.ann_rank})`
        : it.hub_score !== undefined
          ? `Placed by cosine similarity to the predicted loop less its hub score (how near it sits to most predictions); cosine rank was ${it.ann_rank}`
          : "Placed by cosine similarity to the predicted loop";
      info.prepend(stage);
      const badge = healthBadge(it.health);
      if (badge) info.prepend(badge);
      if (it.note) note.textContent = it.note;
    }
    const canvas = document.createElement("canvas");
    canvas.className = "wave";
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `Waveform of ${itemLabel(it)}`);
    const play = button("Play with seed", `Play ${itemLabel(it)} with the seed`, () => {
      select(i, false);
      if (state.playing === i && player && player.now) stop(); else playItem(i);
    });
    play.className = "play";
    play.setAttribute("aria-pressed", "false");
    const dl = button("Download", `Download ${itemLabel(it)}`, () => download(it));
    dl.className = "download";
    if (it.kind === "loop") {
      const like = button("More like this", `Loops like ${itemLabel(it)}`, () => moreLikeThis(it));
      like.className = "like";
      const keep = button("Keep", `Keep ${itemLabel(it)} in the tray`, () => toggleKeep(it));
      keep.className = "keep";
      const actions = document.createElement("p");
      actions.className = "actions";
      actions.append(like, keep);
      info.append(actions);
    }
    if (it.kind === "preview" && !it.available) {
      play.disabled = true;
      dl.disabled = true;
      note.textContent = "This model bundle has no decoder for this instrument: no preview.";
    }
    li.append(rank, info, canvas, play, dl);
    li.addEventListener("click", () => select(i, true));
    it.el = li;
    renderMeta(it);
    renderKeep(it);
    return li;
  }));
}

/** Whether the bundle can rerank the current pair (the toggle is live only then). */
function rerankable() {
  return state.rerank.pairs.includes(`${state.from}->${state.to}`);
}

/** Sets the rerank toggle for the current pair: off and explained when the bundle cannot. */
function renderRerankToggle() {
  const box = $("rerank");
  const ok = rerankable();
  box.disabled = !ok;
  $("rerank-label").title = ok
    ? `Rescore the best ${state.rerank.n} by cosine with the bundle's pair model (it hears seed and loop together)`
    : state.rerank.available ? `The bundle's pair model does not judge ${state.from}->${state.to} pairs`
      : "This model bundle has no pair model (scorer): results are ranked by cosine similarity only";
  if (!ok) box.checked = false;
}

/** How a response was ranked, for the status line. */
function rankedBy(rr, hub) {
  const cosine = hub && hub.used ? "cosine, hub-corrected," : "cosine";
  if (rr && rr.used) {
    const unscored = rr.reason ? `; ${rr.reason}` : "";
    return `(the best ${rr.n} by ${cosine} reranked by the pair model${unscored}; "pair" is its score, higher fits better)`;
  }
  const first = hub && hub.used
    ? `score: cosine similarity to the predicted loop less ${hub.beta} \u00d7 its hub score`
    : "score: cosine similarity to the predicted loop";
  if (rr && rr.reason) return `(${first}; not reranked: ${rr.reason})`;
  return `(${first})`;
}

function renderMeta(it) {
  const meta = it.el && it.el.querySelector(".meta");
  if (!meta) return;
  const seedBPM = seedTempo();
  if (it.kind === "preview") {
    meta.textContent = seedBPM > 0 ? `decoded at the seed's tempo, ${fmtBPM(seedBPM)}` : "decoded at the seed's tempo";
    return;
  }
  const r = itemRate(it);
  const bpm = fmtBPM(it.bpm) + (seedBPM > 0 && Math.abs(r - 1) > 1e-9 ? ` (plays at \u00d7${r.toFixed(3)})` : "");
  const score = it.stage === "rerank" && it.pair_score !== undefined
    ? `pair ${it.pair_score.toFixed(3)} \u00b7 cosine ${it.ann_score.toFixed(3)} (was #${it.ann_rank})`
    : it.hub_score !== undefined
      ? `score ${it.score.toFixed(3)} \u00b7 cosine ${it.ann_score.toFixed(3)} (was #${it.ann_rank}), hub ${it.hub_score.toFixed(3)}`
      : `score ${it.score.toFixed(3)}`;
  const at = it.window_offset > 0 ? `matched from ${it.window_offset.toFixed(1)} s` : "";
  meta.textContent = [score, bpm, it.key, it.pack, at].filter(Boolean).join(" \u00b7 ");
}

function select(i, focus) {
  if (i < 0 || i >= state.items.length) return;
  state.selected = i;
  state.items.forEach((it, j) => {
    if (!it.el) return;
    if (j === i) it.el.setAttribute("aria-current", "true"); else it.el.removeAttribute("aria-current");
  });
  const it = state.items[i];
  if (it.el) {
    if (focus) {
      const b = it.el.querySelector("button.play");
      (b && !b.disabled ? b : it.el).focus({ preventScroll: true });
    }
    it.el.scrollIntoView({ block: "nearest" });
  }
  renderTransport();
}

// ---- playback ---------------------------------------------------------------

async function playItem(i) {
  if (ctxPlayer && ctxPlayer.playing) stopContext(); // one thing plays at a time
  const it = state.items[i];
  const seed = state.seed;
  if (!it || !seed) return;
  if (it.kind === "preview" && !it.available) return;
  const seq = ++state.playSeq;
  audioContext();
  state.loading = true;
  renderTransport();
  try {
    const [s, c] = await Promise.all([seed.audio, it.decoded ? Promise.resolve(it.decoded) : decodeURL(it.url, itemLabel(it))]);
    if (ctx.state !== "running") await ctx.resume();
    if (seq !== state.playSeq || state.seed !== seed) return;
    seed.decoded = s;
    it.decoded = c;
    player.play({ buffer: s.buffer, bpm: seedTempo() }, { buffer: c.buffer, bpm: it.bpm, kind: it.kind, id: it.id, offset: it.window_offset || 0 });
    state.playing = i;
    state.loading = false;
    renderTransport();
    animate();
  } catch (e) {
    if (seq !== state.playSeq) return;
    state.playing = -1;
    state.loading = false;
    renderTransport();
    showError(e);
  }
}

function stop() {
  state.playSeq++;
  state.playing = -1;
  state.loading = false;
  if (player) player.stop();
  renderTransport();
}

function togglePlay() {
  if (player && player.now) { stop(); return; }
  if (state.items.length === 0) return;
  playItem(state.selected >= 0 ? state.selected : 0);
}

function renderTransport() {
  const now = player && player.now;
  const ps = $("playstop");
  ps.disabled = state.items.length === 0 && !now;
  ps.textContent = now ? "Stop" : "Play";
  ps.setAttribute("aria-pressed", now ? "true" : "false");
  ps.setAttribute("aria-label", now ? "Stop playback" : "Play the selected loop with the seed");
  state.items.forEach((it, j) => {
    if (!it.el) return;
    const on = !!now && state.playing === j;
    it.el.classList.toggle("playing", on);
    const b = it.el.querySelector("button.play");
    b.setAttribute("aria-pressed", on ? "true" : "false");
    b.textContent = on ? "Stop" : "Play with seed";
    renderMeta(it);
  });
  const status = $("play-status");
  if (!now || state.playing < 0) {
    status.textContent = state.loading ? "Loading\u2026" : "Stopped.";
    return;
  }
  const it = state.items[state.playing];
  const seedBPM = seedTempo();
  let tempo;
  if (it.kind === "preview") {
    tempo = seedBPM > 0 ? `The preview loops ${(now.cand.loop * seedBPM / 240).toFixed(0)} bar(s) at the seed's tempo.`
      : "The seed's tempo is unknown: the preview loops its whole window.";
  } else if (!(seedBPM > 0) || !(it.bpm > 0)) {
    tempo = "A tempo is unknown, so both play at their own speed: enter the seed's tempo for tempo follow.";
  } else if (Math.abs(now.rate - 1) < 1e-9) {
    tempo = `Same tempo (${fmtBPM(seedBPM)}): both play at their own speed.`;
  } else {
    const folded = Math.abs(now.rate - seedBPM / it.bpm) > 1e-9 ? ", in double or half time" : "";
    tempo = `Varispeed: the loop (${fmtBPM(it.bpm)}) follows the seed (${fmtBPM(seedBPM)}) at playback rate ${now.rate.toFixed(4)}${folded}.`;
  }
  status.textContent = `Playing ${itemLabel(it)} with the seed, both from audio time ${now.t0.toFixed(3)} s. ${tempo}`;
}

let animating = false;
function animate() {
  if (animating) return;
  animating = true;
  const frame = () => {
    const pos = player && player.positions();
    const it = state.items[state.playing];
    if (!pos || !it) {
      animating = false;
      drawSeed();
      state.items.forEach((x) => drawItem(x));
      return;
    }
    drawSeed(pos.seed);
    for (const x of state.items) drawItem(x, x === it ? pos.cand : null);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

// ---- downloads --------------------------------------------------------------

async function download(it) {
  try {
    const { bytes, type, name } = await api.audio(it.url);
    const blob = new Blob([bytes], { type });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = it.kind === "loop" && it.name ? it.name : name || `${it.id}.wav`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 30000);
  } catch (e) {
    showError(e);
  }
}

// ---- keyboard -----------------------------------------------------------------

/** Elements that keep Space for themselves: typing, ticking, choosing. */
function ownsSpace(t) {
  return t instanceof Element && !!t.closest("input:not([type=range]), select, textarea, [contenteditable=''], [contenteditable=true], summary");
}

/** Elements that keep the arrow keys for themselves. */
function ownsArrows(t) {
  return t instanceof Element && !!t.closest("input, select, textarea, [contenteditable=''], [contenteditable=true]");
}

let spaceTaken = false;
function onKeyDown(e) {
  if (e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.key === " " || e.code === "Space") {
    if (ownsSpace(e.target)) return;
    e.preventDefault();
    spaceTaken = true;
    if (!e.repeat) togglePlay();
    return;
  }
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    if (ownsArrows(e.target) || state.items.length === 0) return;
    e.preventDefault();
    const d = e.key === "ArrowDown" ? 1 : -1;
    const from = state.selected < 0 ? (d > 0 ? -1 : state.items.length) : state.selected;
    const i = Math.max(0, Math.min(state.items.length - 1, from + d));
    select(i, true);
    if (player && player.now && state.playing !== i) playItem(i);
  }
}

function onKeyUp(e) {
  // A button activates on the key-up of Space: the transport has taken this one.
  if ((e.key === " " || e.code === "Space") && spaceTaken) {
    e.preventDefault();
    spaceTaken = false;
  }
}

// ---- wiring -------------------------------------------------------------------

function init() {
  api.key = sessionStorage.getItem("loopmatch.apiKey") || "";
  $("apikey").value = api.key;
  $("keyform").addEventListener("submit", (e) => {
    e.preventDefault();
    api.key = $("apikey").value.trim();
    sessionStorage.setItem("loopmatch.apiKey", api.key);
    loadCollections();
  });
  $("error-close").addEventListener("click", clearError);
  $("from").addEventListener("change", () => {
    setFrom($("from").value);
    // A stored seed belongs to its instrument's collection; a dropped file is simply
    // asked about again as the new instrument.
    if (state.seed && state.seed.kind === "stored") clearSeed();
    else if (state.seed) recommend();
  });
  $("to").addEventListener("change", () => { state.to = $("to").value; renderRerankToggle(); renderTray(); if (state.seed) recommend(); });
  $("tray-recommend").addEventListener("click", recommendFromTray);
  $("context-find").addEventListener("click", findOneShots);
  $("context-play").addEventListener("click", () => playContext(null));
  $("context-stop").addEventListener("click", stopContext);
  $("tray-clear").addEventListener("click", () => { state.tray = []; saveTray(); });
  window.addEventListener("storage", (e) => { if (e.key === TRAY_KEY) { loadTray(); renderTray(); } });
  loadTray();
  renderTray();
  for (const id of ["tempomatch", "keymatch", "unknowns", "rerank", "hub", "exclude-anomalous"]) {
    $(id).addEventListener("change", () => { if (state.seed) recommend(); });
  }
  $("libkeymatch").addEventListener("change", () => { if ($("key").value.trim() !== "") searchLibrary(true); });
  $("libhealth").addEventListener("change", () => searchLibrary(true));
  $("libsort").addEventListener("change", renderLibrary);
  $("search").addEventListener("submit", (e) => { e.preventDefault(); searchLibrary(true); });
  $("more").addEventListener("click", () => searchLibrary(false));
  $("rec").addEventListener("submit", (e) => { e.preventDefault(); recommend(); });
  $("playstop").addEventListener("click", togglePlay);
  $("seedbpm").addEventListener("change", () => {
    $("seed-note").textContent = seedTempo() > 0 ? "" : "Enter the seed's tempo for the candidates to follow it.";
    drawSeed();
    state.items.forEach((it) => { renderMeta(it); drawItem(it); });
    if (player && player.now && state.playing >= 0) playItem(state.playing);
    // A tempo match follows the seed's tempo as entered.
    if (state.seed && $("tempomatch").value && seedTempo() > 0) recommend();
  });
  $("file").addEventListener("change", () => { chooseFile($("file").files[0]); $("file").value = ""; });

  const drop = $("drop");
  // Dropping anywhere on the page takes the file as the seed; the browser would
  // otherwise navigate away to it.
  document.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) drop.classList.remove("over"); });
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) chooseFile(f);
  });

  for (const b of document.querySelectorAll(".track button")) {
    b.addEventListener("click", () => {
      const t = b.dataset.track;
      const field = b.classList.contains("mute") ? "muted" : "solo";
      state.mix[t][field] = !state.mix[t][field];
      b.setAttribute("aria-pressed", state.mix[t][field] ? "true" : "false");
      if (player) player.set(t, field, state.mix[t][field]);
    });
  }
  for (const r of document.querySelectorAll(".track input[type=range]")) {
    r.addEventListener("input", () => {
      const t = r.dataset.track;
      state.mix[t].volume = parseFloat(r.value);
      if (player) player.set(t, "volume", state.mix[t].volume);
    });
  }
  document.addEventListener("keydown", onKeyDown);
  document.addEventListener("keyup", onKeyUp);
  window.addEventListener("resize", () => { drawSeed(); state.items.forEach((it) => drawItem(it)); });
  loadCollections();
}

init();
