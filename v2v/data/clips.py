"""Training clips: frames + conditioning maps + flows of consecutive frames, as ``(T, C, H, W)`` tensors.

Reads what the pipeline's stages wrote (see :mod:`v2v.paths`): frames (extract), label + instance
maps (segment), edge maps (edges), pose maps (pose) or face sketches (face), chosen by the task, and the backward flow
with its confidence mask (flow). Augmentation is clip-consistent: one crop window and one flip for
every frame of a clip (a flip also negates the flow's dx; an optional rotation and zoom turn and scale the flow's
vectors with the pixels). Splits are by video (``index.json``).

One item is a dict of tensors:

* ``image`` ``(T, 3, H, W)`` float in [-1, 1];
* ``label`` ``(T, C, H, W)`` float: the generator's per-frame condition: one-hot labels + instance
  boundary (street), the binary edge map (edges), the rendered pose map in [-1, 1] (pose), or the
  face sketch in {0, 1} + 14 part distance maps in [0, 1] (face; the sketch alone for face_edges);
* ``instance`` ``(T, H, W)`` int64 instance ids (street; zeros otherwise), for the feature encoder;
* ``flow`` ``(T, 2, H, W)`` backward flow of each frame onto the previous one, in pixels, and
  ``flow_valid`` ``(T, 1, H, W)`` in {0, 1} (0 for the first frame of a video, which has no previous one);
* ``clip`` ``(2,)`` int64: the video's index and the first frame (items of the dataset only, not of
  :meth:`ClipDataset.load_clip`), named by :meth:`ClipDataset.describe` in training errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from v2v.data.conditions import condition_maps, distance_maps
from v2v.data.tasks import get_task
from v2v.errors import repair_advice
from v2v.flow.io import read_flow_pair
from v2v.io.frames import frame_name, frame_paths, read_index, split_problem
from v2v.io.maps import read_instance, read_label, read_mask, read_rgb
from v2v.paths import ProjectPaths

Split = Literal["train", "test"]


@dataclass(frozen=True)
class VideoEntry:
    video_id: str
    num_frames: int
    width: int
    height: int


def list_videos(paths: ProjectPaths, split: Split) -> list[VideoEntry]:
    """Videos of one split from the extract stage's ``index.json`` (an error when there is none)."""
    return [
        VideoEntry(v["video_id"], v["num_frames"], v["width"], v["height"])
        for v in read_index(paths.frames_index)
        if v["split"] == split
    ]


def _image(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


class ClipDataset(Dataset[dict[str, torch.Tensor]]):
    """Random clips of ``clip_length`` consecutive frames from the videos of one split.

    An epoch visits every video ``samples_per_video`` times; where in the video a clip starts, the
    crop window and the flip are drawn from ``(seed, epoch, index)``, so a run is reproducible and
    :meth:`set_epoch` changes them. ``clip_length`` may be changed between epochs (the temporal
    schedule); videos shorter than it give their whole length.
    """

    def __init__(
        self,
        *,
        paths: ProjectPaths,  # project locations
        split: Split,  # which videos
        task: str,  # which conditioning maps: a train.task name (v2v.data.tasks)
        clip_length: int,  # frames per clip
        label_classes: int = 35,  # one-hot channels for the street task (label ids must be smaller)
        samples_per_video: int = 1,  # clips per video per epoch
        crop: tuple[int, int] | None = None,  # (height, width) random crop; None = full frames
        flip: bool = False,  # random horizontal flips
        rotate: float = 0.0,  # random rotation up to this many degrees either way (0: none)
        zoom: float = 0.0,  # random zoom-in up to this fraction (0: none)
        seed: int = 0,  # base seed of the clip choices
        prefix: str = "",  # only videos whose id starts with this
        with_flow: bool = True,  # read flows (training needs them; generation does not)
        label_map: Mapping[int, int] | None = None,  # street: replace label ids (semantic manipulation)
    ) -> None:
        self.paths = paths
        self.task = task
        self.spec = get_task(task)
        self.maps = self.spec.maps
        self.label_classes = label_classes
        self.clip_length = clip_length
        self.samples_per_video = samples_per_video
        self.crop = crop
        self.flip = flip
        self.rotate = rotate
        self.zoom = zoom
        self.seed = seed
        self.with_flow = with_flow
        self.label_map = dict(label_map or {})
        self.epoch = 0
        self.videos = [v for v in list_videos(paths, split) if v.video_id.startswith(prefix)]
        if not self.videos:
            everything = [(v.video_id, s) for s in ("train", "test") for v in list_videos(paths, s)]
            if prefix:
                raise ValueError(
                    f"{paths.frames_index}: no {split} video whose id starts with {prefix!r} (the {split} videos: "
                    f"{', '.join(v for v, s in everything if s == split) or 'none'}); change or empty the prefix"
                )
            raise ValueError(f"{paths.frames_index}: {split_problem(everything) or f'no {split} video'}")
        for video in self.videos:
            if crop is not None and (crop[0] > video.height or crop[1] > video.width):
                raise ValueError(f"crop {crop} is larger than video {video.video_id} ({video.height}x{video.width})")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos) * self.samples_per_video

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        video = self.videos[index % len(self.videos)]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        length = min(self.clip_length, video.num_frames)
        start = int(rng.integers(0, video.num_frames - length + 1))
        clip = self.load_clip(video, start, length, rng)
        clip["clip"] = torch.tensor([index % len(self.videos), start])  # which clip: see describe()
        return clip

    def describe(self, clip: torch.Tensor) -> str:
        """Readable names of a batch's clips from their ``clip`` entries (``(B, 2)``: video index, first frame)."""
        rows = clip.reshape(-1, 2).tolist()
        return ", ".join(f"{self.videos[v].video_id} frames {t}..{t + self.clip_length - 1}" for v, t in rows)

    def load_clip(
        self, video: VideoEntry, start: int, length: int, rng: np.random.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Frames ``start .. start+length-1`` of ``video`` (augmented when ``rng`` is given)."""
        h, w = video.height, video.width
        y0 = x0 = 0
        ch, cw = self.crop or (h, w)
        flip = False
        angle, scale = 0.0, 1.0
        if rng is not None:
            y0 = int(rng.integers(0, h - ch + 1))
            x0 = int(rng.integers(0, w - cw + 1))
            flip = self.flip and bool(rng.integers(0, 2))
            if self.rotate or self.zoom:  # drawn after the others, so runs without them keep their clips
                angle = float(rng.uniform(-self.rotate, self.rotate))
                scale = 1.0 + float(rng.uniform(0.0, self.zoom))
        files = frame_paths(self.paths.frames / video.video_id)
        frames = [self._frame(video, files, t) for t in range(start, start + length)]
        clip = {key: torch.stack([f[key] for f in frames]) for key in frames[0]}
        if self.spec.one_hot_labels:
            clip["label"] = condition_maps(clip.pop("label_ids")[None], clip["instance"][None], self.label_classes)[0]
        clip = {key: value[..., y0 : y0 + ch, x0 : x0 + cw] for key, value in clip.items()}
        if flip:
            clip = {key: value.flip(-1) for key, value in clip.items()}
            clip["flow"][:, 0] *= -1
        if angle or scale != 1.0:
            clip = turned(clip, angle, scale)
        return {key: value.contiguous() for key, value in clip.items()}

    def _frame(self, video: VideoEntry, files: list[Any], t: int) -> dict[str, torch.Tensor]:
        vid = video.video_id
        out: dict[str, torch.Tensor] = {"image": _image(read_rgb(files[t]))}
        shape = (video.height, video.width)
        if self.spec.one_hot_labels:
            folder = self.paths.segment_maps / vid
            label = read_label(folder / "label" / frame_name(t))
            instance = read_instance(folder / "instance" / frame_name(t))
            _check(folder / "label" / frame_name(t), label.shape, shape)
            ids = torch.from_numpy(label.astype(np.int64))
            out["label_ids"] = remap_ids(ids, self.label_map) if self.label_map else ids
            out["instance"] = torch.from_numpy(instance.astype(np.int64))
        else:
            out["instance"] = torch.zeros(shape, dtype=torch.int64)
            if self.maps == "pose":
                path = self.paths.pose_maps / vid / "map" / frame_name(t)
                pose = read_rgb(path)
                _check(path, pose.shape[:2], shape)
                out["label"] = _image(pose)
            else:
                folder = self.paths.face_maps / vid / "map" if self.maps == "face" else self.paths.edge_maps / vid
                edges = read_mask(folder / frame_name(t))
                _check(folder / frame_name(t), edges.shape, shape)
                out["label"] = torch.from_numpy(edges).float()[None]
                if self.spec.part_distances:  # + the distance to each facial-part edge
                    parts = read_label(self.paths.face_maps / vid / "parts" / frame_name(t))
                    dist = torch.from_numpy(distance_maps(parts))
                    out["label"] = torch.cat([out["label"], dist])
        if not self.with_flow:
            return out
        if t == 0:
            out["flow"] = torch.zeros(2, *shape)
            out["flow_valid"] = torch.zeros(1, *shape)
        else:
            flow, valid = read_flow_pair(self.paths.flow / vid, t)
            _check(self.paths.flow / vid / frame_name(t, ".npy"), flow.shape[:2], shape)
            out["flow"] = torch.from_numpy(flow).permute(2, 0, 1).float()
            out["flow_valid"] = torch.from_numpy(valid).float()[None]
        return out


def turned(clip: dict[str, torch.Tensor], degrees: float, scale: float) -> dict[str, torch.Tensor]:
    """``clip`` rotated by ``degrees`` (counter-clockwise on screen) and zoomed in by ``scale`` about the centre.

    Images and flows are resampled bilinearly, labels, instances and flow validity by nearest neighbour; pixels
    that come from outside the frame repeat its border, and their flow is marked invalid. A flow vector turns and
    scales with the pixels: if output pixel ``o`` samples input pixel ``M o`` (``M = R(-degrees) / scale``), its
    backward flow is ``M⁻¹ f(M o)``.
    """
    h, w = clip["image"].shape[-2:]
    a = np.radians(degrees)
    inverse = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) / scale  # M, in pixels (y down)
    half = np.diag([w / 2, h / 2])  # normalised (align_corners=False) → pixels, about the centre
    theta = torch.zeros(1, 2, 3)
    theta[0, :, :2] = torch.from_numpy(np.linalg.inv(half) @ inverse @ half)
    grid = torch.nn.functional.affine_grid(theta, [1, 1, h, w], align_corners=False)

    def resample(x: torch.Tensor, mode: str, padding: str = "border") -> torch.Tensor:
        flat = x.reshape(-1, 1, h, w) if x.dim() == 3 else x
        out = torch.nn.functional.grid_sample(
            flat.float(), grid.expand(len(flat), -1, -1, -1), mode=mode, padding_mode=padding, align_corners=False
        )
        return out.reshape(x.shape).to(x.dtype)

    out = dict(clip)
    out["image"] = resample(clip["image"], "bilinear")
    out["label"] = resample(clip["label"], "nearest")
    out["instance"] = resample(clip["instance"], "nearest")
    if "flow" in clip:
        flow = resample(clip["flow"], "bilinear")
        back = torch.from_numpy(np.linalg.inv(inverse)).float()  # M⁻¹
        out["flow"] = torch.einsum("ij,tjhw->tihw", back, flow)
        out["flow_valid"] = resample(clip["flow_valid"], "nearest", padding="zeros")
    return out


def remap_ids(label_ids: torch.Tensor, mapping: Mapping[int, int]) -> torch.Tensor:
    """Semantic manipulation: replace label ids (e.g. ``{11: 21}``, building → vegetation) in an id map."""
    out = label_ids.clone()
    for source, target in mapping.items():
        out[label_ids == source] = target
    return out


def _check(path: Any, found: tuple[int, ...], expected: tuple[int, int]) -> None:
    if tuple(found) != expected:
        raise ValueError(
            f"{path}: size {found[1]}x{found[0]} does not match the frames ({expected[1]}x{expected[0]}); "
            f"its inputs changed since it was written: {repair_advice(path)}"
        )
