"""Where jdd-noise should hand over to jdd: round-trip PSNR at low noise (with NoiseProfile) for
jdd and jdd-noise under two fade ranges.

    nice python benchmarks/jdd_noise_fade.py

First 3 Kodak24 photos, protocol levels shot-1e-04 and shot-1e-03 (rawdev.evaluate.roundtrip).
"""
import numpy as np, tempfile
from pathlib import Path
from PIL import Image
import rawdev.backends.learned as L
from rawdev.evaluate.demosaic import list_images
from rawdev.evaluate.roundtrip import make_roundtrip_dng, _score
from rawdev.io.raw import read_raw
from rawdev.pipeline import PipelineConfig, develop_raw
res = {}
with tempfile.TemporaryDirectory() as t:
    for lvl in ['shot-1e-04', 'shot-1e-03']:
        for i, f in enumerate(sorted(list_images('/work/shared/data/kodak24'))[:3]):
            photo = np.asarray(Image.open(f).convert('RGB')); h, w = photo.shape[0]//2*2, photo.shape[1]//2*2
            ref = photo[:h,:w].astype(np.float32)/255
            raw = read_raw(make_roundtrip_dng(photo, i, Path(t)/'x.dng', lvl, noise_profile=True))
            for name, fade, be in [('jdd', None, 'jdd'), ('old', (1.5/255, 3/255), 'jdd-noise'), ('new', (3/255, 6/255), 'jdd-noise')]:
                if fade: L.JDD_NOISE_FADE = fade
                r = develop_raw(raw, PipelineConfig(backend=be, output_bits=None, device='cpu'))
                res.setdefault((lvl, name), []).append(_score(r.image, ref)[0])
for k, v in res.items(): print(k, round(float(np.mean(v)), 2))
