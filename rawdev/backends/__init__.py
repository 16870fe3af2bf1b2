"""Back-ends: the registry (:mod:`.registry`), the torch-free specs (:mod:`.specs`) and the runners
they build lazily (:mod:`.classical`, :mod:`.learned`, :mod:`.isp`, :mod:`.libraw`). Nothing is
imported here, so listing back-ends never pays for torch."""
