"""rawdev's own weights files and their model cards, installed as the package ``rawdev.weights``
(see setup.py); :mod:`rawdev.backends.weights` locates them with :mod:`importlib.resources`."""
