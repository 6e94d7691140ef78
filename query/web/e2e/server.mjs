// Starts a real `loopmatch serve` over the shipped demo library: ingests demo/ into an
// embedded store in a temporary folder (or LOOPMATCH_E2E_STORE), then serves it on a free port (the kernel picks
// it: --addr 127.0.0.1:0, and the server logs the address it bound).
import { spawn, execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

// AIFF copies of one demo pack's loops (Chromium's decodeAudioData refuses AIFF, and it
// is what producers on macOS have), made with sox and ingested beside the demo library
// under names of their own, so the other tests' searches do not find them. The pack is
// the first in demo/metadata.csv with a drum loop and three bass loops, so a new demo
// library needs no change here.
export const AIFF_LOOPS = [
  { name: "mac_kick_groove.aiff", instrument: "drum" },
  { name: "mac_bassline_one.aiff", instrument: "bass" },
  { name: "mac_bassline_two.aiff", instrument: "bass" },
  { name: "mac_bassline_three.aiff", instrument: "bass" },
];

// The library is also ingested with this embedder (ingest --embedders), so the page can rank
// "More like this" and the tray by it; the bundle's other embedder is left out, so the page's
// selector must list only what the library holds.
export const E2E_EMBEDDER = "musicnn_vgg";

// A demo bass loop driven 24 dB into clipping, ingested beside the demo library: a loop
// the anomaly model must flag (and the audit's clipping check name).
export const DAMAGED_LOOP = { name: "zz_clipped_bassline.wav", instrument: "bass" };

async function ingestDamaged(bin, store, dir, env) {
  const lib = path.join(dir, "damaged");
  await mkdir(lib, { recursive: true });
  const src = (await aiffSources())[1];
  const out = path.join(lib, DAMAGED_LOOP.name);
  await run("sox", [path.join(ROOT, "demo", src.path), "-b", "16", out, "gain", "24"]);
  await writeFile(path.join(dir, "damaged.csv"), `path,instrument,pack,bpm,key\n${out},bass,Damaged,${src.bpm},${src.key}\n`);
  await run(bin, ["ingest", "--store", store, "--embedders", E2E_EMBEDDER, "--manifest", path.join(dir, "damaged.csv"), "--log-level", "warn", lib],
    { cwd: ROOT, env, maxBuffer: 16 << 20 });
}

async function aiffSources() {
  const lines = (await readFile(path.join(ROOT, "demo", "metadata.csv"), "utf8")).trim().split(/\r?\n/);
  const head = lines[0].split(",");
  const col = (name) => head.indexOf(name);
  const packs = new Map();
  for (const line of lines.slice(1)) {
    const f = line.split(",");
    const row = { path: f[col("path")], instrument: f[col("instrument")], pack: f[col("pack")], bpm: f[col("bpm")], key: f[col("key")] };
    if (!packs.has(row.pack)) packs.set(row.pack, { drum: [], bass: [] });
    packs.get(row.pack)[row.instrument]?.push(row);
  }
  for (const [, p] of packs) {
    if (p.drum.length >= 1 && p.bass.length >= 3) return [p.drum[0], ...p.bass.slice(0, 3)];
  }
  throw new Error("demo/metadata.csv has no pack with a drum loop and three bass loops for the AIFF copies");
}

async function ingestAIFF(bin, store, dir, env) {
  const lib = path.join(dir, "aiff");
  await mkdir(lib, { recursive: true });
  const src = await aiffSources();
  const rows = ["path,instrument,pack,bpm,key"];
  for (const [i, l] of AIFF_LOOPS.entries()) {
    const out = path.join(lib, l.name);
    await run("sox", [path.join(ROOT, "demo", src[i].path), "-b", "16", out]);
    rows.push(`${out},${l.instrument},${src[i].pack},${src[i].bpm},${src[i].key}`);
  }
  await writeFile(path.join(dir, "aiff.csv"), rows.join("\n") + "\n");
  await run(bin, ["ingest", "--store", store, "--embedders", E2E_EMBEDDER, "--manifest", path.join(dir, "aiff.csv"), "--log-level", "warn", lib],
    { cwd: ROOT, env, maxBuffer: 16 << 20 });
}

export async function startServer() {
  const bin = process.env.LOOPMATCH_BIN || path.join(ROOT, "bin/loopmatch");
  const dir = await mkdtemp(path.join(tmpdir(), "loopmatch-e2e-"));
  // LOOPMATCH_E2E_STORE runs the same tests on another store, such as a Milvus test
  // server (milvus://127.0.0.1:19530?consistency=strong): the page only talks to the API.
  const store = process.env.LOOPMATCH_E2E_STORE || `embedded:${path.join(dir, "store")}`;
  const env = { ...process.env };
  await run(bin, ["ingest", "--store", store, "--embedders", E2E_EMBEDDER, "--manifest", "demo/metadata.csv", "--log-level", "warn", "demo"],
    { cwd: ROOT, env, maxBuffer: 16 << 20 });
  await ingestAIFF(bin, store, dir, env);
  await ingestDamaged(bin, store, dir, env);
  const child = spawn(bin, ["serve", "--store", store, "--addr", "127.0.0.1:0", "--log-format", "json",
    "--uploads-dir", path.join(dir, "uploads")], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const log = [];
  const url = await new Promise((resolve, reject) => {
    // A guard against a server that never starts, not a speed check: on a 2-core machine
    // shared with a training job (load average 10) one start took over 60 s.
    const timer = setTimeout(() => {
      child.kill("SIGTERM");
      reject(new Error(`loopmatch serve did not start within 300 s:\n${log.join("")}`));
    }, 300000);
    const onData = (chunk) => {
      const text = chunk.toString();
      log.push(text);
      for (const line of text.split("\n")) {
        if (!line.startsWith("{")) continue;
        try {
          const m = JSON.parse(line);
          if (m.msg === "serving" && m.addr) {
            clearTimeout(timer);
            resolve(`http://${m.addr}`);
          }
        } catch { /* a partial line */ }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`loopmatch serve exited with ${code}:\n${log.join("")}`));
    });
  });
  return {
    url,
    log,
    async stop() {
      if (child.exitCode === null) {
        const done = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await Promise.race([done, new Promise((r) => setTimeout(r, 15000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
