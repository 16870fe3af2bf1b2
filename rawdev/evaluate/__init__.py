"""Evaluation: image quality metrics and the standard demosaicking protocol.

``rawdev.evaluate.metrics`` holds CPSNR, PSNR and SSIM; ``rawdev.evaluate.demosaic`` runs a registered
back-end over a folder of 8-bit sRGB photos (Kodak24, McMaster18, ...) and scores it. Import those
modules directly; this package imports nothing so that ``import rawdev.evaluate`` stays cheap.
"""
