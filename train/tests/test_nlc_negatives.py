"""Neural Loop Combiner's negatives built from the right loop (numpy only, as CI runs it)."""
import numpy as np

from loopmatch_train.sampling import FPS, FRAMES, beat_frames, rearrange_negative, reverse_negative, shift_negative


def clicks(bpm, n=FRAMES, bands=8):
    """A log-mel-like [bands, n] with an onset on every beat."""
    x = np.zeros((bands, n), np.float32)
    beat = beat_frames(bpm)
    for i in range(int(n / beat) + 1):
        f = int(round(i * beat))
        if f < n:
            x[:, f] = 1.0 + i  # every beat distinguishable
    return x


def onsets(x):
    return set(np.where(x[0] > 0)[0].tolist())


def test_beat_frames_at_120_bpm():
    assert abs(beat_frames(120) - FPS / 2) < 1e-9


def test_shift_moves_the_loop_off_the_grid():
    rng = np.random.default_rng(0)
    for bpm in (70, 100, 128, 174):
        x = clicks(bpm)
        beat = beat_frames(bpm)
        for _ in range(20):
            y = shift_negative(x, bpm, rng)
            shifts = [s for s in range(1, FRAMES) if np.array_equal(y, np.roll(x, s, -1))]
            assert len(shifts) == 1
            phase = (shifts[0] / beat) % 1.0
            # a quarter to three quarters of a beat off the grid (rounding to frames: 1 frame)
            assert 0.25 - 1.0 / beat <= phase <= 0.75 + 1.0 / beat, (bpm, shifts[0], phase)


def test_reverse_plays_backwards():
    x = np.arange(2 * FRAMES, dtype=np.float32).reshape(2, FRAMES)
    y = reverse_negative(x)
    assert np.array_equal(y[:, 0], x[:, -1]) and np.array_equal(y[:, -1], x[:, 0])


def test_rearrange_reorders_whole_beats():
    rng = np.random.default_rng(1)
    for bpm in (90, 120, 140):
        x = clicks(bpm)
        y = rearrange_negative(x, bpm, rng)
        assert y.shape == x.shape
        assert not np.array_equal(x, y)
        # every beat's onset value is still there once: beats were moved, not changed
        assert sorted(v for v in y[0] if v > 0) == sorted(v for v in x[0] if v > 0)


def test_rearrange_of_a_window_shorter_than_two_beats_falls_back_to_a_shift():
    rng = np.random.default_rng(2)
    x = clicks(60, n=40)
    y = rearrange_negative(x, 60, rng)
    assert y.shape == x.shape and not np.array_equal(x, y)
