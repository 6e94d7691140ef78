"""Corpus scores are deterministic from the seed and shaped as issue 8 asks."""
from collections import Counter

from loopmatch_train import corpus as C


def test_same_seed_same_corpus():
    a = C.make_corpus(1234, 40)
    b = C.make_corpus(1234, 40)
    assert a == b


def test_pack_does_not_depend_on_corpus_size():
    assert C.make_pack(1234, 17) == C.make_corpus(1234, 30)[17]


def test_other_seed_other_corpus():
    a = C.make_corpus(1, 20)
    b = C.make_corpus(2, 20)
    assert a != b


def test_pack_shape():
    packs = C.make_corpus(1234, 300)
    assert len({p.genre for p in packs}) >= 6
    tempos = Counter(p.bpm for p in packs)
    assert max(tempos.values()) >= 10  # many packs share a tempo
    for p in packs:
        assert p.bpm in C.GENRES[p.genre]
        drums = [l for l in p.loops if l.instrument == "drum"]
        basses = [l for l in p.loops if l.instrument == "bass"]
        assert len(drums) >= 3 and len(basses) >= 2
        for lp in p.loops:
            assert lp.bars in (1, 2, 4)
            assert lp.notes
            assert all(0 <= n.step < lp.bars * C.STEPS for n in lp.notes)
        for lp in basses:
            # bass pitches come from the pack's key: every root is tonic + a progression degree
            # (busy variants add octaves and fifths above it)
            for n in lp.notes:
                rel = (n.pitch - p.tonic) % 12
                assert any((rel - d) % 12 in (0, 7) for d in p.progression)


def test_bass_locks_to_kick():
    for p in C.make_corpus(99, 80):
        if p.genre not in ("hiphop", "trap", "dnb", "breakbeat"):
            continue
        drum = next(l for l in p.loops if l.name.endswith("drum_main"))
        bass = next(l for l in p.loops if l.name.endswith("bass_main"))
        kicks = {n.step % (2 * C.STEPS) if drum.bars > 1 else n.step for n in drum.notes if n.pitch == "kick"}
        for n in bass.notes:
            s = n.step % (2 * C.STEPS) if bass.bars > 1 else n.step
            if drum.bars > 1 and bass.bars > 1:
                assert s in kicks


def test_key_names():
    assert C.key_name(9, True) == "Am"
    assert C.key_name(6, True) == "F#m"
    assert C.key_name(0, False) == "C"
