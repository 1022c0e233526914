"""Losses of vid2vid: separate callables that judge network outputs and return named scalars.

Models compute, losses judge, the training loop updates. Every callable returns a ``dict`` of
0-dim tensors (already multiplied by its weight), so the loop can sum them and log each by name.
"""
