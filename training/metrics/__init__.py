"""Evaluation metrics, one module each: judge accuracy, Fréchet distance, kernel distance (KID),
precision/recall/density/coverage, MS-SSIM, CAS, memorisation.

Each works on tensors it is given (images in [-1, 1], features, labels); training/evaluate decides what
to generate and which real images to compare with.
"""
