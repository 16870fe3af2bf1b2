"""Network definitions used by the learned back-ends (plain ``torch.nn`` modules, no weights here).

* :mod:`rawdev.models.gharbi2016`: ``BayerDemosaicNet`` and ``XTransDemosaicNet`` (Gharbi et al. 2016,
  the demosaicnet networks with their released parameter names).
* :mod:`rawdev.models.ignatov2020`: ``PyNET`` (Ignatov et al. 2020) and its PyNET-CA option (Kim et al.
  2020).
* :mod:`rawdev.models.liang2019`: ``CameraNet`` (Liang et al. 2019): Restore-Net and Enhance-Net.
* :mod:`rawdev.models.isp_frame`: ``LearnedISP``, the frame the three ISPs run in (what the RAW file
  says goes in: white-balanced mosaic, noise level, colour matrix; display sRGB comes out).
"""
