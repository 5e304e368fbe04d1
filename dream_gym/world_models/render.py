"""V's decoder for rendering: the function :meth:`ConvVAE.decode` computes, with forward
convolutions.

A stride-2 transposed convolution is four ordinary convolutions, one per output pixel
parity, each with every other tap of the kernel flipped; stacked as one convolution with 4x
the output channels and interleaved by ``pixel_shuffle``, it is the same map. oneDNN's
forward convolutions outrun its transposed ones at V's shapes: 1.4x to 1.8x in float32
and 2.0x in bfloat16 (the shipped TakeCover V, batches of 64 and 256, one thread; at a batch
of 1 in float32 they are slower). Rendering is all of a batched pixel dream's step, so this
is its speed (``benchmarks/throughput.py``, and its README for the figures).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dream_gym.world_models.vae import ConvVAE

__all__ = ["RenderDecoder"]


def _as_convolution(layer: nn.ConvTranspose2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (4 Cout, Cin, h, h), bias (4 Cout,)) of the convolution that, on the input
    padded by h - 1 and followed by ``pixel_shuffle(2)``, computes ``layer`` (stride 2, no
    padding; an odd kernel gets a zero tap appended and its output one row and column more,
    cropped by the caller)."""
    if layer.stride != (2, 2) or layer.padding != (0, 0) or layer.output_padding != (0, 0) \
            or layer.groups != 1 or layer.kernel_size[0] != layer.kernel_size[1]:
        raise ValueError(f"RenderDecoder handles square stride-2 deconvolutions without "
                         f"padding (V's), got {layer}.")
    w = layer.weight.detach()  # (Cin, Cout, k, k)
    if w.shape[-1] % 2:
        w = F.pad(w, (0, 1, 0, 1))
    cin, cout, k, _ = w.shape
    # out[2i + p] = sum_t x[i - t] w[2t + p]: a correlation over x padded by h - 1 with the
    # parity-p taps reversed
    parity = [w[:, :, py::2, px::2].flip(2, 3).transpose(0, 1) for py in (0, 1) for px in (0, 1)]
    weight = torch.stack(parity, 1).reshape(4 * cout, cin, k // 2, k // 2)
    return weight, layer.bias.detach().repeat_interleave(4)


class RenderDecoder(nn.Module):
    """A frozen copy of ``vae``'s decoder in ``dtype`` (float32 or bfloat16), z (B, z_dim)
    -> float32 (B, 3, S, S) in [0, 1], channels-last inside. Built once per V: changes to
    ``vae`` afterwards do not reach it."""

    def __init__(self, vae: ConvVAE, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        first, *rest = vae.decoder
        if not isinstance(first, nn.ConvTranspose2d):
            raise ValueError(f"V's decoder must start with a deconvolution, got {first}.")
        k = first.kernel_size
        # the first deconvolution sees a 1x1 input: a matrix multiply (as ConvVAE.decode)
        self.register_buffer("fc_weight", vae.fc.weight.detach().to(dtype))
        self.register_buffer("fc_bias", vae.fc.bias.detach().to(dtype))
        self.register_buffer("first_weight", first.weight.detach().flatten(1).to(dtype))
        self.register_buffer("first_bias", first.bias.detach().repeat_interleave(
            k[0] * k[1]).to(dtype))
        self.first_shape = (first.out_channels, *k)
        self.steps: list[tuple[str, int, int]] = []  # ("conv", index, kernel) | (activation)
        convs = 0
        for layer in rest:
            if isinstance(layer, nn.ConvTranspose2d):
                weight, bias = _as_convolution(layer)
                self.register_buffer(f"w{convs}", weight.to(dtype).contiguous(
                    memory_format=torch.channels_last))
                self.register_buffer(f"b{convs}", bias.to(dtype))
                self.steps.append(("conv", convs, layer.kernel_size[0]))
                convs += 1
            elif isinstance(layer, nn.ReLU | nn.Sigmoid):
                self.steps.append((type(layer).__name__, 0, 0))
            else:
                raise ValueError(f"RenderDecoder: unexpected layer {layer} in V's decoder.")
        self.dtype = dtype
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.addmm(self.first_bias, F.linear(z.to(self.dtype), self.fc_weight,
                                                  self.fc_bias), self.first_weight)
        x = x.view(-1, *self.first_shape).contiguous(memory_format=torch.channels_last)
        for kind, i, k in self.steps:
            if kind == "conv":
                side = (x.shape[-1] - 1) * 2 + k
                w = getattr(self, f"w{i}")
                x = F.pixel_shuffle(F.conv2d(x, w, getattr(self, f"b{i}"),
                                             padding=w.shape[-1] - 1), 2)[..., :side, :side]
            else:
                x = torch.relu(x) if kind == "ReLU" else torch.sigmoid(x)
        return x.float()
