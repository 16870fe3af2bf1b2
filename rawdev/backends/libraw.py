"""The ``libraw`` runner (registered in :mod:`.specs`): LibRaw's own pipeline as a back-end, the reference every other back-end
is compared with.

It consumes the RAW file itself (``input_domain="raw_file"``): LibRaw decodes it, demosaics with
AHD (Hirakawa & Parks 2005, dcraw's implementation) and applies its own camera -> sRGB matrix, with
rawdev's white-balance gains and highlight mode passed in; the pipeline then applies rawdev's
exposure, curve and output space, as for every back-end. With the defaults the result equals
rawpy's ``postprocess(use_camera_wb=True, gamma=(2.4, 12.92), no_auto_bright=True,
output_color=sRGB)`` to rounding (tests/test_libraw_backend.py).

Runner contract::

    run = get("libraw").build()
    lin = run(path, wb=(r, g, b, g2), highlight_mode=0)  # (H, W, 3) float32 linear sRGB, unrotated

References:
    Hirakawa2005: K. Hirakawa, T. W. Parks. "Adaptive homogeneity-directed demosaicing algorithm".
    IEEE Transactions on Image Processing 14(3), 2005.
"""

from __future__ import annotations

import functools

from ..io.raw import render_libraw

__all__ = ["_build_libraw"]


def _build_libraw(**_: object):
    """LibRaw's render of a file as linear sRGB (clip point 1.0); device options do not apply."""
    return functools.partial(render_libraw, demosaic="AHD", output="srgb_linear")
