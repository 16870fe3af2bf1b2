"""Embedded previews: the JPEG (or small bitmap) a camera stores inside its RAW file.

Extracting it (LibRaw's ``extract_thumb`` through rawpy) takes milliseconds and needs no decoding of
the sensor data, which makes it the fast path for contact sheets and culling. The preview is stored
in sensor orientation, like the RAW data; :func:`preview_image` and :func:`write_preview` apply the
RAW file's orientation to its pixels. A JPEG that needs no rotation is copied byte for byte.

This module imports rawpy only for its exception classes and ``extract_thumb``; opening files and
mapping LibRaw's errors follows :mod:`rawdev.io.raw`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import CorruptFileError, UnsupportedFileError
from .raw import LIBRAW_FLIP_TO_EXIF, _CaptureNativeStderr, open_rawpy
from .write import atomic_output, check_destination, write_image

__all__ = ["Preview", "read_preview", "preview_image", "load_preview", "write_preview", "check_preview_size", "MAX_PREVIEW_PIXELS"]

#: No camera stores a preview larger than its sensor; a header claiming more than this (or more
#: than the sensor) is damaged or crafted, and decoding it would take gigabytes (13000 x 13000 RGB
#: is 0.5 GB of pixels, several GB on the way through rotation and encoding).
MAX_PREVIEW_PIXELS = 120_000_000


@dataclass(frozen=True)
class Preview:
    """An embedded preview as stored: JPEG bytes or an RGB bitmap, and the RAW's EXIF orientation."""

    kind: Literal["jpeg", "bitmap"]
    width: int  # as stored (sensor orientation)
    height: int
    orientation: int
    jpeg: bytes | None = None
    bitmap: np.ndarray | None = None  # (H, W, 3) uint8

    @property
    def chroma_subsampled(self) -> bool:
        """A JPEG whose colour components are stored at a lower resolution than its luma (4:2:2,
        4:2:0: any component's sampling factors below the first's, ITU-T T.81 B.2.2): its colours
        are smeared across edges. Read from the frame header, without decoding."""
        if self.jpeg is None:
            return False
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(self.jpeg)) as im:
                    layers = getattr(im, "layer", None) or []
        except Exception:  # noqa: BLE001 - a damaged header says nothing; decoding reports it
            return False
        if len(layers) < 2:
            return False
        _, h0, v0, _ = layers[0]
        return any(h < h0 or v < v0 for _, h, v, _ in layers[1:])

    @property
    def nbytes(self) -> int:
        return len(self.jpeg) if self.jpeg is not None else int(self.bitmap.nbytes if self.bitmap is not None else 0)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's warnings (bomb, corrupt EXIF): our guard decides
        with Image.open(io.BytesIO(data)) as im:
            return im.size


def check_preview_size(width: int, height: int, sensor_pixels: int, path: str | Path | None = None) -> None:
    """Refuse a preview larger than :data:`MAX_PREVIEW_PIXELS` or than the sensor (with a margin for
    cameras whose preview is a little wider than the cropped sensor area)."""
    pixels = int(width) * int(height)
    if width <= 0 or height <= 0 or pixels > MAX_PREVIEW_PIXELS or pixels > 1.25 * max(sensor_pixels, 1) + 4_000_000:
        raise CorruptFileError(f"the embedded preview claims an implausible size {width}x{height}", path)


def read_preview(path: str | Path) -> Preview:
    """The embedded preview of ``path`` (see :func:`_read_preview`); LibRaw's own complaints on stderr are
    captured, so that errors stay one line."""
    with _CaptureNativeStderr():
        return _read_preview(Path(path))


def _read_preview(path: Path) -> Preview:
    """The embedded preview of ``path``.

    Raises:
        InputError: the file is missing, a folder, unreadable or empty.
        UnsupportedFileError: not a RAW LibRaw reads, or it holds no preview rawpy can extract.
        CorruptFileError: the preview is damaged.
    """
    import rawpy

    path = Path(path)
    raw = open_rawpy(path, unpack=False)  # the preview needs no sensor data
    try:
        orientation = LIBRAW_FLIP_TO_EXIF.get(int(raw.sizes.flip), 1)
        sensor_pixels = int(raw.sizes.raw_width) * int(raw.sizes.raw_height)
        try:
            thumb = raw.extract_thumb()
        except rawpy.LibRawNoThumbnailError:
            raise UnsupportedFileError("the file holds no embedded preview; develop it instead", path) from None
        except rawpy.LibRawUnsupportedThumbnailError:
            raise UnsupportedFileError("the embedded preview is in a format rawpy cannot extract", path) from None
        except rawpy.LibRawError as e:
            raise CorruptFileError(f"the embedded preview is damaged ({type(e).__name__}: {e})", path) from None
    finally:
        raw.close()
    if thumb.format == rawpy.ThumbFormat.JPEG:
        data = bytes(thumb.data)
        try:
            w, h = _jpeg_size(data)
        except Exception as e:  # noqa: BLE001 - Pillow raises several kinds for a bad JPEG
            raise CorruptFileError(f"the embedded JPEG preview is damaged ({type(e).__name__})", path) from None
        check_preview_size(w, h, sensor_pixels, path)
        return Preview("jpeg", w, h, orientation, jpeg=data)
    bmp = np.asarray(thumb.data)
    if bmp.ndim < 2:
        raise CorruptFileError("the embedded preview is damaged (no pixel rows)", path)
    check_preview_size(bmp.shape[1], bmp.shape[0], sensor_pixels, path)
    if bmp.ndim == 2:
        bmp = np.repeat(bmp[..., None], 3, axis=2)
    if bmp.dtype != np.uint8:
        bmp = (bmp.astype(np.float64) * 255.0 / max(1, np.iinfo(bmp.dtype).max)).round().astype(np.uint8)
    bmp = np.ascontiguousarray(bmp[..., :3])
    return Preview("bitmap", int(bmp.shape[1]), int(bmp.shape[0]), orientation, bitmap=bmp)


def _pixels(p: Preview, path: Path) -> np.ndarray:
    if p.bitmap is not None:
        return p.bitmap
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sizes were checked in read_preview
            with Image.open(io.BytesIO(p.jpeg or b"")) as im:
                return np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001
        raise CorruptFileError(f"the embedded JPEG preview is damaged ({type(e).__name__}: {e})", path) from None


def load_preview(path: str | Path) -> tuple[Preview, np.ndarray]:
    """The embedded preview as stored and its pixels, ``(H, W, 3)`` uint8 sRGB in display orientation."""
    from ..stages.orientation import apply_orientation

    path = Path(path)
    p = read_preview(path)
    return p, apply_orientation(_pixels(p, path), p.orientation)


def preview_image(path: str | Path) -> np.ndarray:
    """The embedded preview as ``(H, W, 3)`` uint8 sRGB, in display orientation."""
    return load_preview(path)[1]


def write_preview(src: str | Path, dst: str | Path, *, quality: int = 92, overwrite: bool = False,
                  size: tuple[int, int] | None = None) -> tuple[int, int]:
    """Write the embedded preview of ``src`` to ``dst`` (JPEG, PNG or TIFF by extension), atomically,
    with orientation applied, fitted within ``size`` (``--size``: made smaller in linear light, never
    enlarged). Returns the written ``(width, height)``.

    A JPEG preview that needs no rotation and no resizing and goes to a ``.jpg`` is copied unchanged
    (no re-encoding).
    """
    from ..stages.orientation import apply_orientation, oriented_size
    from ..stages.resize import fit_within

    src, dst = Path(src), Path(dst)
    fmt = check_destination(src, dst, 8, overwrite)  # previews are 8-bit
    p = read_preview(src)
    upright = oriented_size(p.width, p.height, p.orientation)
    target = upright if size is None else fit_within(*upright, size)
    if p.kind == "jpeg" and fmt == "jpeg" and p.orientation == 1 and target == upright:
        with atomic_output(dst, overwrite) as tmp:
            tmp.write_bytes(p.jpeg or b"")
        return p.width, p.height
    img = apply_orientation(_pixels(p, src), p.orientation)
    if target != upright:
        from ..stages.resize import resize_linear
        from ..stages.tone import quantise, quantise_scale, srgb_decode

        img = quantise(resize_linear(srgb_decode(img.astype(np.float32) / 255.0), target) * quantise_scale(8, "srgb"),
                       8, "srgb")
    write_image(dst, img, quality=quality, overwrite=overwrite)
    return int(img.shape[1]), int(img.shape[0])
