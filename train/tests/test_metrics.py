"""Metric functions on hand-checked examples."""
import math

import numpy as np
import pytest

from loopmatch_train import metrics as M


def test_normalized_rank_hand_checked():
    assert M.normalized_rank(0.9, np.array([0.1, 0.2, 0.3])) == 0.0
    assert M.normalized_rank(0.0, np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert M.normalized_rank(0.25, np.array([0.1, 0.2, 0.3, 0.4])) == 0.5
    assert M.normalized_rank(0.3, np.array([0.3, 0.1])) == 0.25  # a tie counts half


def test_ild_hand_checked():
    assert M.ild([["a", "b"], ["a", "b"]], 2) == 0.0
    assert M.ild([["a", "b"], ["c", "d"]], 2) == 1.0
    # pairs: (1,2) share a -> 0.5; (1,3) share none -> 1; (2,3) share c -> 0.5
    assert M.ild([["a", "b"], ["a", "c"], ["d", "c"]], 2) == pytest.approx(2 / 3)
    assert math.isnan(M.ild([["a"]], 1))


def test_evaluate_hand_checked():
    # seeds: s0 (pack A, 120), s1 (pack B, 120); candidates: a0, a1 (A), b0 (B), c0 (C, 125)
    seed_pack, seed_bpm = ["A", "B"], [120, 120]
    cand_pack, cand_bpm = ["A", "A", "B", "C"], [120, 120, 120, 125]
    scores = np.array([
        [0.9, 0.1, 0.5, 0.2],   # a0 beats b0, c0 -> 0; a1 below both -> 1
        [0.3, 0.6, 0.4, 0.4],   # b0 ties c0, below a1 -> (1 + 0.5) / 3 = 0.5
    ])
    r = M.evaluate(scores, seed_pack, seed_bpm, cand_pack, cand_bpm, "all", ild_ls=(1, 2), ks=(1, 2))
    assert r["pairs"] == 3
    assert r["R_mn"] == pytest.approx((0 + 1 + 0.5) / 3)
    assert r["R_md"] == pytest.approx(0.5)
    assert r["Recall@1"] == pytest.approx(1 / 3)   # only a0 for s0
    assert r["Recall@2"] == pytest.approx(2 / 3)   # a0, and b0 at 1.5 < 2
    # top lists over all candidates: s0 -> [a0, b0], s1 -> [a1, b0] (stable on the tie)
    assert r["ILD@1"] == 1.0
    assert r["ILD@2"] == 0.5


def test_bpm_settings_filter_candidates():
    assert list(M.candidate_mask("same_bpm", 128, np.array([128, 130, 124]))) == [True, False, False]
    assert list(M.candidate_mask("bpm3", 128, np.array([128, 131, 132, 125, 123]))) == [True, True, False, True, False]


def test_same_bpm_skips_seeds_with_few_candidates():
    scores = np.zeros((1, 3))
    r = M.evaluate(scores, ["A"], [120], ["A", "B", "C"], [120, 120, 120], "same_bpm", min_candidates=5)
    assert r["seeds"] == 0 and "R_mn" not in r


def test_random_scores_give_half():
    rng = np.random.default_rng(0)
    n = 400
    packs = np.arange(n) // 2
    r = M.evaluate(M.random_scores(n, n, 1), packs, np.full(n, 120), packs, np.full(n, 120), "all")
    assert abs(r["R_mn"] - 0.5) < 0.03


def test_metadata_rule_prefers_bpm_then_key():
    s = M.metadata_scores([120], ["Am"], [120, 120, 121], ["Am", "C", "Am"])
    assert s[0, 0] > s[0, 1] > s[0, 2]


def test_cosine_scores():
    q = np.array([[1.0, 0.0]])
    c = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(M.cosine_scores(q, c), [[1.0, 0.0, math.sqrt(0.5)]])
