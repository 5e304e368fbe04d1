"""The compiled upscale is torch's bilinear resize (half-pixel centres) to float32 rounding."""

import numpy as np
import pytest
import torch

from dream_gym.envs.upscale import upscale


def _torch_upscale(frames: torch.Tensor, hw: tuple[int, int], rows: tuple[int, int] | None):
    top, bottom = rows if rows is not None else (0, hw[0])
    x = torch.nn.functional.interpolate(frames.movedim(-1, 1).float(), size=(bottom - top, hw[1]),
                                        mode="bilinear", align_corners=False)
    out = np.zeros((len(frames), *hw, 3), np.uint8)
    out[:, top:bottom] = x.round().clamp(0, 255).to(torch.uint8).movedim(1, -1).numpy()
    return out


@pytest.mark.parametrize(("hw", "rows"), [((240, 320), None), ((96, 96), (0, 84)),
                                          ((48, 40), None)])
def test_upscale_matches_torch_bilinear(hw, rows):
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), np.uint8))
    ours, ref = upscale(frames, hw, rows), _torch_upscale(frames, hw, rows)
    assert ours.shape == ref.shape == (5, *hw, 3)
    diff = np.abs(ours.astype(int) - ref)
    # summation order differs, so a value near .5 may round the other way, and only such
    assert diff.max() <= 1 and (diff > 0).mean() < 0.005
    if rows is not None:
        assert not ours[:, rows[1]:].any(), "rows the model does not see stay black"
