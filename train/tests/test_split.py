from loopmatch_train import corpus as C


def test_split_fractions_and_determinism():
    names = [f"pack{i:04d}" for i in range(700)]
    a = C.split_packs(names, 1234)
    b = C.split_packs(list(reversed(names)), 1234)
    assert a == b  # order of the input does not matter
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 595, "val": 35, "test": 70}
    assert set(a) == set(names)


def test_split_changes_with_seed():
    names = [f"pack{i:04d}" for i in range(100)]
    assert C.split_packs(names, 1) != C.split_packs(names, 2)


def test_loops_of_a_pack_share_a_split():
    packs = C.make_corpus(5, 30)
    split = C.split_packs([p.name for p in packs], 5)
    for p in packs:
        assert len({split[l.pack] for l in p.loops}) == 1
