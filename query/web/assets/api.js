// The page's only way to the server: the loopmatch HTTP API under /v1. Errors are RFC
// 9457 problem details; ApiError carries their title and detail for the page to show.

export class ApiError extends Error {
  constructor({ title, detail, status, requestId, errors }) {
    super(detail ? `${title}: ${detail}` : title);
    this.title = title;
    this.detail = detail || "";
    this.status = status || 0;
    this.requestId = requestId || "";
    this.errors = errors || [];
  }
}

/** Turns a failed response into an ApiError, reading problem details when sent. */
export async function problemOf(resp) {
  const ct = resp.headers.get("Content-Type") || "";
  let p = null;
  if (ct.includes("json")) {
    try { p = await resp.json(); } catch { p = null; }
  }
  if (p && typeof p === "object" && (p.title || p.detail)) {
    return new ApiError({ title: String(p.title || resp.statusText), detail: p.detail ? String(p.detail) : "",
      status: p.status || resp.status, requestId: p.request_id || resp.headers.get("X-Request-ID") || "",
      errors: Array.isArray(p.errors) ? p.errors.map(String) : [] });
  }
  return new ApiError({ title: `The server answered ${resp.status} ${resp.statusText}`.trim(),
    detail: "", status: resp.status, requestId: resp.headers.get("X-Request-ID") || "" });
}

export class Api {
  constructor(base = "") {
    this.base = base;
    this.key = "";
  }

  headers(extra = {}) {
    const h = { ...extra };
    if (this.key) h["X-API-Key"] = this.key;
    return h;
  }

  async fetch(path, opts = {}) {
    let resp;
    try {
      resp = await fetch(this.base + path, { ...opts, headers: this.headers(opts.headers) });
    } catch (e) {
      throw new ApiError({ title: "The server cannot be reached", detail: `${e.message}: is loopmatch serve still running?` });
    }
    if (!resp.ok) throw await problemOf(resp);
    return resp;
  }

  async json(path, opts) {
    const resp = await this.fetch(path, opts);
    return resp.json();
  }

  collections() { return this.json("/v1/collections"); }

  /** One page of stored loops: filters {q, pack, key, min_bpm, max_bpm, limit, offset}. */
  listLoops(instrument, filters) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filters)) {
      if (v !== undefined && v !== null && String(v).trim() !== "") q.set(k, String(v).trim());
    }
    const qs = q.toString();
    return this.json(`/v1/loops/${encodeURIComponent(instrument)}${qs ? "?" + qs : ""}`);
  }

  /** Recommend for a stored seed; compat is compatFilter's value (or null). */
  recommendStored({ seedId, from, to, k, preview, excludeSeedPack, excludeAnomalous, compat, rerank, hub }) {
    const body = { seed_id: seedId, from, to, k, preview };
    const filter = { ...(compat || {}) };
    if (excludeSeedPack) filter.exclude_seed_pack = true;
    if (excludeAnomalous) filter.exclude_anomalous = true;
    if (Object.keys(filter).length > 0) body.filter = filter;
    if (rerank !== undefined) body.rerank = rerank;
    if (hub !== undefined) body.hub = hub;
    return this.json("/v1/recommend", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  /** Recommend for an uploaded seed file (multipart, part "audio"). */
  recommendUpload({ file, from, to, k, preview, excludeAnomalous, compat, rerank, hub }) {
    const fd = new FormData();
    fd.append("audio", file, file.name || "seed");
    fd.append("from", from);
    fd.append("to", to);
    fd.append("k", String(k));
    fd.append("preview", preview ? "true" : "false");
    for (const [name, value] of Object.entries(compatFields(compat))) fd.append(name, value);
    if (excludeAnomalous) fd.append("exclude_anomalous", "true");
    if (rerank !== undefined) fd.append("rerank", rerank ? "true" : "false");
    if (hub !== undefined) fd.append("hub", hub ? "true" : "false");
    return this.json("/v1/recommend", { method: "POST", body: fd });
  }

  /** "More like this": loops of instrument nearest to a stored loop of it. */
  similar({ seedId, instrument, k, compat, excludeSeedPack, excludeAnomalous, embedder }) {
    const body = { seed_id: seedId, instrument, k };
    if (embedder && embedder !== "latent") body.embedder = embedder;
    const filter = { ...(compat || {}) };
    if (excludeSeedPack) filter.exclude_seed_pack = true;
    if (excludeAnomalous) filter.exclude_anomalous = true;
    if (Object.keys(filter).length > 0) body.filter = filter;
    return this.json("/v1/similar", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  /** Loops of `to` for a taste profile: the liked loops' ids, all of `instrument`. */
  profile({ liked, instrument, to, k, compat, excludeAnomalous, embedder }) {
    const body = { liked, instrument, to, k };
    if (embedder && embedder !== "latent") body.embedder = embedder;
    const filter = { ...(compat || {}) };
    if (excludeAnomalous) filter.exclude_anomalous = true;
    if (Object.keys(filter).length > 0) body.filter = filter;
    return this.json("/v1/profile", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  /** The bytes of an audio URL from the API (loop audio or a preview). */
  async audio(url) {
    const resp = await this.fetch(url);
    const name = filenameOf(resp.headers.get("Content-Disposition"));
    return { bytes: await resp.arrayBuffer(), type: resp.headers.get("Content-Type") || "application/octet-stream", name };
  }
}

/**
 * Loops in order of their anomaly score, highest first; loops never scored last, each
 * group otherwise in the order given (a stable sort).
 */
export function byAnomaly(loops) {
  const score = (l) => (l.health ? l.health.anomaly_score : -Infinity);
  return [...loops].sort((a, b) => score(b) - score(a) || 0);
}

/** A loop's health as a short label ("anomalous: clipping, seam_jump") and a title. */
export function healthLabel(h) {
  if (!h) return { flag: "", title: "Not scored: run loopmatch ingest --rescore" };
  const causes = h.causes && h.causes.length > 0 ? h.causes.join(", ") : "";
  const title = `Anomaly score ${h.anomaly_score.toFixed(3)}${h.anomalous ? " (above the model's threshold)" : ""}` +
    (causes ? `; likely cause: ${causes}` : "");
  return { flag: h.anomalous ? (causes ? `anomalous: ${causes}` : "anomalous") : "", title };
}

/** The filename of a Content-Disposition header, or "". */
export function filenameOf(cd) {
  const m = /filename="?([^";]+)"?/i.exec(cd || "");
  return m ? m[1] : "";
}

/**
 * The compatibility filters of a recommend request's JSON filter object: tempo (the
 * seed's tempo, or bpm, within 4%, and at half and double time when halfDouble), key
 * (a mode: same, relative, fifths, camelot; the seed's key or key), and whether loops
 * of unknown tempo or key pass. Returns null when nothing is filtered. An
 * include_unknown_* flag goes only with its filter: alone it is refused as meaningless.
 */
export function compatFilter({ tempo = "", bpm = 0, keyMode = "", key = "", unknowns = false }) {
  const f = {};
  if (tempo) {
    f.tempo = { half_double: tempo === "halfdouble" };
    if (bpm > 0) f.tempo.bpm = bpm;
    if (unknowns) f.include_unknown_bpm = true;
  }
  if (keyMode) {
    f.key_compat = { mode: keyMode };
    if (key) f.key_compat.key = key;
    if (unknowns) f.include_unknown_key = true;
  }
  return Object.keys(f).length > 0 ? f : null;
}

/** The same filters as form fields of an upload (names as in the query string). */
export function compatFields(f) {
  const out = {};
  if (!f) return out;
  if (f.tempo) {
    out.tempo = f.tempo.bpm > 0 ? String(f.tempo.bpm) : "seed";
    out.half_double = f.tempo.half_double ? "true" : "false";
  }
  if (f.key_compat) {
    out.key_compat = f.key_compat.mode;
    if (f.key_compat.key) out.key_compat_key = f.key_compat.key;
  }
  if (f.include_unknown_bpm) out.include_unknown_bpm = "true";
  if (f.include_unknown_key) out.include_unknown_key = "true";
  return out;
}

/** A sentence for what a response's filter and excluded_unknown say, or "". */
export function describeFilter(applied, excluded) {
  const parts = [];
  if (applied && applied.bpm_ranges && applied.bpm_ranges.length > 0) {
    const r = (x) => Math.round(x * 10) / 10;
    parts.push(`Tempo ${r(applied.tempo_bpm)} BPM: ${applied.bpm_ranges.map((x) => `${r(x.min)}\u2013${r(x.max)}`).join(", ")}.`);
  }
  if (applied && applied.key_compat && applied.keys) parts.push(`Keys: ${applied.keys.join(", ")}.`);
  const left = [];
  if (excluded && excluded.bpm > 0) left.push(`${excluded.bpm} of unknown tempo`);
  if (excluded && excluded.key > 0) left.push(`${excluded.key} of unknown key`);
  if (left.length > 0) parts.push(`Left out: ${left.join(" and ")} (tick \u201cKeep loops of unknown tempo or key\u201d to see them).`);
  return parts.join(" ");
}
