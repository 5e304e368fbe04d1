"""GameGAN (Kim et al. 2020): a dynamics engine, a memory of the world and a renderer that
separates the static scene from moving things, trained adversarially."""
