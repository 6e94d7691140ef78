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
    p = A.pooling(8)
    fp = f @ p
    assert p.shape == (A.N_FEATURES, 3 * A.N_MELS // 8 + len(A.SCALARS))
    np.testing.assert_allclose(fp[:, 0], f[:, :8].mean(1), rtol=1e-5)  # the first 8 bands' mean
    g = A.AnomalyGraph(A.PlainNet(p.shape[1]), fp.mean(0), fp.std(0) + 1, np.zeros(32, np.float32), p).eval()
    with torch.no_grad():
        a, b = g(torch.from_numpy(x)).numpy(), g(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(a, b)


def test_sort7_sorts_every_input_so_its_middle_is_the_median():
    import itertools
    for bits in itertools.product([0.0, 1.0], repeat=7):  # the 0-1 principle: all inputs then
        v = [torch.tensor(b) for b in bits]
        for i, j in A.SORT7:
            v[i], v[j] = torch.minimum(v[i], v[j]), torch.maximum(v[i], v[j])
        assert [float(a) for a in v] == sorted(bits)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, N)).astype(np.float32))
    r = A.median_spikes(x, x.abs().amax(1))
    assert r.shape == (2, 2) and torch.all(torch.isfinite(r))


def _beats(beats, beat=11025, seed=0):
    """A click track: a decaying noise burst on every beat, the downbeat louder."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(beats * beat), np.float32)
    burst = (rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)).astype(np.float32)
    for b in range(int(np.ceil(beats))):
        at = b * beat
        n = min(len(burst), len(x) - at)
        x[at:at + n] += burst[:n] * (0.6 if b % 4 == 0 else 0.3)
    return x + 0.002 * rng.standard_normal(len(x)).astype(np.float32)


def test_embedding_sees_clicks_noise_and_a_seam_off_the_beat():
    fe = A.Features().eval()
    i = 3 * A.N_MELS
    col = {n: i + k for k, n in enumerate(A.SCALARS)}
    loop = _beats(4)  # one bar at 120 BPM: tiled, it repeats after 4 beats
    clean = np.resize(loop, N)
    clicked = np.resize(D.clicks(loop, np.random.default_rng(2)), N)
    noisy = np.resize(D.noise(loop, np.random.default_rng(2)), N)
    cut = np.resize(loop[:int(2.6 * 11025)], N)  # cut 0.4 of a beat after the 2nd: repeats off the beat
    with torch.no_grad():
        f = fe(torch.from_numpy(np.stack([clean, clicked, noisy, cut]))).numpy()
    assert np.all(np.isfinite(f))
    assert f[1, col["med_spike1"]] > f[0, col["med_spike1"]] + 1
    assert f[2, col["floor_min"]] > f[0, col["floor_min"]] + 2
    assert f[0, col["repeat_beats_frac"]] < 0.1
    assert f[3, col["repeat_beats_frac"]] > 0.2
