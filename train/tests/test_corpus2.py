"""Corpus v2: each generator is deterministic, labels what it made, and keeps the transfer
split's factors out of training; the tempo-batched sampler and the paired augmentation keep
what must be scored intact."""
from collections import Counter

import numpy as np
import pytest

from loopmatch_train import basslines as B
from loopmatch_train import corpus2 as C2
from loopmatch_train import grooves as G
from loopmatch_train import production as P


def test_same_seed_same_corpus_and_independent_of_size():
    a = C2.make_corpus(7, 30)
    assert a == C2.make_corpus(7, 30)
    assert C2.make_pack(7, 17) == a[17]
    assert a != C2.make_corpus(8, 30)


def test_transfer_factors_never_in_main_packs():
    packs = C2.make_corpus(1234, 400)
    groups = Counter(p.group for p in packs)
    assert 0.08 < groups["transfer"] / len(packs) < 0.25
    for p in packs:
        held_out = (p.family in G.FAMILIES_TRANSFER, p.drum_source == "hydrogen", p.bass_source == "fm")
        if p.group == "transfer":
            assert all(held_out), p.meta()
        else:
            assert not any(held_out), p.meta()
    split = C2.split_v2(packs, 1234)
    assert {split[p.name] for p in packs if p.group == "transfer"} == {"transfer"}
    assert {split[p.name] for p in packs if p.group == "main"} == {"train", "val", "test"}


def test_variety():
    packs = C2.make_corpus(1234, 600)
    assert len({p.genre for p in packs}) >= 12
    assert set(G.FAMILIES_TRAIN) <= {p.family for p in packs}
    assert len({p.idiom for p in packs}) >= 8
    assert {"gm", "synth", "hydrogen"} == {p.drum_source for p in packs}
    assert {"gm", "subtractive", "wavetable", "fm"} == {p.bass_source for p in packs}
    assert max(Counter(p.bpm for p in packs).values()) >= 15  # many packs share a tempo


def test_labels_and_ranges():
    for p in C2.make_corpus(99, 150):
        assert p.bpm in G.STYLES[p.genre]
        assert p.key == C2.key_name(p.tonic, p.minor)
        drums = [lp for lp in p.loops if lp.instrument == "drum"]
        basses = [lp for lp in p.loops if lp.instrument == "bass"]
        assert len(drums) >= 3 and len(basses) >= 2
        for lp in p.loops:
            assert lp.bars in (1, 2, 4)
            assert lp.notes, lp.name
            assert all(0 <= n.step < lp.bars * C2.STEPS for n in lp.notes), lp.name
        for lp in drums:
            assert {n.pitch for n in lp.notes} <= set(G.ROLES)
        for lp in basses:
            assert lp.idiom in B.IDIOMS
            assert all(20 <= n.pitch <= 72 for n in lp.notes)


@pytest.mark.parametrize("family", G.FAMILIES_TRAIN + G.FAMILIES_TRANSFER)
def test_each_groove_family_is_deterministic_and_has_kick_and_backbeat(family):
    for style in G.STYLE_NAMES:
        a = G.make_spec(family, style, np.random.default_rng(5))
        b = G.make_spec(family, style, np.random.default_rng(5))
        assert a == b
        g = a.loop("main", 2, np.random.default_rng(1))
        assert g.family == family
        assert g.steps("kick"), (family, style)
        assert any(h.role in ("snare", "clap", "rim") for h in g.hits), (family, style)


def test_human_patterns_come_from_hydrogen_data():
    pats = G.human_patterns()
    if not pats:
        pytest.skip("hydrogen-data is not installed (scripts/bootstrap.sh --train installs it)")
    assert len(pats) >= 40
    for name, hits in pats:
        assert ":" in name
        assert all(0 <= h.step < 16 for h in hits)


def test_euclid():
    assert G.euclid(4, 16) == [0, 4, 8, 12]
    assert len(G.euclid(5, 16)) == 5
    assert G.euclid(3, 8, 1) != G.euclid(3, 8, 0)


@pytest.mark.parametrize("idiom", B.IDIOMS)
def test_bass_idioms_deterministic_and_in_bar(idiom):
    kick, snare = [0, 6, 10], [4, 12]
    a = B.bar_notes(idiom, kick, snare, 36, 41, B.MINOR, np.random.default_rng(3), 0.8, 0.5)
    b = B.bar_notes(idiom, kick, snare, 36, 41, B.MINOR, np.random.default_rng(3), 0.8, 0.5)
    assert a == b and a
    assert all(0 <= n.step < 16 and n.dur > 0 for n in a)


def test_kick_lock_follows_the_kick():
    notes = B.bar_notes("kick_lock", [0, 7, 10], [4, 12], 36, 36, B.MINOR, np.random.default_rng(0), 0.8, 0.3)
    assert [n.step for n in notes] == [0, 7, 10]


def test_off_downbeat_packs_rotate_drums_and_bass_together():
    packs = [p for p in C2.make_corpus(1234, 300) if p.phase]
    assert packs
    p = packs[0]
    q = C2.Pack(**{**p.meta(), "phase": 0, "loops": []})
    assert q.phase == 0  # the dataclass round-trips
    for lp in p.loops:
        assert all(0 <= n.step < lp.bars * C2.STEPS for n in lp.notes)


def test_production_keeps_length_and_is_finite():
    rng = np.random.default_rng(0)
    x = np.sin(np.arange(22050) / 22050 * 2 * np.pi * 110).astype(np.float32)
    for k in range(20):
        c = P.random_chain(np.random.default_rng(k), lofi=k % 2 == 0)
        y = P.apply(c, x, rng)
        assert y.shape == x.shape and np.isfinite(y).all()


def test_production_is_cyclic():
    """A cyclic chain of a periodic signal has no seam: the loop's end joins its start."""
    x = np.tile(np.sin(np.arange(2205) / 2205 * 2 * np.pi * 10), 10).astype(np.float32)
    c = P.Chain(low_gain_db=6, high_gain_db=-6, peak_gain_db=3, lofi_hz=3000)
    y = P.apply(c, x, np.random.default_rng(0))
    step = np.abs(np.diff(np.concatenate([y, y[:1]])))
    assert step[-1] < 3 * np.median(step) + 1e-3


# --- the towers' sampler and augmentations (loopmatch_train/sampling.py) ----------------

from loopmatch_train import sampling as S  # noqa: E402


def _rows(n_packs, bpms):
    rows = []
    for p in range(n_packs):
        for inst, k in (("drum", 3), ("bass", 2)):
            for _ in range(k):
                rows.append({"pack": f"p{p}", "instrument": inst, "bpm": bpms[p % len(bpms)]})
    return rows


def test_tempo_batches_share_a_tempo_and_one_pair_per_pack():
    rows = _rows(60, [90, 120, 140])
    d = [i for i, r in enumerate(rows) if r["instrument"] == "drum"]
    b = [i for i, r in enumerate(rows) if r["instrument"] == "bass"]
    packs = S.pairs_by_pack(rows, d, b)
    bpm_of = {r["pack"]: r["bpm"] for r in rows}
    a = S.TempoBatches(packs, bpm_of, same=12, rand=4, rng=np.random.default_rng(0))
    again = S.TempoBatches(packs, bpm_of, same=12, rand=4, rng=np.random.default_rng(0))
    for _ in range(20):
        batch = a.batch()
        assert batch == again.batch()  # deterministic from the rng
        names = [p for _, _, p in batch]
        assert len(names) == len(set(names)) == 16  # one pair per pack
        head = {bpm_of[p] for p in names[:12]}
        assert len(head) == 1  # the same-tempo block shares one tempo
        for di, bi, p in batch:
            assert rows[di]["pack"] == rows[bi]["pack"] == p
            assert rows[di]["instrument"] == "drum" and rows[bi]["instrument"] == "bass"


def test_shift_negatives_are_off_the_beat():
    rng = np.random.default_rng(1)
    for bpm in (70, 100, 128, 174):
        beat = S.LAT_FPS * 60 / bpm
        for _ in range(50):
            s = S.shift_frames(bpm, rng)
            assert s >= 1
            assert 0.2 * beat - 0.5 <= s <= 0.8 * beat + 0.5  # never a whole beat


def test_paired_roll_keeps_the_pair_aligned():
    """Onsets of a drum and a bass that coincide still coincide after the paired roll."""
    t = np.arange(256)
    drum = np.zeros((1, 4, 256))
    bass = np.zeros((1, 4, 256))
    drum[..., t % 32 == 0] = 1
    bass[..., t % 32 == 0] = 1
    for r in (4, 36, 200):
        d2, b2 = S.paired_roll(drum, bass, r)
        assert (np.argwhere(d2[0, 0] > 0) == np.argwhere(b2[0, 0] > 0)).all()
        assert not np.array_equal(d2, drum) or r % 32 == 0
