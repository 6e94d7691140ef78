"""SampleMatch's data (numpy only, so CI tests it without PyTorch): every corpus v2 pack's drum
one-shots (the kit its drum loops were rendered from: a synthesised kit, a FluidR3_GM kit or,
for the transfer split only, a hydrogen kit), and contexts to rank them against.

A query is (pack, kind): the kind is a drum role the pack's main drum loop plays (kick,
snare, clap, hat_c, ...). Its context is a mix of the pack's other stems at the bundle rate,
aligned from their starts: the main drum loop re-rendered from the kit without that role,
split into one stem per remaining role, and the pack's main bass loop (the corpus file). A
full context takes every stem; a sparse one a random non-empty subset (SampleMatch's sparse
mixing). The right answer is the kit's own one-shot of that kind, ranked among the one-shots
of that kind of every kit in the split.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from . import render as R

SR = R.SR
WINDOW = 88200  # the bundle's window: 4 s at 22,050 Hz
ONESHOT = 22050  # one-shots are cut (or padded) to 1 s
# the kinds a query can ask for: drum roles the grooves play
KINDS = ("kick", "snare", "clap", "rim", "hat_c", "hat_o", "ride", "crash", "tom_l", "tom_h", "perc")


def kit_id(pack) -> str:
    """A kit's identity: packs that share a GM or hydrogen kit share its one-shots."""
    return f"{pack.drum_source}:{pack.drum_kit}"


def fit(x: np.ndarray, n: int) -> np.ndarray:
    x = np.asarray(x, np.float32)[:n]
    return np.pad(x, (0, n - len(x))) if len(x) < n else x.copy()


def tile(x: np.ndarray, n: int = WINDOW) -> np.ndarray:
    """A loop tiled from its start to the window (the way the encoders window loops)."""
    x = np.asarray(x, np.float32)
    if len(x) == 0:
        raise ValueError("empty loop")
    return np.tile(x, -(-n // len(x)))[:n].copy()


def main_loop(pack, instrument: str):
    """The pack's main loop of an instrument (its first)."""
    return next(lp for lp in pack.loops if lp.instrument == instrument)


def roles_played(loop) -> list[str]:
    return sorted({str(n.pitch) for n in loop.notes if str(n.pitch) in KINDS})


def stem(kit: dict, pack, loop, role: str) -> np.ndarray:
    """One role of a drum loop, rendered from the kit's one-shot as the corpus renders drums
    (render.mix_one_shots), tiled to the window."""
    sub = replace(loop, notes=[n for n in loop.notes if str(n.pitch) == role])
    return tile(R.mix_one_shots(kit, pack, sub))


def borrowed(kit: dict, role: str) -> bool:
    """A role a hydrogen kit lacks is filled with another role's sample (render.H2_FALLBACK:
    its clap may be its snare): such a role's label is not what the sample is."""
    r, x = role, kit[role]
    while r in R.H2_FALLBACK:
        r = R.H2_FALLBACK[r]
        if r in kit and len(kit[r]) == len(x) and np.array_equal(kit[r], x):
            return True
    return False


@dataclass
class Query:
    pack: str
    kind: str
    kit: str  # kit_id of the right one-shot
    split: str
    bpm: int


def queries(packs, split: dict, kits: dict, kit_of: dict | None = None) -> list[Query]:
    """Every (pack, kind) whose main drum loop plays the kind, with another stem beside it,
    where the kit's one-shot of that kind is its own (not borrowed from another role).
    kit_of: pack name -> kit id where a pack plays another kit than its own (kit_id)."""
    out = []
    kit_of = kit_of or {}
    for p in packs:
        lp = main_loop(p, "drum")
        played = roles_played(lp)
        kid = kit_of.get(p.name, kit_id(p))
        kit = kits.get(kid)
        if kit is None:
            continue
        for k in played:
            if k in kit and len(played) > 1 and not borrowed(kit, k):
                out.append(Query(p.name, k, kid, split[p.name], p.bpm))
    return out


class Contexts:
    """Stems per pack (drum roles from the kit, the main bass loop from the corpus), mixed on
    demand. `bass_window(pack)` gives the main bass loop's window (None: no bass stem)."""

    def __init__(self, packs_by_name: dict, kits: dict, bass_window=None, kit_of: dict | None = None):
        self.packs, self.kits, self.bass_window = packs_by_name, kits, bass_window
        self.kit_of = kit_of or {}
        self._stems: dict[str, dict[str, np.ndarray]] = {}

    def stems(self, pack_name: str) -> dict[str, np.ndarray]:
        if pack_name not in self._stems:
            p = self.packs[pack_name]
            kit = self.kits[self.kit_of.get(pack_name, kit_id(p))]
            lp = main_loop(p, "drum")
            st = {r: stem(kit, p, lp, r) for r in roles_played(lp) if r in kit}
            if self.bass_window is not None:
                b = self.bass_window(p)
                if b is not None:
                    st["bass"] = fit(b, WINDOW)
            self._stems[pack_name] = st
        return self._stems[pack_name]

    def mix(self, q: Query, rng: np.random.Generator | None = None, sparse: bool = False,
            gains_db: float = 0.0) -> tuple[np.ndarray, list[str]]:
        """The context of a query: every stem but the query's kind (a random non-empty subset
        when sparse), each at a random gain within +-gains_db, summed and normalised to the
        corpus loudness. Returns the mix and the stems it holds."""
        x, names = mix_stems(self.stems(q.pack), q.kind, rng, sparse, gains_db, np.float64, q.pack)
        return R.normalise(x.astype(np.float32)), names


def mix_stems(stems: dict, kind: str, rng: np.random.Generator | None, sparse: bool, gains_db: float,
              dtype=np.float32, pack: str = "") -> tuple[np.ndarray, list[str]]:
    """Sums every stem but `kind` (a random non-empty subset when sparse), each at a random
    gain within +-gains_db, accumulated in dtype. Returns the sum and the stems it holds."""
    names = sorted(k for k in stems if k != kind)
    if not names:
        raise ValueError(f"{pack}: no stem besides {kind}")
    if sparse:
        if rng is None:
            raise ValueError("a sparse context needs an rng")
        keep = rng.random(len(names)) < 0.5
        if not keep.any():
            keep[int(rng.integers(0, len(names)))] = True
        names = [n for n, k in zip(names, keep) if k]
    x = np.zeros(WINDOW, dtype)
    for n in names:
        g = 10 ** (rng.uniform(-gains_db, gains_db) / 20) if (rng is not None and gains_db) else 1.0
        x += g * stems[n].astype(np.float32)
    return x, names


def oneshot_bank(kits: dict, kinds=KINDS) -> dict[str, dict[str, np.ndarray]]:
    """kind -> kit id -> the one-shot cut to ONESHOT samples."""
    bank: dict[str, dict[str, np.ndarray]] = {}
    for kid, kit in kits.items():
        for k in kinds:
            if k in kit:
                bank.setdefault(k, {})[kid] = fit(kit[k], ONESHOT)
    return bank


def gm_kit(program: int, cache_dir: str | None = None) -> dict[str, np.ndarray]:
    """A FluidR3_GM drum kit's one-shots (role -> 1.5 s at SR), rendered by fluidsynth once
    (one note per role, velocity 100) and cached as .npz."""
    path = os.path.join(cache_dir, f"gm_kit_{program}.npz") if cache_dir else None
    if path and os.path.exists(path):
        d = np.load(path)
        return {k: d[k] for k in d.files}
    n = int(2.5 * SR)  # long enough that nothing folds back onto the hit (render's tail is 1 s)
    jobs = [(role, 9, int(program), [(0.0, 0.1, note, 100)], n) for role, note in R.GM_DRUM_NOTES.items()]
    audio = R.render_fluid_chunk(jobs)
    kit = {}
    for role in R.GM_DRUM_NOTES:
        x = audio[role][: int(1.5 * SR)]
        peak = float(np.max(np.abs(x))) or 1.0
        kit[role] = (x / peak).astype(np.float32)
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        np.savez(path, **kit)
    return kit


def coherent_kit(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A synthesised kit with one character, the way a drum machine's or a sample pack's
    sounds belong together (corpus v2's synth.drum_kit draws every role on its own, so
    its kits carry no such bond): a tuning, a decay length, a brightness, a drive and a
    noise colour drawn once for the kit; each role built from them with a little jitter
    of its own. Role -> mono float32 one-shot at SR."""
    from . import synth as S
    tune = rng.uniform(0.75, 1.35)  # every pitched part
    decay = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))  # every envelope
    bright = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))  # every filter corner
    drive = rng.uniform(1.0, 5.0)
    noise_lp = rng.uniform(4000, 10500)  # noise colour

    def j(lo=0.92, hi=1.08):
        return rng.uniform(lo, hi)

    def noise(n):
        return S._lp(rng.normal(0, 1, n), noise_lp * j())

    def shape(x):
        return S._norm(np.tanh(drive * j() * x))

    kit = {}
    n = int(SR * min(1.5, 0.35 * decay * j()))
    t = np.arange(n) / SR
    f_end, f_start = 50 * tune * j(), 180 * tune * j(0.8, 1.25)
    f = f_end + (f_start - f_end) * np.exp(-t / (0.03 * j(0.7, 1.3)))
    k = np.sin(2 * np.pi * np.cumsum(f) / SR) * S._env(n, 0.001, 0.25 * decay * j())
    k += 0.3 * S._hp(noise(n), 2000 * bright) * S._env(n, 0.0002, 0.004)
    kit["kick"] = shape(k)
    n = int(SR * min(1.5, 0.3 * decay * j()))
    t = np.arange(n) / SR
    tone = np.sin(2 * np.pi * 200 * tune * j() * t) * S._env(n, 0.001, 0.06 * decay * j())
    c = 2500 * bright * j()
    kit["snare"] = shape(0.5 * tone + S._bp(noise(n), c * 0.4, c * 2.2) * S._env(n, 0.001, 0.12 * decay * j()))
    n = int(SR * min(1.5, 0.35 * decay * j()))
    env = np.zeros(n)
    gap = 0.01 * j(0.7, 1.3)
    for i in range(4):
        s0 = int(i * gap * SR)
        env[s0:] += S._env(n - s0, 0.0005, 0.008 if i < 3 else 0.1 * decay * j())
    c = 1600 * bright * j()
    kit["clap"] = shape(S._bp(noise(n), c * 0.6, c * 2.5) * env)
    base = 420 * tune * j()
    hp = min(9500, 6500 * bright ** 0.5 * j())
    kit["hat_c"] = shape(S._metal(rng, int(SR * 0.2), base, 0.04 * decay * j(), hp))
    kit["hat_o"] = shape(S._metal(rng, int(SR * min(1.5, 0.5 * decay)), base, 0.3 * decay * j(), hp * 0.9))
    kit["ride"] = shape(S._metal(rng, int(SR * 1.5), base * 0.85, 0.6 * decay * j(), hp * 0.6))
    kit["crash"] = shape(S._metal(rng, int(SR * 1.5), base * 0.7, 0.9 * decay * j(), hp * 0.5))
    for role, f0 in (("tom_l", 95), ("tom_h", 160)):
        n = int(SR * min(1.5, 0.45 * decay))
        t = np.arange(n) / SR
        ff = f0 * tune * j() * (1 + 0.6 * np.exp(-t / 0.03))
        kit[role] = shape(np.sin(2 * np.pi * np.cumsum(ff) / SR) * S._env(n, 0.001, 0.2 * decay * j()))
    n = int(SR * 0.1)
    t = np.arange(n) / SR
    kit["rim"] = shape(np.sin(2 * np.pi * 2000 * tune * j() * t) * S._env(n, 0.0002, 0.012 * decay)
                       + 0.5 * S._hp(noise(n), 3000 * bright) * S._env(n, 0.0002, 0.004))
    n = int(SR * 0.35)
    t = np.arange(n) / SR
    f0 = 300 * tune * j()
    ff = f0 * (1 + 0.3 * np.exp(-t / 0.02))
    kit["perc"] = shape(np.sin(2 * np.pi * np.cumsum(ff) / SR) * S._env(n, 0.001, 0.12 * decay * j()))
    return kit


def kits_for(packs, cache_dir: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """kit id -> role -> one-shot, for every pack's kit: FluidR3_GM and hydrogen kits as the
    corpus rendered them; in place of corpus v2's synthesised kits, a coherent kit
    (coherent_kit) seeded by the pack's kit seed."""
    out = {}
    for p in packs:
        kid = kit_id(p)
        if kid in out:
            continue
        if p.drum_source == "synth":
            out[kid] = coherent_kit(np.random.default_rng([int(p.drum_kit), 20]))
        elif p.drum_source == "hydrogen":
            out[kid] = R.hydrogen_kit(str(p.drum_kit))
        elif p.drum_source == "gm":
            out[kid] = gm_kit(int(p.drum_kit), cache_dir)
    return out


# Real kits a training pack may play instead of its synthesised one: the FluidR3_GM drum
# presets and the hydrogen kits the corpus's transfer split never uses
REAL_TRAIN_KITS = [("gm", g) for g in (0, 8, 16, 24, 25, 32, 40, 48, 56)] + \
    [("hydrogen", h) for h in ("GMRockKit", "TR808EmulationKit", "Millo_MultiLayered3")]


def processed_kit(kit: dict, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One processing chain for every one-shot of a kit, as a kit recorded in one room,
    tuned and mixed one way: a pitch factor (varispeed), a low-pass and a high-pass corner,
    a drive and a short room (exponentially decaying noise) at one wet level."""
    from . import synth as S
    pitch = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
    lp, hp = float(rng.uniform(2500, 11000)), float(rng.uniform(20, 220))
    drive = float(rng.uniform(1.0, 4.0))
    n_ir = int(SR * rng.uniform(0.05, 0.5))
    ir = rng.normal(0, 1, n_ir) * np.exp(-np.arange(n_ir) / (n_ir / 5))
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
    wet = float(rng.uniform(0.0, 0.4))
    out = {}
    for role, x in kit.items():
        x = np.asarray(x, np.float64)
        m = max(8, int(round(len(x) / pitch)))
        y = np.interp(np.arange(m) * pitch, np.arange(len(x)), x)
        y = S._hp(S._lp(y, lp), hp)
        y = y + wet * np.convolve(y, ir)[:m]
        out[role] = S._norm(np.tanh(drive * y / (np.max(np.abs(y)) + 1e-12)))[: int(1.5 * SR)]
    return out


def real_kit_substitutes(packs, split: dict, frac: float, seed: int, splits=("train", "val"),
                         cache_dir: str | None = None) -> tuple[dict, dict]:
    """For a fraction of the synthesised-kit packs of `splits`, a processed real kit
    (REAL_TRAIN_KITS, processed_kit) of the pack's own: (pack name -> kit id, kit id -> kit)."""
    kit_of, kits, base = {}, {}, {}
    for p in packs:
        if p.drum_source != "synth" or split[p.name] not in splits:
            continue
        rng = np.random.default_rng([seed, 30, p.index])
        if rng.random() >= frac:
            continue
        src, name = REAL_TRAIN_KITS[int(rng.integers(0, len(REAL_TRAIN_KITS)))]
        if (src, name) not in base:
            base[(src, name)] = gm_kit(int(name), cache_dir) if src == "gm" else R.hydrogen_kit(str(name))
        kid = f"real:{src}:{name}:{p.index}"
        kit_of[p.name] = kid
        kits[kid] = processed_kit(base[(src, name)], rng)
    return kit_of, kits
