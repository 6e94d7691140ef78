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
