"""The instrument classifier's data and graph (train/loopmatch_train/instrument.py)."""
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the training environment (.venv-train) has it

from loopmatch_train import instrument as I  # noqa: E402


def test_other_plans_are_deterministic_and_keep_transfer_programs_out():
    a, b = I._other_plan("train", 200), I._other_plan("train", 200)
    assert a == b
    train_progs = {p["program"] for s in ("train", "val", "test") for p in I._other_plan(s, 300) if p["source"] == "gm"}
    transfer = I._other_plan("transfer", 300)
    assert train_progs and not train_progs & I.GM_TRANSFER
    assert not train_progs & I.GM_BASS
    assert all(p["source"] == "gm" and p["program"] in I.GM_TRANSFER for p in transfer)
    assert {p["source"] for p in a} == {"gm", *I.CODE_KINDS}


def test_graph_gives_distributions_and_ignores_loudness():
    torch.manual_seed(0)
    g = I.ClassifierGraph(I.Net()).eval()
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((3, I.N)).astype(np.float32) * 0.1)
    with torch.no_grad():
        p = g(x)
        q = g(x * 4)  # 12 dB louder: the clip's mean log-mel is removed
        lm = g.fe(x)
    assert p.shape == (3, 3)
    np.testing.assert_allclose(p.sum(1).numpy(), 1, atol=1e-6)
    assert lm.shape == (3, I.N_MELS, I.FRAMES)
    np.testing.assert_allclose(p.numpy(), q.numpy(), atol=2e-3)


def test_scores_confusion_and_confidence():
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.1, 0.1, 0.8]])
    y = np.array([0, 1, 2, 2])
    s = I.scores(probs, y, min_conf=0.6)
    assert s["accuracy"] == 0.75
    assert s["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]
    assert s["confident_fraction"] == 0.75 and s["accuracy_when_confident"] == 1.0


HAVE_FLUID = shutil.which("fluidsynth") and os.path.exists("/usr/share/sounds/sf2/FluidR3_GM.sf2")


@pytest.mark.skipif(not HAVE_FLUID, reason="fluidsynth / FluidR3_GM not installed (make models installs them)")
def test_other_render_is_deterministic_and_finite():
    plan = I._other_plan("val", 6) + [dict(I._other_plan("val", 1)[0], source=k, program=0, name=f"x_{k}") for k in I.CODE_KINDS]
    a, b = I._render_other_chunk(plan), I._render_other_chunk(plan)
    for x, y in zip(a, b):
        assert x.shape == (I.N,) and np.isfinite(x).all() and np.abs(x).max() > 1e-3
        np.testing.assert_array_equal(x, y)
