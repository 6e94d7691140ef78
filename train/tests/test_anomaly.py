"""The damage generator (damage.py) and the anomaly models' pieces (anomaly.py)."""
import numpy as np
import pytest

from loopmatch_train import damage as D

SR = 22050
N = 88200


def _loop(seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    x = 0.3 * np.sin(2 * np.pi * 110 * t) * np.exp(-((t * 2) % 0.5) * 6) + 0.01 * rng.standard_normal(len(t))
    return x.astype(np.float32)


@pytest.mark.parametrize("kind", D.KINDS)
def test_damage_is_deterministic_changes_the_loop_and_stays_in_range(kind):
    x = _loop()
    other = _loop(1.0, seed=5) * 0.5
    a = D.apply(kind, x, np.random.default_rng(3), n_window=N, bpm=120, sr=SR, other=other)
    b = D.apply(kind, x, np.random.default_rng(3), n_window=N, bpm=120, sr=SR, other=other)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and np.all(np.abs(a) <= 1)
    assert len(a) != len(x) or not np.array_equal(a, x)
    assert np.array_equal(x, _loop())  # the input is left alone
    np.testing.assert_array_equal(a, np.round(a * 32768) / 32768)  # 16-bit, as a WAV file holds it


def test_each_kind_does_what_it_says():
    x = _loop()
    rng = np.random.default_rng(1)
    c = D.clipping(x, rng)
    assert np.mean(np.abs(c) >= 0.999) > 0.01  # many samples at full scale
    k = D.clicks(x, rng)
    assert np.max(np.abs(np.diff(k))) > 3 * np.max(np.abs(np.diff(x)))
    n = D.noise(x, rng)
    snr = 10 * np.log10(np.mean(x ** 2) / np.mean((n - x) ** 2))
    assert 9 < snr < 26
    b = D.bitcrush(x, rng)
    assert len(np.unique(b)) <= 2 ** 6 + 1
    w = D.warp(x, rng)
    assert abs(len(w) / len(x) - 1) > 0.06
    beat = 60 / 120 * SR
    for s in range(20):
        cut = D.seam_cut(x, np.random.default_rng(s), N, beat)
        off = len(cut) % beat
        assert beat / 8 <= off <= beat - beat / 8
        assert 0.45 * len(x) <= len(cut) <= 0.9 * len(x)
    with pytest.raises(ValueError):
        D.apply("wrong_instrument", x, rng, n_window=N, bpm=120, sr=SR)
    with pytest.raises(ValueError):
        D.apply("nope", x, rng, n_window=N, bpm=120, sr=SR)


torch = pytest.importorskip("torch")  # the training environment (.venv-train) has it
from loopmatch_train import anomaly as A  # noqa: E402


def test_threshold_is_the_95th_percentile_of_training_scores_only():
    train = np.arange(1, 101, dtype=np.float64)
    assert A.threshold(train) == pytest.approx(np.percentile(train, 95))
    # the same training scores give the same threshold whatever is evaluated against it
    assert A.threshold(train) == A.threshold(train.copy())


def test_auroc_and_precision():
    assert A.auroc(np.array([0.1, 0.2]), np.array([0.3, 0.4])) == 1.0
    assert A.auroc(np.array([0.3, 0.4]), np.array([0.1, 0.2])) == 0.0
    assert A.auroc(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.5
    r = A.at_threshold(np.array([0.1, 0.9]), np.array([0.8, 0.2]), 0.5)
    assert r == {"precision": 0.5, "recall": 0.5, "clean_flagged": 0.5}


def test_baselines_rank_outliers_first():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 6))
    out = rng.standard_normal((20, 6)) * 0.3 + 6
    for m in (A.IsolationForest(trees=30).fit(x), A.PCARecon(0.9).fit(x)):
        assert A.auroc(m.score(x[:100]), m.score(out)) > 0.95
    f1, f2 = A.IsolationForest(trees=10, seed=1).fit(x), A.IsolationForest(trees=10, seed=1).fit(x)
    np.testing.assert_array_equal(f1.score(out), f2.score(out))


def test_graph_scores_deterministically_and_sees_clipping():
    torch.manual_seed(0)
    fe = A.Features().eval()
    x = np.stack([np.resize(_loop(seed=s), N) for s in range(2)])
    clipped = np.stack([np.resize(D.clipping(_loop(seed=s), np.random.default_rng(s)), N) for s in range(2)])
    with torch.no_grad():
        f = fe(torch.from_numpy(x)).numpy()
        fc = fe(torch.from_numpy(clipped)).numpy()
    assert f.shape == (2, A.N_FEATURES) and np.all(np.isfinite(f))
    i = 3 * A.N_MELS + A.SCALARS.index("clip")
    assert np.all(fc[:, i] > f[:, i] + 2)
    g = A.AnomalyGraph(A.PlainNet(), f.mean(0), f.std(0) + 1, np.zeros(32, np.float32)).eval()
    with torch.no_grad():
        a, b = g(torch.from_numpy(x)).numpy(), g(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(a, b)
