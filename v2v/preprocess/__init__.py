"""Turning videos into frames: the extract stage's per-video work (:mod:`.extract`); the decoder is :mod:`v2v.io.decode`."""
