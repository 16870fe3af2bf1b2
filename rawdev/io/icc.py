"""Embedded ICC profiles. The sRGB profile is built by LittleCMS (through Pillow's ImageCms), once."""

from __future__ import annotations

import functools

__all__ = ["srgb_profile"]


@functools.lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    """The bytes of an sRGB IEC 61966-2-1 ICC profile."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
