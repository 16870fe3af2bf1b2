"""Every back-end's :class:`~.registry.BackendSpec`, declared without importing torch or any model.

``rawdev backends``, ``rawdev info`` and the CLI's argument checks read specs only; they must not pay
for ``import torch`` (about 1.3 s on a quiet 2-core machine, docs/benchmarks.md "Start-up"). So a
spec's ``build`` is a :class:`LazyBuild`: a named function in a runner module, imported on the first
build. The runner modules (:mod:`.classical`, :mod:`.learned`, :mod:`.isp`) hold the torch code and
import their weight records from here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .registry import DEFAULT_BACKEND, LIBRAW, BackendSpec, WeightsSpec, register

__all__ = [
    "LazyBuild",
    "JDD_BAYER",
    "JDD_XTRANS",
    "JDD_NOISE",
    "JDD_NOISE_SHA256",
    "JDD_NOISE_FADE",
    "JDD_MARGIN",
    "JDD_XTRANS_MARGIN",
    "ISP_FILES",
    "ISP_SHA256",
    "ISP_WEIGHTS",
    "ISP_MARGIN",
    "ISP_OVERLAP",
    "STUDENT_MARGIN",
    "JDD_FAST",
    "JDD_FAST_INT8",
]


@dataclass(frozen=True)
class LazyBuild:
    """``build(**options)`` of a spec: imports ``module`` on the first call and runs ``function(*args,
    **options)`` from it (``functools.partial`` would need the function, hence the import, up front)."""

    module: str
    function: str
    args: tuple = ()

    def __call__(self, **options):
        return getattr(importlib.import_module(self.module), self.function)(*self.args, **options)


# -- classical demosaickers -----------------------------------------------------------------------
_CLASSICAL = "rawdev.backends.classical"

#: name: (margin, reference, stages.demosaic.DemosaicMethod member, description)
_CLASSICAL_METHODS = {
    "bilinear": (2, "bilinear", "BILINEAR", "Bilinear interpolation of each colour plane (the field's baseline).", "torch"),
    "malvar": (4, "Malvar2004", "MALVAR2004", "Malvar, He & Cutler 2004: gradient-corrected linear 5x5 filters.",
               "torch"),
    # Menon has a numpy (OpenCV) executor: its develops import no torch.
    "menon": (16, "Menon2007", "MENON2007",
              "Menon, Andriani & Calvagno 2007 (DDFAPD): directional filtering with a posteriori decision.", "numpy"),
}
for _name, (_margin, _ref, _method, _description, _arrays) in _CLASSICAL_METHODS.items():
    register(BackendSpec(
        name=_name,
        kind="classical",
        description=_description,
        margin=_margin,
        arrays=_arrays,
        build=LazyBuild(_CLASSICAL, "_build_classical", (_name, _method)),
        reference=_ref,
    ))
# The same demosaickers run on the sRGB-encoded mosaic (the pipeline encodes before, decodes after).
# Colour-difference interpolation assumes R - G and B - G vary slowly; under shading a surface keeps
# its channel *ratios*, which a log-like encoding turns into differences. Measured on the round-trip
# DNGs (docs/benchmarks.md), clean: Menon +4.1 / +3.0 dB and Malvar +2.7 / +2.9 dB (Kodak24 / McMaster)
# over linear light.
for _name in ("malvar", "menon"):
    _margin, _ref, _method, _description, _arrays = _CLASSICAL_METHODS[_name]
    register(BackendSpec(
        name=f"{_name}-srgb",
        kind="classical",
        description=f"{_name} on the sRGB-encoded mosaic (colour differences of encoded values), then noise "
                    "reduction where the file's noise model says it shows (--denoise)."
                    + (" Default." if f"{_name}-srgb" == DEFAULT_BACKEND else ""),
        margin=_margin,
        input_domain="mosaic_srgb_wb",
        arrays=_arrays,
        build=LazyBuild(_CLASSICAL, "_build_classical", (f"{_name}-srgb", _method)),
        reference=_ref,
    ))

# -- Gharbi2016 demosaicnet: jdd, jdd-noise -------------------------------------------------------
JDD_MARGIN = 32  # >= the 31-pixel receptive-field radius; even, so the Bayer parity is simple
#: The X-Trans network's valid border (models.gharbi2016.XTRANS_BORDER, which imports torch; a test
#: checks they agree): its tiles need no more context.
JDD_XTRANS_MARGIN = 12
JDD_BAYER = WeightsSpec(
    file="pkg:demosaicnet/demosaicnet/data/bayer.pth",
    sha256="a90f45c34b89fea3faf49060687839a7d191d302f597a302b31d1bbc021ff7d8",
    license="MIT",
    source="PyPI demosaicnet==0.0.14, data/bayer.pth (Gharbi et al. 2016, noise-free Bayer model)",
)
JDD_XTRANS = WeightsSpec(
    file="pkg:demosaicnet/demosaicnet/data/xtrans.pth",
    sha256="3759a13296fecebae83a36a8f0c3890d8a2f7d33e5f8149ed9b76a70f8285bc7",
    license="MIT",
    source="PyPI demosaicnet==0.0.14, data/xtrans.pth (Gharbi et al. 2016, X-Trans model)",
)
#: sha256 of weights/jdd_noise.safetensors (see weights/jdd_noise.md); re-record it after re-training.
JDD_NOISE_SHA256 = "f4b817677bfa0be28d5eca3c607126960c10e1760ccea7cd541ddf72b9b8c9fa"
#: jdd-noise is the noise-free network up to the first noise std and the fine-tuned one from the
#: second (sRGB-encoded [0, 1] units), mixed linearly between. The clean end sits above what the
#: data-driven estimate reads on clean Kodak24 / McMaster files (the photos' own grain and
#: quantisation: 1.0-2.95/255), so an estimated clean file gets the better demosaicker unmixed;
#: the noisy end below shot 1e-3 (about 5.1-5.7/255), where the fine-tune is 3 dB better
#: (docs/noise.md).
JDD_NOISE_FADE = (3.0 / 255, 4.5 / 255)
JDD_NOISE = WeightsSpec(
    file="jdd_noise.safetensors",
    sha256=JDD_NOISE_SHA256,
    license="MIT",
    card="jdd_noise.md",
    source="fine-tuned by rawdev's training command from demosaicnet 0.0.14 data/bayer.pth "
    "(BayerDemosaicNet.from_pretrained_noise_free)",
)
_LEARNED = "rawdev.backends.learned"

register(BackendSpec(
    name="jdd",
    kind="learned",
    description="Gharbi et al. 2016 deep joint demosaicking (demosaicnet released weights, noise-free); "
    "Bayer and X-Trans. Works on sRGB-encoded white-balanced data; output in the same encoding.",
    replaces=("demosaic",),
    cfa_types=frozenset({"bayer", "xtrans"}),
    input_domain="mosaic_srgb_wb",
    # The runner's output keeps the input's sRGB encoding; once decoded it is linear camera RGB.
    output_domain="linear_camera_wb",
    native_pattern="GRBG",
    tile_multiple=2,
    margin=JDD_MARGIN,
    xtrans_margin=JDD_XTRANS_MARGIN,
    tile_exact=True,
    uses_noise=False,
    build=LazyBuild(_LEARNED, "_build_jdd", (False,)),
    weights={"bayer": JDD_BAYER, "xtrans": JDD_XTRANS},
    reference="Gharbi2016",
))
register(BackendSpec(
    name="jdd-noise",
    kind="learned",
    description="Gharbi et al. 2016 noise-aware joint demosaicking and denoising (Bayer): demosaicnet "
    "fine-tuned with a noise-level input plane (sigma in the sRGB-encoded domain).",
    # Denoises jointly, but slots into the pipeline where demosaicking happens (the pipeline treats any
    # other ``replaces`` as an end-to-end ISP); ``uses_noise`` tells it to pass the noise level.
    replaces=("demosaic",),
    cfa_types=frozenset({"bayer"}),
    input_domain="mosaic_srgb_wb",
    output_domain="linear_camera_wb",
    native_pattern="GRBG",
    tile_multiple=2,
    margin=JDD_MARGIN,
    tile_exact=True,
    uses_noise=True,
    build=LazyBuild(_LEARNED, "_build_jdd", (True,)),
    weights={"bayer": JDD_NOISE},
    reference="Gharbi2016",
))

# -- learned ISPs: pynet, pynet-ca, cameranet, cameranet-fast -------------------------------------
ISP_MARGIN = 64  # raw pixels of context per tile side; a multiple of 16 keeps windows 32-aligned
ISP_OVERLAP = 48  # half-width of the cross-fade between neighbouring tiles
#: sha256 of each weight file (re-record after re-training; see the model cards).
ISP_SHA256 = {
    "pynet": "04b5cc9a6bd7364d965579b0765c06dbdb0891e69f20b230c2a2078b5d1a25a0",
    "pynet-ca": "b853aadfffe12472459d5728a399db18322dc66cfe7b67441b882dc8a7f4c759",
    "cameranet": "66bc1646c1d873193bd909cad0daf84ff8ffa8e4a42da6244717a423c7d9f816",
    "cameranet-fast": "b80663ef34b9dda1b384f7a32e5a0423f97aef2630bf7c58181e9193020f17c3",
}
ISP_FILES = {"pynet": "pynet.safetensors", "pynet-ca": "pynet_ca.safetensors", "cameranet": "cameranet.safetensors",
             "cameranet-fast": "cameranet_fast.safetensors"}
#: Compressed learned ISPs: student -> (the teacher it is distilled from, the cheaper start it refines).
ISP_STUDENTS = {"cameranet-fast": ("cameranet", "jdd-fast-int8")}
ISP_WEIGHTS = {
    name: WeightsSpec(file=ISP_FILES[name], sha256=ISP_SHA256[name], license="MIT",
                      card=ISP_FILES[name].replace(".safetensors", ".md"),
                      source=f"trained by `rawdev train {name}` (see the model card)")
    for name in ISP_FILES
}
_ISP_DESCRIPTIONS = {
    "pynet": "PyNET (Ignatov et al. 2020) learned ISP, reduced width, trained here on unprocessed photos as a "
    "residual over jdd-noise; mosaic + noise level -> display sRGB through the file's own colour matrix.",
    "pynet-ca": "PyNET-CA (Kim et al. 2020): PyNET with channel attention and a sub-pixel head; trained here.",
    "cameranet": "CameraNet (Liang et al. 2019) two-stage learned ISP (Restore-Net + Enhance-Net), trained here.",
    "cameranet-fast": "cameranet compressed: half the width over the int8 jdd-fast student instead of jdd-noise, "
    "distilled from cameranet (GAN Compression, Li et al. 2020).",
}
for _name in ISP_FILES:
    register(BackendSpec(
        name=_name,
        kind="learned",
        description=_ISP_DESCRIPTIONS[_name],
        replaces=("demosaic", "colour", "tone"),
        cfa_types=frozenset({"bayer"}),
        input_domain="mosaic_linear_wb",
        output_domain="srgb_display",
        native_pattern="RGGB",
        tile_multiple=2,
        margin=ISP_MARGIN,
        tile_exact=False,
        tile_overlap=ISP_OVERLAP,
        uses_noise=True,
        build=LazyBuild("rawdev.backends.isp", "_build_isp", (_name,)),
        weights={"bayer": ISP_WEIGHTS[_name]},
        reference={"pynet": "Ignatov2020", "pynet-ca": "Kim2020", "cameranet": "Liang2019",
                   "cameranet-fast": "Liang2019"}[_name],
    ))

# -- LibRaw's own pipeline: the reference ---------------------------------------------------------
register(BackendSpec(
    name=LIBRAW,
    kind="classical",
    description="LibRaw's own pipeline: AHD demosaic (Hirakawa & Parks 2005) and LibRaw's colour matrix, "
    "with rawdev's white balance, exposure and curve. The reference.",
    replaces=("demosaic", "colour"),
    cfa_types=frozenset({"bayer", "xtrans"}),
    input_domain="raw_file",
    output_domain="linear_srgb",
    tile_exact=False,  # LibRaw renders whole files: never tiled
    build=LazyBuild("rawdev.backends.libraw", "_build_libraw"),
    reference="Hirakawa2005",
))

# -- compressed students of jdd-noise: jdd-fast, jdd-fast-int8 ------------------------------------
STUDENT_MARGIN = 14  # the shipped student has 6 half-resolution layers: border 2 * 6 + 1 = 13, made even
#: sha256 of the student's files (written by `rawdev compress export` / `rawdev compress int8`; see the
#: model card weights/jdd_fast.md); re-record them after re-training.
JDD_FAST = WeightsSpec(
    file="jdd_fast.safetensors",
    sha256="3a8e2c2bbf49bc017bb509e0c1acc4d66d58397f886d47e29c7628cdbb62b05b",
    license="MIT",
    card="jdd_fast.md",
    source="distilled from jdd-noise by `rawdev compress distill` / `rawdev compress export` (see the model card)",
)
JDD_FAST_INT8 = WeightsSpec(
    file="jdd_fast_int8.safetensors",
    sha256="5af4c410344cbfeb18054652b580cb5deb5bb223d606f941fdee861184795da3",
    license="MIT",
    card="jdd_fast.md",
    source="activation ranges of jdd-fast's trunk calibrated by `rawdev compress int8` (see the model card)",
)
for _name, _ranges, _what in (("jdd-fast", None, "float32"), ("jdd-fast-int8", JDD_FAST_INT8, "int8 trunk, CPU")):
    register(BackendSpec(
        name=_name,
        kind="learned",
        description=f"jdd-noise compressed (GAN Compression distillation into a 6-layer student over a Menon2007 "
        f"base; {_what}): noise-aware joint demosaicking and denoising, Bayer. See weights/jdd_fast.md.",
        replaces=("demosaic",),
        cfa_types=frozenset({"bayer"}),
        input_domain="mosaic_srgb_wb",
        output_domain="linear_camera_wb",
        native_pattern="GRBG",
        tile_multiple=2,
        margin=STUDENT_MARGIN,
        tile_exact=True,
        uses_noise=True,
        build=LazyBuild(_LEARNED, "_build_student", (_name, JDD_FAST, _ranges)),
        weights={"bayer": JDD_FAST} if _ranges is None else {"bayer": JDD_FAST, "int8-ranges": _ranges},
        reference="Li2020",
    ))
