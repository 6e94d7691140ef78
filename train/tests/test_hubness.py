"""The hubness correction's pieces (hubness.py): numpy only."""
import numpy as np

from loopmatch_train import hubness as H


def test_hub_scores_are_the_mean_of_each_candidates_k_nearest_seeds():
    s = np.random.default_rng(0).standard_normal((9, 5))
    for k in (1, 3, 8):
        r = H.hub_scores(s, k)
        np.testing.assert_allclose(r, [np.sort(s[:, c])[-k:].mean() for c in range(5)])
        out = H.hub_scores(s, k, leave_out=True)  # each seed's own row left out
        want = [[np.sort(np.delete(s[:, c], i))[-k:].mean() for c in range(5)] for i in range(9)]
        np.testing.assert_allclose(out, want)


def test_a_hub_loses_its_lead():
    # candidate 0 is near every seed (a hub); each seed's own partner (candidate i + 1) is
    # a little less near it than the hub, and far from the others
    n = 6
    s = np.full((n, n + 1), 0.1)
    s[:, 0] = 0.8
    s[np.arange(n), np.arange(n) + 1] = 0.7
    assert np.all(np.argmax(s, 1) == 0)
    fixed = H.corrected(s, k=3, beta=1.0)
    assert np.all(np.argmax(fixed, 1) == np.arange(n) + 1)
    np.testing.assert_array_equal(H.corrected(s, 3, 0.0), s)  # beta 0: the cosine itself


def _table(same_t, all_t, same_b=(0.2, 0.2), all_b=(0.04, 0.04)):
    t = {}
    for i, d in enumerate(("drum2bass", "bass2drum")):
        for split in ("val", "test", "transfer"):
            t[f"{d}/{split}/same_bpm"] = {"bi_encoder": same_b[i], "corrected": same_t[i]}
            t[f"{d}/{split}/all"] = {"bi_encoder": all_b[i], "corrected": all_t[i]}
            t[f"{d}/{split}/bpm3"] = {"bi_encoder": 0.1, "corrected": 0.1}
    return t


def test_default_on_only_when_it_wins_on_transfer_both_ways():
    assert H.wins(_table((0.18, 0.19), (0.04, 0.0405)))  # all: worse by 0.0005, within the slack
    assert not H.wins(_table((0.18, 0.21), (0.04, 0.04)))  # bass2drum worse at the same tempo
    assert not H.wins(_table((0.18, 0.19), (0.04, 0.042)))  # bass2drum worse over all candidates
    assert not H.wins(_table((0.2, 0.19), (0.04, 0.04)))  # drum2bass merely equal


def test_the_manifest_block_and_card_say_what_recommend_serves(tmp_path):
    import json

    from loopmatch_train.bundle_files import add_role
    res = {"k": 5, "beta": 1.0, "val_bi_encoder": 0.11, "val_grid": {"5/1.0": 0.086, "3/0.5": 0.09},
           "R_mn": _table((0.18, 0.19), (0.039, 0.036))}
    block = H.manifest_block(res)
    assert block["default"] and (block["k"], block["beta"], block["depth"]) == (5, 1.0, H.DEPTH)
    (tmp_path / "manifest.json").write_text(json.dumps({"name": "b", "models": [{"name": "m", "role": "mapper"}]}))
    (tmp_path / "MODEL_CARD.md").write_text("# card\n")
    for _ in range(2):  # a second run replaces the block and the section in place
        add_role(str(tmp_path), "hubness", [], "hubness", block, H.CARD_BEGIN, H.CARD_END, H.card_section(block))
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert m["models"] == [{"name": "m", "role": "mapper"}] and m["hubness"]["k"] == 5 and m["hubness"]["default"] is True
    card = (tmp_path / "MODEL_CARD.md").read_text()
    assert card.count(H.CARD_BEGIN) == 1 and "On by default: **yes**" in card
    assert "| drum2bass | transfer | 0.0400 -> 0.0390 | 0.1000 -> 0.1000 | 0.2000 -> 0.1800 |" in card


def test_the_variants_pieces():
    from loopmatch_train import hubness_variants as V
    rng = np.random.default_rng(3)
    q, z = V.unit(rng.standard_normal((6, 4))), V.unit(rng.standard_normal((9, 4)))
    s = q @ z.T
    # the inverted softmax: per candidate, tau s minus its log-sum-exp over the seeds
    isf = V.inverted_softmax(s, 5.0)
    np.testing.assert_allclose(np.exp(isf).sum(0), np.ones(9))
    # reverse rank: 0 for the seed nearest each candidate
    rr = V.reverse_rank(s)
    assert np.all(rr[np.argmax(s, 0), np.arange(9)] == 0) and rr.max() == 5 / 6
    # tempo-local hub scores equal the plain ones when every loop shares one tempo
    np.testing.assert_allclose(V.tempo_local(s, np.full(6, 120.0), np.full(9, 120.0), k=2), H.corrected(s, 2, 1.0))
    # expansion with weight 0 (alpha large, cosines < 1) keeps the query; rows stay unit length
    e = V.expand(q, z, 2, 1.0)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1)
    np.testing.assert_allclose(V.expand(q, z, 2, 200.0), q, atol=1e-6)
    a = V.augment(z, 2, 1.0)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1)
    for name in V.VARIANTS:
        out = V.variant(name, q, z, V.unit(rng.standard_normal((9, 4))), V.unit(rng.standard_normal((6, 4))),
                        np.full(6, 120.0), np.full(9, 120.0))
        assert out.shape == (6, 9) and np.all(np.isfinite(out)), name
