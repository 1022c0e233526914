"""Optical flow between consecutive frames: backends, confidence masks, storage, metrics, pictures.

Every flow here is **backward flow** in the convention of :mod:`v2v.ops.warp`: ``flow_t`` is stored
with frame t and ``warp(frame_{t-1}, flow_t) ≈ frame_t``. Modules, by role:

* :mod:`v2v.flow.common` — input checks shared by the backends;
* :mod:`v2v.flow.estimator` — the backend interface (:func:`v2v.stages.flow.make_estimator` builds one from params);
* :mod:`v2v.flow.dis` — OpenCV DIS (no weights; the offline default);
* :mod:`v2v.flow.raft` — torchvision RAFT small/large (torchvision weights, a local file, or none);
* :mod:`v2v.flow.confidence` — which pixels of a flow to trust (photometric, forward-backward, frame);
* :mod:`v2v.flow.io` — the on-disk layout of the flow stage and its one reader;
* :mod:`v2v.flow.truth` — ground-truth flow of a dataset, mapped onto the extracted frames, and EPE;
* :mod:`v2v.flow.video` — one video's frame pairs, streamed through a backend onto disk;
* :mod:`v2v.flow.viz` — flow colour wheel pictures.
"""
