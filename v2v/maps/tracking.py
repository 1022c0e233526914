"""Instance ids kept across frames: an object keeps its ``class*1000+k`` through the clip.

Flow-free tracking by mask overlap. Each track remembers its last mask and its last centroid
motion; in a new frame a track's mask is shifted by that motion (constant-velocity prediction,
times the frames since it was last seen) and compared with the detections of its class by IoU.
Pairs are matched greedily from the highest IoU down (each track and detection used once; with
few objects per class this equals the Hungarian optimum in practice and is deterministic). A
detection that matches no track starts a new one with the next unused ``k`` of its class; a track
unseen for more than ``max_gap`` frames is dropped (its ``k`` is not reused while ``k`` < 1000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from v2v.data.labels import INSTANCE_DIVISOR, instance_id


def mask_iou(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """IoU of every mask of ``a (N, H, W)`` with every mask of ``b (M, H, W)`` → ``(N, M)``."""
    assert a.ndim == 3 and b.ndim == 3 and a.shape[1:] == b.shape[1:], (a.shape, b.shape)
    fa = a.reshape(len(a), -1).astype(np.float32)
    fb = b.reshape(len(b), -1).astype(np.float32)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float64)


def greedy_match(iou: npt.NDArray[np.float64], threshold: float) -> list[tuple[int, int]]:
    """(row, col) pairs with IoU >= threshold, best first; each row and column used at most once."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    used_r: set[int] = set()
    used_c: set[int] = set()
    order = np.argsort(-iou, axis=None, kind="stable")
    for flat in order:
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < threshold:
            break
        if r in used_r or c in used_c:
            continue
        pairs.append((r, c))
        used_r.add(r)
        used_c.add(c)
    return pairs


def _centroid(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()]) if len(xs) else np.zeros(2)


def _shift(mask: npt.NDArray[np.bool_], dx: int, dy: int) -> npt.NDArray[np.bool_]:
    """Translate a mask by whole pixels (zero fill)."""
    if dx == 0 and dy == 0:
        return mask
    h, w = mask.shape
    out = np.zeros_like(mask)
    if abs(dx) >= w or abs(dy) >= h:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


@dataclass
class Track:
    class_id: int
    k: int
    mask: npt.NDArray[np.bool_]
    centroid: npt.NDArray[np.float64]
    velocity: npt.NDArray[np.float64]  # centroid motion per frame (dx, dy)
    last_seen: int

    @property
    def instance(self) -> int:
        return instance_id(self.class_id, self.k)


class InstanceTracker:
    """Assign tracked Cityscapes instance ids to each frame's detections, frame after frame."""

    def __init__(
        self,
        *,
        iou_threshold: float = 0.3,  # least (motion-predicted) mask IoU to continue a track
        max_gap: int = 5,  # frames a track may go unseen and still be continued
        predict_motion: bool = True,  # shift a track's mask by its last centroid motion before matching
    ) -> None:
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self.predict_motion = predict_motion
        self.tracks: list[Track] = []
        self.next_k: dict[int, int] = {}
        self.t = -1

    def _new_k(self, class_id: int) -> int:
        k = self.next_k.get(class_id, 0)
        if k < INSTANCE_DIVISOR:
            self.next_k[class_id] = k + 1
            return k
        live = {tr.k for tr in self.tracks if tr.class_id == class_id}
        free = next((j for j in range(INSTANCE_DIVISOR) if j not in live), None)
        if free is None:
            raise ValueError(f"more than {INSTANCE_DIVISOR} live objects of class {class_id}")
        return free

    def update(self, classes: npt.NDArray[np.int64], masks: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
        """Ids ``(N,)`` for the N detections ``classes (N,)``, ``masks (N, H, W)`` of the next frame."""
        assert masks.ndim == 3 and len(classes) == len(masks), (classes.shape, masks.shape)
        self.t += 1
        self.tracks = [tr for tr in self.tracks if self.t - tr.last_seen <= self.max_gap]
        ids = np.zeros(len(classes), np.int64)
        centroids = [_centroid(m) for m in masks]
        for class_id in sorted({int(c) for c in classes}):
            dets = [i for i, c in enumerate(classes) if int(c) == class_id]
            cands = [tr for tr in self.tracks if tr.class_id == class_id]
            pairs: list[tuple[int, int]] = []
            if cands:
                predicted = np.stack([self._predict(tr) for tr in cands])
                pairs = greedy_match(mask_iou(masks[dets], predicted), self.iou_threshold)
            matched = set()
            for r, c in pairs:
                i, tr = dets[r], cands[c]
                gap = self.t - tr.last_seen
                tr.velocity = (centroids[i] - tr.centroid) / gap
                tr.centroid, tr.mask, tr.last_seen = centroids[i], masks[i], self.t
                ids[i] = tr.instance
                matched.add(r)
            for r, i in enumerate(dets):
                if r in matched:
                    continue
                tr = Track(class_id, self._new_k(class_id), masks[i], centroids[i], np.zeros(2), self.t)
                self.tracks.append(tr)
                ids[i] = tr.instance
        return ids

    def _predict(self, track: Track) -> npt.NDArray[np.bool_]:
        if not self.predict_motion:
            return track.mask
        dx, dy = np.rint(track.velocity * (self.t - track.last_seen)).astype(int)
        return _shift(track.mask, int(dx), int(dy))
