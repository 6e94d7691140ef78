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

  /** Recommend for a stored seed. */
  recommendStored({ seedId, from, to, k, preview, excludeSeedPack }) {
    const body = { seed_id: seedId, from, to, k, preview };
    if (excludeSeedPack) body.filter = { exclude_seed_pack: true };
    return this.json("/v1/recommend", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  }

  /** Recommend for an uploaded seed file (multipart, part "audio"). */
  recommendUpload({ file, from, to, k, preview }) {
    const fd = new FormData();
    fd.append("audio", file, file.name || "seed");
    fd.append("from", from);
    fd.append("to", to);
    fd.append("k", String(k));
    fd.append("preview", preview ? "true" : "false");
    return this.json("/v1/recommend", { method: "POST", body: fd });
  }

  /** The bytes of an audio URL from the API (loop audio or a preview). */
  async audio(url) {
    const resp = await this.fetch(url);
    const name = filenameOf(resp.headers.get("Content-Disposition"));
    return { bytes: await resp.arrayBuffer(), type: resp.headers.get("Content-Type") || "application/octet-stream", name };
  }
}

/** The filename of a Content-Disposition header, or "". */
export function filenameOf(cd) {
  const m = /filename="?([^";]+)"?/i.exec(cd || "");
  return m ? m[1] : "";
}
