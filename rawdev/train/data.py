"""Training photos: loading, a photo pool on any device, seeded random patches, patch packs.

Sources (``--data`` on the command line) are any mix of

* folders of photos (PNG, JPEG, TIFF, WebP; top level only, other files such as licence texts are
  skipped). JPEG files are box-downscaled by 2 on loading: the training JPEGs (CBSD432) store chroma
  at half resolution (4:2:0), and halving gives clean colour ground truth (shared/train/README.md);
* single photo files (same rule);
* patch packs (``.npz``) written by :func:`write_pack` (``scripts/make_devdata.py``): equal-sized
  uint8 tiles stored WebP-lossless (or raw, key ``patches``), with a train/validation split.

A :class:`PhotoPool` holds uint8 ``(3, H, W)`` tensors, on the CPU or the GPU, and draws batches of
random crops with random flips / transposes (the 8 symmetries of the square). Photos are drawn with
probability proportional to their pixel count (every pixel equally likely to be a patch centre, up to
the border). Equal-sized photos (packs) are stacked and cropped in one gather, so sampling costs next
to nothing on a GPU. Every draw comes from the :class:`torch.Generator` passed in.

Shape:
    ``PhotoPool.sample`` -> ``(N, 3, P, P)`` float32 in [0, 1] (sRGB-encoded, as stored).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, UsageError

__all__ = [
    "IMAGE_EXTENSIONS",
    "training_pool",
    "validation_sources",
    "load_photo",
    "find_photos",
    "PhotoPool",
    "load_sources",
    "encode_tile",
    "write_pack",
    "read_pack",
    "dihedral",
    "colour_augment",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".ppm"})
_JPEG = frozenset({".jpg", ".jpeg"})


def load_photo(path: str | Path, *, jpeg_downscale: int = 2) -> torch.Tensor:
    """Read an 8-bit photo as a ``(3, H, W)`` uint8 tensor.

    JPEG files are box-downscaled by ``jpeg_downscale`` (see the module docstring); pass 1 to keep them.

    Raises:
        InputError: the file is missing or not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if path.suffix.lower() in _JPEG and jpeg_downscale > 1:
                w, h = im.width // jpeg_downscale, im.height // jpeg_downscale
                im = im.resize((w, h), Image.BOX, box=(0, 0, w * jpeg_downscale, h * jpeg_downscale))
            arr = np.asarray(im, dtype=np.uint8)
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"not a readable image ({err})", path) from None
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def find_photos(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (licence texts etc. are skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder", folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def dihedral(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Apply one of the 8 symmetries of the square per image: ``k`` ``(N,)`` ints in [0, 8).

    Bit 0 flips left-right, bit 1 flips up-down, bit 2 transposes (square ``x`` only). Works on any
    ``(N, C, P, P)`` tensor; used on RGB patches *before* mosaicking, so no Bayer phase is disturbed.
    """
    def pick(bit: int, y: torch.Tensor, fn) -> torch.Tensor:
        m = ((k >> bit) & 1).bool().view(-1, 1, 1, 1)
        return torch.where(m, fn(y), y)

    x = pick(0, x, lambda y: y.flip(-1))
    x = pick(1, x, lambda y: y.flip(-2))
    if x.shape[-1] == x.shape[-2]:
        x = pick(2, x, lambda y: y.transpose(-1, -2))
    return x


def colour_augment(
    x: torch.Tensor, *, generator: torch.Generator, p: float = 0.5, max_saturation: float = 2.0
) -> torch.Tensor:
    """Make photo patches more colourful, per image with probability ``p``.

    A random permutation of the R, G, B channels (a valid, differently coloured scene) followed by a
    saturation gain ``s ~ U(1, max_saturation)`` about the per-pixel channel mean, clipped to [0, 1]. Natural
    photo collections hold few strongly saturated colours; benchmark sets such as McMaster hold many.
    ``x`` is ``(N, 3, H, W)`` in [0, 1]; every draw comes from ``generator``.
    """
    n, dev = x.shape[0], x.device
    use = (torch.rand(n, generator=generator, device=dev) < p).view(-1, 1, 1, 1)
    perm = torch.argsort(torch.rand(n, 3, generator=generator, device=dev), dim=1)
    permuted = torch.gather(x, 1, perm.view(n, 3, 1, 1).expand_as(x))
    s = (1.0 + (max_saturation - 1.0) * torch.rand(n, generator=generator, device=dev)).view(-1, 1, 1, 1)
    mean = permuted.mean(dim=1, keepdim=True)
    saturated = (mean + s * (permuted - mean)).clamp(0.0, 1.0)
    return torch.where(use, saturated, x)


@dataclass
class PhotoPool:
    """A set of uint8 ``(3, H, W)`` photos to draw training patches from.

    Attributes:
        photos: the photos (all on one device).
        names: one label per photo (file path, or ``pack:source#index``).
    """

    photos: list[torch.Tensor]
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.photos:
            raise UsageError("no training photos found")
        for i, p in enumerate(self.photos):
            if p.dtype != torch.uint8 or p.dim() != 3 or p.shape[0] != 3:
                raise UsageError(f"photo {i} must be a (3, H, W) uint8 tensor, got {p.dtype} {tuple(p.shape)}")
        if not self.names:
            self.names = [f"#{i}" for i in range(len(self.photos))]
        shapes = {tuple(p.shape) for p in self.photos}
        self._stacked = torch.stack(self.photos) if len(shapes) == 1 else None
        px = torch.tensor([float(p.shape[1] * p.shape[2]) for p in self.photos])
        self._weights = px / px.sum()

    def __len__(self) -> int:
        return len(self.photos)

    @property
    def device(self) -> torch.device:
        return self.photos[0].device

    @property
    def megapixels(self) -> float:
        return sum(p.shape[1] * p.shape[2] for p in self.photos) / 1e6

    def min_side(self) -> int:
        return min(min(p.shape[1], p.shape[2]) for p in self.photos)

    def to(self, device) -> "PhotoPool":
        return PhotoPool([p.to(device) for p in self.photos], list(self.names))

    def sample(
        self,
        n: int,
        size: int,
        *,
        generator: torch.Generator,
        augment: bool = True,
        even: bool = True,
    ) -> torch.Tensor:
        """``n`` random ``size`` x ``size`` crops as float32 ``(n, 3, size, size)`` in [0, 1].

        Args:
            n: batch size.
            size: patch side in pixels.
            generator: every random draw comes from it; it must live on :attr:`device`.
            augment: apply a random symmetry of the square (:func:`dihedral`) to each crop.
            even: crop at even offsets only (keeps the photo's own pixel parity; harmless either way
                since mosaicking happens after cropping).

        Raises:
            UsageError: ``size`` exceeds a photo's shorter side.
        """
        if size > self.min_side():
            raise UsageError(f"patch size {size} exceeds the smallest training photo side {self.min_side()}")
        dev = self.device
        idx = torch.multinomial(self._weights.to(dev), n, replacement=True, generator=generator)
        u = torch.rand(n, 2, generator=generator, device=dev, dtype=torch.float64)
        if self._stacked is not None:
            _, _, h, w = self._stacked.shape
            hs = torch.full((n,), h, device=dev)
            ws = torch.full((n,), w, device=dev)
        else:
            sizes = torch.tensor([[p.shape[1], p.shape[2]] for p in self.photos], device=dev)
            hs, ws = sizes[idx, 0], sizes[idx, 1]
        step = 2 if even else 1
        top = (u[:, 0] * ((hs - size) // step + 1)).floor().long().clamp_max((hs - size) // step) * step
        left = (u[:, 1] * ((ws - size) // step + 1)).floor().long().clamp_max((ws - size) // step) * step
        if self._stacked is not None:
            ar = torch.arange(size, device=dev)
            ys = (top[:, None] + ar)[:, :, None]  # (n, P, 1)
            xs = (left[:, None] + ar)[:, None, :]  # (n, 1, P)
            crops = self._stacked[idx[:, None, None], :, ys, xs]  # (n, P, P, 3)
            crops = crops.permute(0, 3, 1, 2)
        else:
            ii, tt, ll = idx.tolist(), top.tolist(), left.tolist()
            crops = torch.stack([self.photos[i][:, t:t + size, x:x + size] for i, t, x in zip(ii, tt, ll)])
        x = crops.float().div_(255.0)
        if augment:
            k = torch.randint(8, (n,), generator=generator, device=dev)
            x = dihedral(x, k)
        return x.contiguous()


def encode_tile(tile: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` uint8 tile as lossless WebP bytes (about 0.45 of the raw size on photos)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(tile).save(buf, "WEBP", lossless=True, quality=100, method=4, exact=True)
    return buf.getvalue()


def write_pack(
    path: str | Path,
    tiles: list[np.ndarray],
    sources: list[str],
    splits: list[str],
    *,
    lossless_webp: bool = True,
    encoded: list[bytes] | None = None,
) -> int:
    """Write equal-sized ``(H, W, 3)`` uint8 tiles to a ``.npz`` pack; returns the file size in bytes.

    ``sources[i]`` names the folder tile ``i`` came from, ``splits[i]`` is ``"train"`` or ``"val"``.
    With ``lossless_webp`` the tiles are stored WebP-lossless (:func:`encode_tile`; pass ``encoded`` to
    reuse bytes already made), else raw (key ``patches``).
    """
    if not tiles:
        raise UsageError("no tiles to pack")
    shape = tiles[0].shape
    if any(t.shape != shape or t.dtype != np.uint8 for t in tiles) or len(shape) != 3 or shape[2] != 3:
        raise UsageError("pack tiles must all be (H, W, 3) uint8 of one size")
    if not (len(tiles) == len(sources) == len(splits)):
        raise UsageError("tiles, sources and splits differ in length")
    if set(splits) - {"train", "val"}:
        raise UsageError("splits must be 'train' or 'val'")
    src_names = sorted(set(sources))
    arrays = {
        "shape": np.array(shape, dtype=np.int64),
        "source_names": np.array(src_names),
        "source": np.array([src_names.index(s) for s in sources], dtype=np.int32),
        "val": np.array([s == "val" for s in splits], dtype=bool),
    }
    if lossless_webp:
        if encoded is not None and len(encoded) != len(tiles):
            raise UsageError("encoded and tiles differ in length")
        raw = encoded if encoded is not None else [encode_tile(t) for t in tiles]
        blobs = [np.frombuffer(b, dtype=np.uint8) for b in raw]
        arrays["offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays["webp"] = np.concatenate(blobs)
    else:
        arrays["patches"] = np.stack(tiles)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path.stat().st_size


def read_pack(path: str | Path, split: str = "train") -> tuple[list[torch.Tensor], list[str]]:
    """The ``split`` (``"train"``, ``"val"`` or ``"all"``) tiles of a pack as ``(3, H, W)`` uint8 tensors.

    Raises:
        InputError: the file is missing or not a pack.
    """
    from PIL import Image

    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except (OSError, ValueError) as err:
        raise InputError(f"not a patch pack ({err})", path) from None
    with z:
        if "val" not in z or ("webp" not in z and "patches" not in z):
            raise InputError("not a patch pack (keys 'val' and 'webp' or 'patches' expected)", path)
        val = z["val"]
        names = [str(s) for s in z["source_names"]]
        src = z["source"]
        keep = np.arange(len(val)) if split == "all" else np.flatnonzero(val == (split == "val"))
        if "webp" in z:
            data, off = z["webp"], z["offsets"]
            arrs = [np.asarray(Image.open(io.BytesIO(data[off[i]:off[i + 1]].tobytes())).convert("RGB"))
                    for i in keep]
        else:
            arrs = [z["patches"][i] for i in keep]
    tiles = [torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))) for a in arrs]
    labels = [f"{path.name}:{names[src[i]]}#{i}" for i in keep]
    return tiles, labels


def load_sources(paths: list[str | Path], *, split: str = "train", jpeg_downscale: int = 2) -> PhotoPool:
    """A :class:`PhotoPool` of every photo in ``paths`` (folders, photo files or ``.npz`` packs).

    ``split`` selects the tiles of packs; folders and files have no split and are used whole, so
    they contribute nothing to ``split="val"``.

    Raises:
        InputError: a path is missing, unreadable, or holds no photos.
        UsageError: nothing was found at all.
    """
    photos: list[torch.Tensor] = []
    names: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = find_photos(p)
            if not files and split == "train":
                raise InputError("folder holds no photos", p)
            if split == "val":
                continue
            for f in files:
                photos.append(load_photo(f, jpeg_downscale=jpeg_downscale))
                names.append(str(f))
        elif p.suffix.lower() == ".npz":
            t, n = read_pack(p, split)
            photos += t
            names += n
        elif p.is_file():
            if split == "val":
                continue
            photos.append(load_photo(p, jpeg_downscale=jpeg_downscale))
            names.append(str(p))
        else:
            raise InputError("no such file or folder", p)
    if not photos:
        raise UsageError(f"no {split} photos in {', '.join(map(str, paths))}")
    log.info("loaded %d %s photos (%.1f MP)", len(photos), split, sum(x.shape[1] * x.shape[2] for x in photos) / 1e6)
    return PhotoPool(photos, names)


def training_pool(data, patch: int, device) -> PhotoPool:
    """The ``train`` photos of ``data`` on ``device``, checked to hold ``patch``-sized crops (what
    every trainer needs before its first step).

    Raises:
        UsageError: ``patch`` exceeds the smallest photo side (and :func:`load_sources`' errors).
    """
    pool = load_sources(list(data), split="train").to(device)
    if patch > pool.min_side():
        raise UsageError(f"patch {patch} exceeds the smallest training photo side {pool.min_side()}")
    return pool


def validation_sources(data, val_data=None) -> list:
    """``val_data`` if given, else the packs among ``data`` (their ``val`` split; plain folders have none)."""
    return list(val_data) if val_data is not None else [p for p in data if str(p).endswith(".npz")]
