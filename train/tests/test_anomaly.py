"""The damage generator (damage.py) and the anomaly models' pieces (anomaly.py)."""
import os
import tempfile

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
    bpm = torch.tensor([120.0, 0.0])
    with torch.no_grad():
        f3 = fe(torch.from_numpy(x), bpm).numpy()
        f, fc = f3[:, 0], fe(torch.from_numpy(clipped), bpm).numpy()[:, 0]
    assert f3.shape == (2, len(A.OCTAVES), A.N_FEATURES)
    assert f.shape == (2, A.N_FEATURES) and np.all(np.isfinite(f))
    i = 3 * A.N_MELS + A.SCALARS.index("clip")
    assert np.all(fc[:, i] > f[:, i] + 2)
    p = A.pooling(8)
    fp = f @ p
    assert p.shape == (A.N_FEATURES, 3 * A.N_MELS // 8 + len(A.SCALARS) + len(A.TEMPO))
    np.testing.assert_allclose(fp[:, 0], f[:, :8].mean(1), rtol=1e-5)  # the first 8 bands' mean
    ref = A.reference(np.concatenate([fp, fp + 1, fp - 1]))
    g = A.AnomalyGraph(A.PlainNet(p.shape[1]), np.zeros(p.shape[1], np.float32), np.ones(p.shape[1], np.float32),
                       np.zeros(32, np.float32), p, ref, 2.0, 4.0).eval()
    bpm2 = torch.tensor([[120.0], [0.0]])
    with torch.no_grad():
        dur2 = torch.tensor([[4.0], [0.0]])
        a, b = g(torch.from_numpy(x), bpm2, dur2).numpy(), g(torch.from_numpy(x), bpm2, dur2).numpy()
        per = [((g.net(torch.clamp(g.tails(torch.matmul(g.fe(torch.from_numpy(x), bpm2[:, 0], dur2[:, 0])[:, o], g.pool)), -A.CLAMP, A.CLAMP))
                 - g.c) ** 2).sum(1).numpy() for o in range(len(A.OCTAVES))]
    raw = np.min(per, 0)  # the reading of the tempo that fits best
    np.testing.assert_array_equal(a, b)
    # each condition's scale: 2 with a declared tempo, 4 without
    np.testing.assert_allclose(a, raw / np.array([2.0, 4.0]), rtol=1e-5)


def test_tails_score_the_training_distribution_two_sided():
    rng = np.random.default_rng(0)
    train = rng.standard_normal((5000, 3)).astype(np.float32)
    ref = A.reference(train, q=1024)
    assert ref.shape == (1024, 3) and np.all(np.diff(ref, axis=0) >= 0)
    t = A.apply_tails(A.Tails(ref), np.array([[0, 0, 0], [6, -6, 0.0], [50, -50, 1]], np.float32))
    assert np.all(t[0] < 1.0)  # the median: a tail of about a half
    assert np.all(t[1, :2] > np.log(1025))  # beyond every training value, either side
    assert np.all(t[2, :2] > t[1, :2] + 10)  # and further out, more
    assert 1.0 < t[2, 2] < 2.5  # one sigma: a tail of about 0.16


def test_no_tempo_is_what_the_graph_computes_without_a_tempo():
    fe = A.Features().eval()
    x = torch.from_numpy(np.stack([np.resize(_beats(4), N), np.resize(_beats(3.3, seed=1), N)]))
    with torch.no_grad():
        with_tempo = fe(x, torch.tensor([120.0, 120.0])).numpy()
        without = fe(x, torch.tensor([0.0, 0.0])).numpy()
    np.testing.assert_allclose(A.no_tempo(with_tempo), without, rtol=1e-5, atol=1e-6)
    assert not np.allclose(with_tempo, without)


def test_sort7_sorts_every_input_so_its_middle_is_the_median():
    import itertools
    for bits in itertools.product([0.0, 1.0], repeat=7):  # the 0-1 principle: all inputs then
        v = [torch.tensor(b) for b in bits]
        for i, j in A.SORT7:
            v[i], v[j] = torch.minimum(v[i], v[j]), torch.maximum(v[i], v[j])
        assert [float(a) for a in v] == sorted(bits)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, N)).astype(np.float32))
    r = A.median_spikes(x, x.abs().amax(1))
    assert r.shape == (2, 4) and torch.all(torch.isfinite(r))


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
        f = fe(torch.from_numpy(np.stack([clean, clicked, noisy, cut])), torch.full((4,), 120.0)).numpy()[:, 0]
    assert np.all(np.isfinite(f))
    assert f[1, col["med_spike1"]] > f[0, col["med_spike1"]] + 1
    assert f[1, col["loc_spike1"]] > f[0, col["loc_spike1"]] + 1 and f[1, col["loc_spike2"]] > f[0, col["loc_spike2"]] + 1
    assert f[2, col["floor_min"]] > f[0, col["floor_min"]] + 2
    assert f[0, col["repeat_beats_frac"]] < 0.1
    assert f[3, col["repeat_beats_frac"]] > 0.2


def test_tempo_features_hear_a_loop_off_its_declared_tempo_and_a_cut_off_its_beats():
    fe = A.Features().eval()
    t = {n: A.N_FEATURES - len(A.TEMPO) + k for k, n in enumerate(A.TEMPO)}
    loop = _beats(8)  # two bars at 120 BPM
    warped = D.warp(loop, np.random.default_rng(3))  # another speed, the same declared 120
    cut = loop[:int(5.4 * 11025)]  # cut 0.4 of a beat after the 5th beat: tiled, it repeats off the beat
    whole = loop[:4 * 11025]  # one bar: tiled, it repeats on the beat
    x = torch.from_numpy(np.stack([np.resize(v, N) for v in (loop, warped, cut, whole)]))
    with torch.no_grad():
        f = fe(x, torch.full((4,), 120.0)).numpy()[:, 0]
        f0 = fe(x, torch.zeros(4)).numpy()[:, 0]
    assert np.all(np.isfinite(f)) and np.all(np.isfinite(f0))
    gaps = [t["beat_gap"], t["beat2_gap"], t["bar_gap"]]
    assert f[0, gaps].max() < 0.15 and f[1, gaps].max() > 0.5  # the envelope's peaks: at the declared lags, off them
    assert f[0, t["bar_ac"]] > f[1, t["bar_ac"]] + 0.2
    assert f[3, t["repeat_exact"]] < -1 and f[2, t["repeat_exact"]] < -1  # both tiled: an exact repeat
    assert f[3, t["tiled_frac"]] < 0.1 and f[2, t["tiled_frac"]] > 0.25
    free = [t[n] for n in A.TEMPO if A.TEMPO.index(n) not in A.TEMPO_FREE]
    assert np.all(f0[:, free] == 0)  # no declared tempo: nothing to compare with


def test_half_and_double_time_are_no_error():
    fe = A.Features().eval()
    t = {n: A.N_FEATURES - len(A.TEMPO) + k for k, n in enumerate(A.TEMPO)}
    x = torch.from_numpy(np.stack([np.resize(_beats(8), N)] * 3))  # 120 BPM, declared 120, 60 and 240
    warped = torch.from_numpy(np.resize(D.warp(_beats(8), np.random.default_rng(3)), N))[None]
    with torch.no_grad():
        f = fe(x, torch.tensor([120.0, 60.0, 240.0])).numpy()
        fw = fe(torch.cat([warped] * 3), torch.tensor([120.0, 60.0, 240.0])).numpy()
    gaps = [t["beat_gap"], t["beat2_gap"], t["bar_gap"]]
    for i in range(3):  # some reading (the declared, its half, its double) fits; none fits another speed
        assert f[i][:, gaps].max(1).min() < 0.15
        assert fw[i][:, gaps].max(1).min() > 0.5


def test_tails_do_not_break_a_point_mass_on_a_rounding():
    train = np.concatenate([np.full(600, np.log(1e-5), np.float32), np.linspace(-11, -2, 400, dtype=np.float32)])
    tails = A.Tails(A.reference(train[:, None]))
    v = np.float32(np.log(1e-5))
    x = np.array([[v], [np.nextafter(v, np.float32(0))], [np.nextafter(v, np.float32(-20))]], np.float32)
    t = A.apply_tails(tails, x)
    np.testing.assert_allclose(t[1:], t[:1].repeat(2, 0))  # one rounding either way: the same tail
    assert t[0, 0] < 1.0  # inside the mass: no tail at all


def test_tuning_hears_a_bass_off_concert_pitch():
    fe = A.Features().eval()
    i = 3 * A.N_MELS + A.SCALARS.index("tune_dev")
    t = np.arange(N) / 22050
    notes = [55.0, 73.42, 82.41, 55.0]  # A1, D2, E2, A1: one a second

    def bass(cents):
        f = np.repeat(np.array(notes) * 2 ** (cents / 1200), N // 4 + 1)[:N]
        ph = 2 * np.pi * np.cumsum(f) / 22050
        return (0.4 * np.sin(ph) + 0.2 * np.sin(2 * ph) + 0.1 * np.sin(3 * ph)).astype(np.float32)
    x = torch.from_numpy(np.stack([bass(0), bass(35), bass(-25), (np.random.default_rng(0).standard_normal(N) * 0.1).astype(np.float32)]))
    with torch.no_grad():
        f = fe(x, torch.zeros(4)).numpy()[:, 0]
    assert f[0, i] < 5 and 25 < f[1, i] < 45 and 15 < f[2, i] < 35  # cents off A = 440 Hz
    assert f[0, i + 1] > 0.3 and f[0, i + 1] > 3 * f[3, i + 1]  # a tone is concentrated, noise is not


def test_tails_grow_beyond_the_training_range():
    rng = np.random.default_rng(0)
    tails = A.Tails(A.reference(rng.standard_normal((5000, 1)).astype(np.float32)))
    t = A.apply_tails(tails, np.array([[3.0], [6.0], [12.0], [-12.0], [50.0]], np.float32))[:, 0]
    assert t[0] < t[1] < t[2] < t[4]  # further out is more unusual, without a ceiling at the last training value
    assert t[3] > t[1]  # below the range as well as above


def test_loop_windows_cut_as_go_does():
    """audio.Windows: one tiled window for a short loop; a long one a window per hop of whole
    bars at its tempo (one window without a tempo), wrapping past the end; a start within 1 %
    of a hop of the end does not count; at most MAX_WINDOWS."""
    x = np.arange(A.SR * 10, dtype=np.float32) / (A.SR * 10)  # 10 s, every sample distinct
    assert A.hop_seconds(120.0) == pytest.approx(4.0)  # two bars
    assert A.hop_seconds(100.0) == pytest.approx(2.4)  # one bar fits, two do not
    assert A.hop_seconds(0.0) == A.WINDOW_S and A.hop_seconds(30.0) == A.WINDOW_S and A.hop_seconds(50.0) == A.WINDOW_S
    w = A.loop_windows(x, 120.0)
    assert len(w) == 3 and all(len(v) == A.N for v in w)
    np.testing.assert_array_equal(w[0], x[:A.N])
    np.testing.assert_array_equal(w[1], x[A.N:2 * A.N])
    np.testing.assert_array_equal(w[2], np.r_[x[2 * A.N:], x[:3 * A.N - len(x)]])  # wraps to the start
    assert len(A.loop_windows(x, 100.0)) == 5  # ceil(10 / 2.4)
    assert len(A.loop_windows(x[:A.N * 2 + A.N // 1000], 0.0)) == 2  # 0.1 % of a hop past two: not a start
    assert len(A.loop_windows(np.tile(x, 8), 0.0)) == A.MAX_WINDOWS
    short = x[:A.SR]
    assert len(A.loop_windows(short, 120.0)) == 1
    np.testing.assert_array_equal(A.loop_windows(short, 120.0)[0], A.window(short))


def test_aggregate_first_and_max():
    s = np.array([1.0, 5.0, 2.0, 0.5, 3.0, 3.5])
    np.testing.assert_array_equal(A.aggregate(s, [2, 1, 3], "first"), [1.0, 2.0, 0.5])
    np.testing.assert_array_equal(A.aggregate(s, [2, 1, 3], "max"), [5.0, 2.0, 3.5])
    with pytest.raises(ValueError, match="first, max"):
        A.aggregate(s, [6], "mean")


def test_tails_graph_sums_the_largest_tails_of_the_selected_features():
    fe = A.Features().eval()
    x = np.stack([np.resize(_loop(seed=s), N) for s in range(2)])
    bpm = torch.tensor([[120.0], [0.0]])
    sel = [3, 10, 200, A.N_FEATURES - 1]
    p = np.ascontiguousarray(np.eye(A.N_FEATURES, dtype=np.float32)[:, sel])
    with torch.no_grad():
        f = fe(torch.from_numpy(x), bpm[:, 0], torch.tensor([4.0, 4.3])).numpy() @ p  # [2, octaves, 4]
    ref = A.reference(np.concatenate([f.reshape(-1, 4), f.reshape(-1, 4) + 1, f.reshape(-1, 4) - 1]))
    g = A.TailsGraph(p, ref, 2.0, 4.0, k=2).eval()
    with torch.no_grad():
        dur = torch.tensor([[4.0], [4.3]])
        a, b = g(torch.from_numpy(x), bpm, dur).numpy(), g(torch.from_numpy(x), bpm, dur).numpy()
    np.testing.assert_array_equal(a, b)
    t = A.apply_tails(A.Tails(ref), f.reshape(-1, 4)).reshape(2, len(A.OCTAVES), 4)
    raw = np.sort(t, 2)[:, :, -2:].sum(2).min(1)  # the two largest, at the best reading
    np.testing.assert_allclose(a, raw / np.array([2.0, 4.0]), rtol=1e-5)


def test_select_keeps_the_features_that_hear_damage():
    """Greedy selection on val: a feature that only the damaged loops move is chosen first, one
    that is noise in clean and damaged loops alike is never chosen."""
    rng = np.random.default_rng(0)
    d, n = 6, 200

    def loops(shift):
        z = rng.exponential(1.0, (n, 1, d)).astype(np.float32)
        for j, s in shift.items():
            z[:, :, j] += s
        return z, np.ones(n, np.int64)
    kinds = {k: loops({k_i % 3: 4.0}) for k_i, k in enumerate(D.KINDS)}  # each kind moves feature 0, 1 or 2
    sets = {cond: {"clean": loops({}), **kinds} for cond in A.CONDITIONS}
    prep = {"mu": np.zeros(d, np.float32), "sd": np.ones(d, np.float32), "sets": {"val": sets}}
    sel, trace = A.select(prep, [f"f{j}" for j in range(d)], log=lambda *a: None)
    assert sorted(sel[:3]) == [0, 1, 2]
    assert all(j < 3 for j in sel)  # features 3-5 hear nothing
    assert trace[0]["feature"] in ("f0", "f1", "f2") and trace[-1]["val"] >= trace[0]["val"]


def test_own_tempo_hears_a_cut_off_the_beat_without_a_declared_tempo():
    fe = A.Features().eval()
    t = {n: A.N_FEATURES - len(A.TEMPO) + k for k, n in enumerate(A.TEMPO)}
    bar = _beats(4)  # one bar at 120 BPM, tiled twice in the window
    loops = [bar, _beats(8), bar[:int(2.6 * 11025)], _beats(8)[:int(5.4 * 11025)]]  # two clean, two cut off the beat
    x = torch.from_numpy(np.stack([np.resize(v, N) for v in loops]))
    with torch.no_grad():
        f = fe(x, torch.zeros(4)).numpy()[:, 0]  # no declared tempo; the reading at the own tempo itself
        own = A.own_tempo(A.lag_diffs(fe.log_mel(x[:1])[1]))
    assert abs(float(own[0]) - 120.0) < 2.0  # a tiled bar of 2 s: 120 BPM
    for clean in (0, 1):
        assert f[clean, t["own_beat_ac"]] > 0.4 and f[clean, t["own_beat_gap"]] < 0.1
    for cut in (2, 3):
        assert f[cut, t["own_beat_ac"]] < 0.1 and f[cut, t["own_beat_gap"]] > 0.25
    # a window that is no tiled loop has no own tempo: every own reading 0
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal((1, N)).astype(np.float32) * 0.1)
    with torch.no_grad():
        fn = fe(noise, torch.zeros(1)).numpy()[0]
    assert np.all(fn[:, [t["own_" + n] for n in A.GRID]] == 0)


def test_length_fit_hears_a_length_off_whole_beats_at_a_whole_number_tempo():
    t = {n: k for k, n in enumerate(A.LENGTH)}
    sec = lambda beats, bpm: 60.0 * beats / bpm
    clean = [sec(8, 120), sec(4, 136), sec(16, 174), sec(32, 97), sec(2, 80)]  # whole beats at whole tempi
    f = A.length_fit(torch.tensor(clean), torch.zeros(len(clean))).numpy()
    np.testing.assert_array_equal(f, 0)
    # within the tolerance (a resampled export) still fits; unknown (0) says nothing
    f = A.length_fit(torch.tensor([4.001, 3.9995, 0.0]), torch.zeros(3)).numpy()
    np.testing.assert_array_equal(f, 0)
    # a 4 s loop played 7 % slow (4.301 s) and one trimmed to 2.9 s: no whole-number tempo gives them
    f = A.length_fit(torch.tensor([4.0 / 0.93, 2.9]), torch.zeros(2)).numpy()
    assert np.all(f[:, t["len_off"]] > 5.0) and np.all(f[:, t["len_beat_off"]] == 0)  # no declared tempo
    # with a declared tempo: whole half beats of it fit (a name that says 87 for a loop at 174
    # too), anything else is off by its distance in milliseconds beyond the tolerance
    f = A.length_fit(torch.tensor([8.0, 8.0, sec(4, 174), 8.0]), torch.tensor([120.0, 60.0, 87.0, 87.0])).numpy()
    np.testing.assert_array_equal(f[:3, t["len_beat_off"]], 0)
    half = 30.0 / 87.0
    want = abs(8.0 - round(8.0 / half) * half) * 1000 - A.LEN_TOL_MS
    assert abs(float(f[3, t["len_beat_off"]]) - want) < 1e-2
    # the embedding carries them last, and a loop of unknown length is as one of length 0
    fe = A.Features().eval()
    x = torch.from_numpy(np.resize(_beats(8), N)[None])
    with torch.no_grad():
        z0, zn, zw = fe(x, torch.zeros(1)).numpy(), fe(x, torch.zeros(1), torch.zeros(1)).numpy(), fe(x, torch.zeros(1), torch.tensor([4.3])).numpy()
    np.testing.assert_array_equal(z0, zn)
    base = A.N_FEATURES - len(A.TEMPO)
    assert np.all(zw[0, :, base + A.TEMPO.index("len_off")] > 5.0)
    np.testing.assert_array_equal(zw[0, :, :base + A.TEMPO.index("len_off")], z0[0, :, :base + A.TEMPO.index("len_off")])
    assert A.TEMPO.index("len_off") in A.TEMPO_FREE and A.TEMPO.index("len_beat_off") not in A.TEMPO_FREE


def test_features_compute_only_the_columns_asked_for_with_the_same_values():
    x = torch.from_numpy(np.stack([np.resize(_loop(seed=s), N) for s in range(3)]))
    bpm, dur = torch.tensor([120.0, 0.0, 87.5]), torch.tensor([4.0, 3.1, 0.0])
    with torch.no_grad():
        full = A.Features().eval()(x, bpm, dur).numpy()
        rng = np.random.default_rng(0)
        for need in ([0], [A.N_FEATURES - 1], list(range(A.N_FEATURES)),
                     [3 * A.N_MELS + A.SCALARS.index("hold"), A.N_BASE + A.TEMPO.index("own_beat_gap")],
                     *[sorted(rng.choice(A.N_FEATURES, k, replace=False)) for k in (5, 17, 60)]):
            got = A.Features(need).eval()(x, bpm, dur).numpy()
            np.testing.assert_array_equal(got, full[..., need])  # the same values, bit for bit
    for bad in ([], [A.N_FEATURES], [-1], [4, 4]):
        with pytest.raises(ValueError, match="distinct columns"):
            A.Features(bad)


def test_an_exported_graph_computes_lag_diffs_in_one_loop():
    import onnx
    import onnxruntime as ort
    from loopmatch_train.export import _export

    class Lags(torch.nn.Module):
        def forward(self, lm):
            return A.lag_diffs(lm) * 2.0

    path = os.path.join(tempfile.mkdtemp(), "lags.onnx")
    _export(Lags(), torch.zeros(2, A.N_MELS, 172), path, "lm", "d", custom_opsets={A.LAG_DOMAIN: 1})
    assert any(n.domain == A.LAG_DOMAIN for n in onnx.load(path).graph.node)
    m = A.loop_lag_diffs(onnx.load(path))
    onnx.checker.check_model(m)
    assert not any(n.domain == A.LAG_DOMAIN for n in m.graph.node) and [n.op_type for n in m.graph.node].count("Loop") == 1
    assert all(o.domain != A.LAG_DOMAIN for o in m.opset_import)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    for b in (1, 3):
        lm = torch.randn(b, A.N_MELS, 172, generator=torch.Generator().manual_seed(b))
        got = s.run(None, {"lm": lm.numpy()})[0]
        want = A.lag_diffs(lm).numpy() * 2.0
        assert got.shape == (b, A.EXACT_LAGS[1] - A.EXACT_LAGS[0])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_an_exported_tails_graph_scores_as_torch_does():
    import onnx
    import onnxruntime as ort
    from loopmatch_train.export import _export

    names = A.feature_names(8)
    sel = [names.index(n) for n in ("hold", "own_beat_gap", "len_off", "spread_16-23", "loc_spike1", "tune_conc")]
    p = A.pooling(8)
    x = torch.from_numpy(np.stack([np.resize(_loop(seed=s), N) for s in range(3)]))
    bpm, dur = torch.tensor([[120.0], [0.0], [87.5]]), torch.tensor([[4.0], [3.1], [0.0]])
    with torch.no_grad():
        f = A.Features().eval()(x, bpm[:, 0], dur[:, 0]).numpy() @ p
    ref = A.reference(np.concatenate([f[:, 0], f[:, 0] + 1, f[:, 0] - 1]))
    g = A.tails_graph(p, ref, sel, {"tempo": 2.0, "no_tempo": 4.0}).eval()
    assert len(g.fe.need) < 20  # the graph computes what the six features read, not all 245 columns
    path = os.path.join(tempfile.mkdtemp(), "tails.onnx")
    _export(g, (torch.zeros(2, N), torch.full((2, 1), 120.0), torch.full((2, 1), 4.0)), path,
            ["audio", "bpm", "duration"], "score", custom_opsets={A.LAG_DOMAIN: 1})
    m = A.loop_lag_diffs(onnx.load(path))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    got = s.run(None, {"audio": x.numpy(), "bpm": bpm.numpy(), "duration": dur.numpy()})[0]
    with torch.no_grad():
        want = g(x, bpm, dur).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
