"""Decoding (rawdev.io.raw): the colour and black-level maps are kept as one repeating CFA cell."""

from __future__ import annotations

import numpy as np
import pytest

from rawdev.io.raw import _colour_and_black_maps, read_raw
from rawdev.synthetic import write_dng
from rawdev.types import CellMap


def _full(cell: np.ndarray, h: int, w: int) -> np.ndarray:
    return cell[np.arange(h)[:, None] % cell.shape[0], np.arange(w)[None, :] % cell.shape[1]]


@pytest.mark.parametrize("key", [np.s_[1:4], 2, -1, np.s_[0:5:2, 1:7:2], np.s_[3, 2:6], np.s_[:, 4], np.s_[1, 1],
                                 np.s_[::-1, 5:], np.s_[4:2]])
def test_cell_map_indexes_as_the_full_array(key):
    cell = np.array([[0, 1, 2], [1, 2, 0]], np.uint8)  # a 2 x 3 period: rows and columns differ
    m, full = CellMap(cell, (5, 7)), _full(cell, 5, 7)
    got = m[key]
    assert np.shape(got) == np.shape(full[key]) and np.array_equal(got, full[key])
    assert np.array_equal(np.asarray(m), full) and np.asarray(m, dtype=np.float32).dtype == np.float32
    assert m.shape == (5, 7) and len(m) == 5


def test_colour_and_black_maps_find_the_period():
    lut = np.array([0, 1, 2, 1], np.uint8)  # LibRaw "RGBG": G2 = 3 is green
    black = np.array([512.0, 510.0, 515.0, 511.0], np.float32)
    for cell in (np.array([[0, 1], [3, 2]]), np.arange(36).reshape(6, 6) % 4, np.array([[0, 1]] * 4 + [[3, 2]] * 4)):
        idx = _full(cell, 301, 403).astype(np.uint8)
        colors, blacks = _colour_and_black_maps(idx, lut, black)
        assert isinstance(colors, CellMap) and colors.cell.shape[0] <= cell.shape[0]
        assert np.array_equal(np.asarray(colors), lut[idx]) and np.array_equal(np.asarray(blacks), black[idx])
    # a map that does not repeat stays per pixel, and is still right
    idx = np.random.default_rng(0).integers(0, 4, (40, 50)).astype(np.uint8)
    colors, blacks = _colour_and_black_maps(idx, lut, black)
    assert not isinstance(colors, CellMap)
    assert np.array_equal(colors, lut[idx]) and np.array_equal(blacks, black[idx])


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_read_raw_keeps_one_cell_per_map(tmp_path, pattern):
    path = write_dng(tmp_path / "a.dng", np.full((33, 47, 3), 0.3), pattern=pattern, black=(500, 510, 520, 530))
    raw = read_raw(path)
    assert isinstance(raw.colors, CellMap) and raw.colors.cell.shape == (2, 2)
    assert raw.colors.shape == raw.data.shape == (33, 47)
    # colour indices spell the pattern; each site keeps the black the file gives it (write_dng
    # writes BlackLevel per cell position in raster order, whatever the pattern)
    assert "".join("RGB"[c] for c in raw.colors.cell.ravel()) == pattern
    assert raw.black_map.cell.tolist() == [[500.0, 510.0], [520.0, 530.0]]
    assert np.asarray(raw.black_map).shape == (33, 47)
