"""The taste metrics and producers of similar_eval.py, and the embedders' front end."""
import math

import numpy as np
import pytest

from loopmatch_train.similar_eval import evaluate, producers, ranking_metrics


def test_ranking_metrics():
    m = ranking_metrics(np.array([5, 1, 7, 2]), {1, 2})
    assert m["hitrate@10"] == 1 and m["recall@10"] == 1
    assert math.isclose(m["ndcg@10"], (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert ranking_metrics(np.array([1, 2]), {1, 2})["ndcg@50"] == 1
    assert ranking_metrics(np.array([3, 4]), {1})["hitrate@50"] == 0


def test_producers_hold_back_and_never_repeat():
    packs = {"p": [0, 1, 2, 3], "q": [4, 5], "r": [6]}
    for liked, held in producers(packs, 100, np.random.default_rng(0)):
        assert liked and held
        assert not set(liked) & set(held)
        assert 6 not in liked + held


def test_evaluate_orders_a_perfect_embedder_first():
    rng = np.random.default_rng(1)
    packs = [f"p{i // 3}" for i in range(60)]
    centres = {p: rng.standard_normal(16) for p in set(packs)}
    perfect = np.stack([centres[p] + 0.01 * rng.standard_normal(16) for p in packs])
    noise = rng.standard_normal((60, 16))
    meta = [("120", "Am")] * 60  # metadata cannot tell packs apart here
    res = evaluate({"perfect": perfect, "noise": noise}, meta, packs, 50, 3)
    assert res["similar"]["perfect"]["ndcg@10"] == pytest.approx(1.0)
    # a profile's mean of up to three packs' centres sits between them: nearly perfect
    assert res["profile"]["perfect"]["ndcg@10"] > 0.9
    for task in ("similar", "profile"):
        assert res[task]["noise"]["ndcg@10"] < 0.6
        assert res[task]["random"]["recall@50"] > 0.5  # 50 of 57-59 candidates


def test_logmel_stats_graph_matches_the_cached_features():
    torch = pytest.importorskip("torch")
    from loopmatch_train.embedders import LogMelStats
    from loopmatch_train.models import FrontEnd
    from loopmatch_train.similar_eval import logmel_stats
    audio = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 88200)).astype(np.float32) * 0.1)
    mu, sd = np.zeros(256, np.float32), np.ones(256, np.float32)
    with torch.no_grad():
        got = LogMelStats(mu, sd)(audio).numpy()
        want = logmel_stats(FrontEnd()(audio)[0].numpy())
    assert np.max(np.abs(got - want)) < 1e-3


def test_musicnn_front_and_vgg_shapes():
    torch = pytest.importorskip("torch")
    from loopmatch_train.embedders import MusicnnEmbedder, MusicnnVGG, slaney_mel
    fb = slaney_mel(96, 706, 22050)
    assert fb.shape == (96, 354) and (fb >= 0).all() and (fb.sum(axis=1) > 0).all()
    # no band above musicnn's 8 kHz
    assert fb[:, int(8000 / (22050 / 706)) + 2:].sum() == 0
    with torch.no_grad():
        e = MusicnnEmbedder(MusicnnVGG().eval()).eval()(torch.zeros(1, 88200))
    assert tuple(e.shape) == (1, 128)
