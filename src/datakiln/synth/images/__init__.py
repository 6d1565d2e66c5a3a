"""Image synthesizers (torch extra): :class:`ConvVAE` and :class:`ConditionalGAN`.

Both follow the Synthesizer contract on image Datasets: ``fit(images, label="label")``,
``sample(n, conditions={"label": "cat"}, seed=0)`` → an Arrow table of PNG bytes and
labels that ``datakiln.io.image_folder.write_image_folder`` saves as an ImageFolder tree,
``save(path)`` / :func:`datakiln.synth.load` (weights as arrays in the ``.kiln`` model file).
"""

from datakiln.synth.images.convvae import ConvVAE
from datakiln.synth.images.gan import ConditionalGAN

__all__ = ["ConditionalGAN", "ConvVAE"]
