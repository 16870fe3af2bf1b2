"""Training of rawdev's learned back-ends.

* :mod:`rawdev.train.synthesis`: synthetic RAW data from sRGB photos (Brooks2019 unprocessing, random
  cameras, shot + read noise), shared by every recipe.
* :mod:`rawdev.train.data`: photo loading, seeded patch sampling, patch packs.
* :mod:`rawdev.train.loop`: the seeded, exactly resumable training loop.
* :mod:`rawdev.train.jdd`: the ``jdd-noise`` recipe (noise-aware demosaicnet fine-tune).

Nothing here imports rawpy or other RAW readers, so training runs on machines that have only torch,
numpy, pillow and safetensors. Import the submodules you need; this package imports none of them.
"""

__all__: list[str] = []
