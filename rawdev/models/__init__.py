"""Network definitions used by the learned back-ends (plain ``torch.nn`` modules, no weights here).

* :mod:`rawdev.models.gharbi2016`: ``BayerDemosaicNet`` and ``XTransDemosaicNet`` (Gharbi et al. 2016,
  the demosaicnet networks with their released parameter names).
"""
