"""Atari frame GAN (DCGAN on live ALE frames): a generator that learns the look of several
games' frames. It draws frames but has no dynamics, so it is not a dream."""

from dream_gym.frame_gan.load import load_generator, load_quality_meter, sample

__all__ = ["load_generator", "load_quality_meter", "sample"]
