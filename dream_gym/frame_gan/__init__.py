"""Atari frame GAN (seeds 001, 004): a DCGAN that learns the look of several games' frames."""
