"""SampleMatch's data: coherent kits, stems, contexts and queries (numpy only, as CI runs it)."""
import numpy as np
import pytest

from loopmatch_train import corpus2 as C2
from loopmatch_train import oneshots as O
from loopmatch_train import render as R


def synth_pack():
    for i in range(200):
        p = C2.make_pack(1234, i)
        if p.drum_source == "synth" and len(O.roles_played(O.main_loop(p, "drum"))) >= 3:
            return p
    raise AssertionError("no synthesised-kit pack among the first 200")


def test_coherent_kit_is_deterministic_and_complete():
    a = O.coherent_kit(np.random.default_rng([7, 20]))
    b = O.coherent_kit(np.random.default_rng([7, 20]))
    c = O.coherent_kit(np.random.default_rng([8, 20]))
    assert set(a) == set(O.KINDS)
    for k in O.KINDS:
        assert a[k].dtype == np.float32 and np.all(np.isfinite(a[k]))
        assert 0 < len(a[k]) <= int(1.5 * O.SR)
        assert np.isclose(np.max(np.abs(a[k])), 1.0, atol=1e-6)
        np.testing.assert_array_equal(a[k], b[k])
    assert any(len(a[k]) != len(c[k]) or not np.allclose(a[k], c[k]) for k in O.KINDS)


def test_stem_holds_only_its_role():
    p = synth_pack()
    kit = O.coherent_kit(np.random.default_rng([int(p.drum_kit), 20]))
    lp = O.main_loop(p, "drum")
    roles = O.roles_played(lp)
    stems = {r: O.stem(kit, p, lp, r) for r in roles}
    whole = O.tile(R.mix_one_shots(kit, p, lp))
    # the loop is the sum of its roles' stems
    np.testing.assert_allclose(sum(stems.values()), whole, atol=1e-4)
    # a role the loop does not play has a silent stem
    silent = next(k for k in O.KINDS if k not in roles)
    assert not np.any(O.stem(kit, p, lp, silent))
    assert all(len(s) == O.WINDOW for s in stems.values())


def test_context_leaves_the_query_kind_out():
    p = synth_pack()
    kits = O.kits_for([p])
    ctx = O.Contexts({p.name: p}, kits)
    qs = O.queries([p], {p.name: "test"}, kits)
    assert {q.kind for q in qs} == set(O.roles_played(O.main_loop(p, "drum")))
    q = qs[0]
    full, names = ctx.mix(q)
    assert q.kind not in names and set(names) == set(ctx.stems(p.name)) - {q.kind}
    assert full.shape == (O.WINDOW,) and np.all(np.isfinite(full))
    for seed in range(20):
        x, sub = ctx.mix(q, np.random.default_rng(seed), sparse=True)
        assert sub and set(sub) <= set(names)
        y, sub2 = ctx.mix(q, np.random.default_rng(seed), sparse=True)
        assert sub == sub2
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError):
        ctx.mix(q, None, sparse=True)


def test_oneshot_bank_cuts_to_one_second():
    kits = {"synth:1": O.coherent_kit(np.random.default_rng(1)), "synth:2": O.coherent_kit(np.random.default_rng(2))}
    bank = O.oneshot_bank(kits)
    assert set(bank) == set(O.KINDS)
    for k in O.KINDS:
        assert set(bank[k]) == set(kits)
        assert all(len(v) == O.ONESHOT for v in bank[k].values())


def test_processed_kit_is_one_chain_for_the_whole_kit():
    kit = O.coherent_kit(np.random.default_rng(3))
    a = O.processed_kit(kit, np.random.default_rng(9))
    b = O.processed_kit(kit, np.random.default_rng(9))
    c = O.processed_kit(kit, np.random.default_rng(10))
    assert set(a) == set(kit)
    for k in kit:
        assert a[k].dtype == np.float32 and np.all(np.isfinite(a[k]))
        assert 0 < len(a[k]) <= int(1.5 * O.SR)
        np.testing.assert_array_equal(a[k], b[k])
    # one pitch factor for every role: every one-shot's length changes by the same ratio
    ratios = {round(len(a[k]) / len(kit[k]), 2) for k in kit if len(kit[k]) < int(1.2 * O.SR)}
    assert len(ratios) == 1
    assert any(len(a[k]) != len(c[k]) or not np.allclose(a[k], c[k]) for k in kit)


def test_borrowed_roles_are_found_and_left_out_of_queries():
    rng = np.random.default_rng(3)
    snare = rng.normal(0, 0.3, 2000).astype(np.float32)
    kit = {"kick": rng.normal(0, 0.3, 2000).astype(np.float32), "snare": snare,
           "clap": snare, "rim": snare.copy(), "perc": snare}  # clap, rim and (via rim) perc borrow the snare
    assert not O.borrowed(kit, "kick") and not O.borrowed(kit, "snare")
    assert O.borrowed(kit, "clap") and O.borrowed(kit, "rim") and O.borrowed(kit, "perc")
    kit["clap"] = rng.normal(0, 0.3, 2000).astype(np.float32)  # a clap of its own
    assert not O.borrowed(kit, "clap")
