"""Window rule, and (where fluidsynth and the sound sets are installed) rendering determinism."""
import os
import shutil

import numpy as np
import pytest

from loopmatch_train.audio_io import window


def test_window_tiles_and_cuts():
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(window(x, 7), [0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(window(np.arange(10, dtype=np.float32), 4), [0, 1, 2, 3])
    assert window(np.ones(5, np.float32), 5).shape == (5,)


HAVE_SYNTH = shutil.which("fluidsynth") and os.path.exists("/usr/share/sounds/sf2/FluidR3_GM.sf2") \
    and os.path.isdir("/usr/share/hydrogen/data/drumkits")


@pytest.mark.skipif(not HAVE_SYNTH, reason="fluidsynth / FluidR3_GM / hydrogen-drumkits not installed (make models installs them)")
def test_render_is_deterministic(tmp_path):
    from loopmatch_train import corpus as C, render as R
    import soundfile as sf
    packs = [C.make_pack(1234, 3), C.make_pack(1234, 4)]
    split = {p.name: "train" for p in packs}
    rows_a = R.render_corpus(packs, split, str(tmp_path / "a"), workers=1)
    rows_b = R.render_corpus(packs, split, str(tmp_path / "b"), workers=1)
    assert rows_a == rows_b
    for r in rows_a:
        a, sra = sf.read(tmp_path / "a" / r["path"], dtype="int16")
        b, _ = sf.read(tmp_path / "b" / r["path"], dtype="int16")
        assert sra == 22050
        assert len(a) == r["samples"]
        np.testing.assert_array_equal(a, b)
        assert np.abs(a).max() > 1000  # not silent
