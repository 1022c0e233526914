"""Conditioning maps: instance segmentation, edge, pose and face maps, with their backends.

Split by role (the weights policy of every learned backend is :mod:`v2v.io.weights`):
:mod:`~v2v.maps.segmentation` (segmentation backends), :mod:`~v2v.maps.tracking` (instance ids
kept across frames), :mod:`~v2v.maps.edges` (Canny + instance boundaries), :mod:`~v2v.maps.pose`
(keypoint backends, COCO-17 → BODY_25, rendering, smoothing), :mod:`~v2v.maps.ground_truth`
(the synthetic sample's truth, mapped the way the frames were), :mod:`~v2v.maps.face` (dlib landmarks,
sketches), :mod:`~v2v.maps.detectron2` (the optional detectron2 backend's helpers), :mod:`~v2v.maps.preview`
and :mod:`~v2v.maps.frames` (reading frame folders with clear errors).
"""
