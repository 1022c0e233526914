"""Evaluation: Fréchet distances on image and video features, temporal consistency, perceptual distance,
human-preference proxies and the HTML report (the paper's evaluation, which its code never released)."""
