"""`dream-gym video`: a real episode beside the model's view of it and the open-loop dream."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest

from dream_gym.cli import main

pytestmark = pytest.mark.slow  # a real VizDoom episode


def test_video_panels_start_together_and_the_dream_drifts(tmp_path):
    out = tmp_path / "run.mp4"
    assert main(["video", "takecover", "--out", str(out), "--seed", "3",
                 "--max-frames", "120"]) == 0
    frames = np.stack(imageio.mimread(out)).astype(np.float32)
    assert frames.shape == (120, 256, 768, 3)
    real, seen, dream = frames[..., :256, :], frames[..., 256:512, :], frames[..., 512:, :]

    def mse(a, b):
        return float(((a - b) ** 2).mean())

    # one step after the shared first frame the dream shows what the model sees (measured:
    # 1.2, against 46 between the model's view and the real screen) ...
    assert mse(dream[0], seen[0]) < 0.1 * mse(seen[0], real[0])
    # ... and drifts from it as open-loop steps pile up (measured: 23 over the last 20)
    assert 4 * mse(dream[0], seen[0]) < mse(dream[-20:], seen[-20:])
