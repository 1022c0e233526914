"""Seeded synthetic clips with exact ground truth (labels, instances, flow, keypoints).

Two scene kinds:

* ``"street"``: a side view of a street. A wide, horizontally periodic panorama (sky with clouds,
  buildings with windows, trees and hedges, two sidewalks and a two-lane road) is seen by a camera
  that pans at a constant speed. Cars drive along the lanes and articulated people walk along the
  sidewalks; traffic loops, so an object that leaves the frame comes back later from the other
  side with the same instance id.
* ``"pose"``: one large articulated figure (COCO-17 skeleton) dancing in front of a static
  backdrop (wall = ``building``, floor = ``sidewalk``).

Every surface is a rigid layer: the background is one translated plane, each car a translated
sprite, each body part (torso, head, upper/lower arm, thigh, shin, foot) a rotated and translated
sprite. A frame is rendered back to front; each layer samples its smooth texture bilinearly at
``A_t^{-1} p`` and covers the pixels where its sampled coverage exceeds 0.5, so the RGB, label and
instance maps agree pixel for pixel. The flow of a pixel is analytic:
``A_{t-1}(A_t^{-1} p) - p``, where the surface point seen at ``p`` was one frame earlier.

Coordinates: pixel centres lie at integer ``(x, y)``; keypoints and flow use the same convention.
``flow_valid`` marks pixels whose flow target lies in frame t-1 with all four bilinear neighbours
on the same surface, so warping frame t-1 bilinearly by the flow reproduces frame t there (up to
texture interpolation). Stuff labels are nearest-sampled from the background plane, so a border
between two stuff classes may move by one pixel between frames. A keypoint is visible (v=2) when
its pixel shows one of the body parts that meet at that joint; hidden by anything else (another
object or another part of the same body) gives v=1.
Only ``np.random.default_rng(seed)`` is used, so a (kind, size, num_frames, seed) tuple always
produces the same arrays; frames are produced one at a time (memory does not grow with length).
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

from v2v.data.labels import instance_id, label_id

SceneKind = Literal["street", "pose"]

COCO_KEYPOINTS: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

ROAD = label_id("road")
SIDEWALK = label_id("sidewalk")
BUILDING = label_id("building")
VEGETATION = label_id("vegetation")
SKY = label_id("sky")
PERSON = label_id("person")
CAR = label_id("car")

MIN_WIDTH, MIN_HEIGHT = 64, 32

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FrameTruth:
    """One synthetic frame and its exact ground truth."""

    rgb: npt.NDArray[np.uint8]  # (H, W, 3) RGB
    label: npt.NDArray[np.uint8]  # (H, W) Cityscapes label ids
    instance: npt.NDArray[np.int32]  # (H, W) class*1000+k for things, class id for stuff
    # (H, W, 2) BACKWARD flow in pixels (dx, dy): frame_t(p) ~= frame_{t-1}(p + flow[p]); zeros at t=0
    flow: npt.NDArray[np.float32]
    # (H, W) True where every bilinear neighbour of p + flow[p] in frame t-1 shows the same surface
    # as p in frame t (so p was visible there, inside the frame); all False at t=0
    flow_valid: npt.NDArray[np.bool_]
    # one per articulated figure: {"instance_id": int, "keypoints": [[x, y, v], ...]} in COCO order;
    # v=2 visible, 1 inside the frame but hidden by another surface, 0 outside the frame
    keypoints: list[dict]


def generate_clip(kind: SceneKind, *, width: int, height: int, num_frames: int, seed: int) -> Iterator[FrameTruth]:
    """Return an iterator over ``num_frames`` frames of a seeded synthetic clip.

    Arguments are checked here; the scene is built on the first ``next()`` and frames are rendered
    one at a time. Sizes from 64x32 up work; object sizes and speeds scale with the frame.
    """
    if kind not in ("street", "pose"):
        raise ValueError(f"unknown synthetic scene kind {kind!r}; expected 'street' or 'pose'")
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValueError(f"synthetic clips need at least {MIN_WIDTH}x{MIN_HEIGHT} pixels, got {width}x{height}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    rng = np.random.default_rng(seed)
    return _frames(kind, width, height, num_frames, rng)


def _frames(
    kind: SceneKind, width: int, height: int, num_frames: int, rng: np.random.Generator
) -> Iterator[FrameTruth]:
    scene = _street_scene(rng, width, height) if kind == "street" else _pose_scene(rng, width, height)
    prev_owner: npt.NDArray[np.int32] | None = None
    for t in range(num_frames):
        frame, prev_owner = _render(scene, t, prev_owner)
        yield frame


# ------------------------------------------------------------------------------ small helpers


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    y = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return y * y * (3.0 - 2.0 * y)


def _noise(rng: np.random.Generator, h: int, w: int, cell: float) -> F32:
    """Smooth noise (std about 0.8), periodic with period ``w`` along x and ``h`` along y."""
    cell = max(cell, 4.0)
    hl, wl = max(2, round(h / cell)), max(2, round(w / cell))
    low = rng.standard_normal((hl, wl)).astype(np.float32)
    xs = ((np.arange(w, dtype=np.float64) + 0.5) * (wl / w) - 0.5).astype(np.float32)
    ys = ((np.arange(h, dtype=np.float64) + 0.5) * (hl / h) - 0.5).astype(np.float32)
    mx, my = np.meshgrid(xs, ys)
    out = cv2.remap(low, mx, my, cv2.INTER_CUBIC, borderMode=cv2.BORDER_WRAP)
    return np.asarray(out, dtype=np.float32)


def _box(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Soft indicator of ``lo <= x <= hi`` with a one-pixel ramp."""
    return np.clip(0.5 + np.minimum(x - lo, hi - x), 0.0, 1.0)


def _round_corners(alpha: np.ndarray, sigma: float) -> F32:
    """Blur a soft mask (rounds its corners) and re-sharpen its edge to a one-pixel ramp."""
    if sigma < 0.5:
        return alpha.astype(np.float32)
    blurred = cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    k = math.sqrt(2.0 * math.pi) * sigma
    return np.clip(0.5 + (blurred - 0.5) * k, 0.0, 1.0).astype(np.float32)


def _colour(rgb: tuple[float, float, float]) -> F32:
    return np.asarray(rgb, dtype=np.float32)


def _hsv(h: float, s: float, v: float) -> F32:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return np.asarray((255 * r, 255 * g, 255 * b), dtype=np.float32)


def _bilinear(src: np.ndarray, qx: np.ndarray, qy: np.ndarray, *, zero_outside: bool) -> F32:
    """Sample ``src`` (h, w) or (h, w, c) bilinearly at float positions (pixel centres at integers).

    Outside the image the value is 0 (``zero_outside``) or the nearest edge value.
    """
    h, w = src.shape[:2]
    x0f, y0f = np.floor(qx), np.floor(qy)
    fx, fy = (qx - x0f).astype(np.float32), (qy - y0f).astype(np.float32)
    x0, y0 = x0f.astype(np.intp), y0f.astype(np.intp)
    out: F32 | None = None
    for dx, dy, wgt in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        xi, yi = x0 + dx, y0 + dy
        if zero_outside:
            wgt = wgt * ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h))
        vals = src[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        term = vals * (wgt[..., None] if src.ndim == 3 else wgt)
        out = term if out is None else out + term
    assert out is not None
    return out.astype(np.float32, copy=False)


def _translation(x: float, y: float) -> F64:
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]])


def _rigid(anchor: tuple[float, float], joint: F64, angle: float) -> F64:
    """Affine (3x3) mapping sprite pixel ``anchor`` to ``joint`` and the sprite x axis to ``angle``."""
    c, s = math.cos(angle), math.sin(angle)
    ax, ay = anchor
    return np.array([[c, -s, joint[0] - (c * ax - s * ay)], [s, c, joint[1] - (s * ax + c * ay)], [0.0, 0.0, 1.0]])


# ------------------------------------------------------------------------------ layers and rendering


@dataclass(frozen=True)
class _Sprite:
    """A rigid surface: smooth texture, soft coverage, one label and instance id."""

    rgb: F32  # (h, w, 3) in 0..255, defined over the whole rectangle (also where alpha is 0)
    alpha: F32  # (h, w) coverage in 0..1; the surface covers a pixel where sampled alpha > 0.5
    label: int
    instance: int
    anchor: tuple[float, float] = (0.0, 0.0)  # sprite pixel that sits on the layer's joint


@dataclass(frozen=True)
class _Placed:
    owner: int  # unique id of the layer over the whole clip (0 = background)
    sprite: _Sprite
    now: F64  # sprite -> frame affine at t
    before: F64  # sprite -> frame affine at t-1


@dataclass(frozen=True)
class _Figure2D:
    """Keypoints of one figure in a frame, with the layers each keypoint belongs to."""

    instance: int
    points: F64  # (17, 2)
    own: tuple[frozenset[int], ...]  # per keypoint: owners that count as "visible"


class _Panorama:
    """The background plane: an image periodic along x, seen through a camera moving along x."""

    def __init__(self, rgb: F32, label: npt.NDArray[np.uint8], cam0: float, speed: float) -> None:
        self.rgb, self.label, self.cam0, self.speed = rgb, label, cam0, speed

    def cam(self, t: int) -> float:
        return self.cam0 + self.speed * t

    def render(self, t: int, width: int) -> tuple[F32, npt.NDArray[np.uint8]]:
        period = self.rgb.shape[1]
        cam = self.cam(t)
        base = math.floor(cam)
        frac = np.float32(cam - base)
        cols = (base + np.arange(width)) % period
        cols1 = (cols + 1) % period
        rgb = self.rgb[:, cols] * (1 - frac) + self.rgb[:, cols1] * frac
        label = self.label[:, cols1 if frac >= 0.5 else cols]
        return rgb.astype(np.float32, copy=False), label


class _Scene:
    """A background plane plus movers; each mover places its layers for a frame."""

    def __init__(self, width: int, height: int, panorama: _Panorama, movers: list[_Mover]) -> None:
        self.width, self.height, self.panorama = width, height, panorama
        self.movers = sorted(movers, key=lambda m: m.depth)  # back to front
        next_owner = 1
        for mover in self.movers:
            next_owner = mover.assign_owners(next_owner)


class _Mover:
    """Something drawn over the background: a car or a figure."""

    depth: float  # ground-contact y; larger is nearer, drawn later

    def assign_owners(self, first: int) -> int:
        raise NotImplementedError

    def place(self, t: int) -> tuple[list[_Placed], _Figure2D | None]:
        raise NotImplementedError


def _render(
    scene: _Scene, t: int, prev_owner: npt.NDArray[np.int32] | None
) -> tuple[FrameTruth, npt.NDArray[np.int32]]:
    h, w = scene.height, scene.width
    rgb, label = scene.panorama.render(t, w)
    instance = label.astype(np.int32)
    owner = np.zeros((h, w), np.int32)
    flow = np.zeros((h, w, 2), np.float32)
    if t > 0:
        flow[..., 0] = scene.panorama.cam(t) - scene.panorama.cam(t - 1)
    figures: list[_Figure2D] = []
    for mover in scene.movers:
        layers, figure = mover.place(t)
        for layer in layers:
            _draw(layer, rgb, label, instance, owner, flow if t > 0 else None)
        if figure is not None:
            figures.append(figure)
    if prev_owner is None:
        valid = np.zeros((h, w), bool)
    else:
        valid = _flow_valid(flow, owner, prev_owner)
    keypoints = [_keypoint_record(fig, owner) for fig in figures]
    frame = FrameTruth(
        rgb=np.clip(np.rint(rgb), 0, 255).astype(np.uint8),
        label=label,
        instance=instance,
        flow=flow,
        flow_valid=valid,
        keypoints=keypoints,
    )
    return frame, owner


def _draw(
    layer: _Placed,
    rgb: F32,
    label: npt.NDArray[np.uint8],
    instance: npt.NDArray[np.int32],
    owner: npt.NDArray[np.int32],
    flow: F32 | None,
) -> None:
    sprite = layer.sprite
    sh, sw = sprite.alpha.shape
    h, w = owner.shape
    corners = layer.now @ np.array([[-1.0, sw, -1.0, sw], [-1.0, -1.0, sh, sh], [1.0, 1.0, 1.0, 1.0]])
    x0, x1 = max(0, math.floor(corners[0].min())), min(w, math.ceil(corners[0].max()) + 1)
    y0, y1 = max(0, math.floor(corners[1].min())), min(h, math.ceil(corners[1].max()) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    inv = np.linalg.inv(layer.now)
    qx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    qy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    cover = _bilinear(sprite.alpha, qx, qy, zero_outside=True) > 0.5
    if not cover.any():
        return
    rgb[y0:y1, x0:x1][cover] = _bilinear(sprite.rgb, qx[cover], qy[cover], zero_outside=False)
    label[y0:y1, x0:x1][cover] = sprite.label
    instance[y0:y1, x0:x1][cover] = sprite.instance
    owner[y0:y1, x0:x1][cover] = layer.owner
    if flow is not None:
        m = layer.before @ inv
        px, py = xs[cover], ys[cover]
        region = flow[y0:y1, x0:x1]
        region[cover] = np.stack(
            (m[0, 0] * px + m[0, 1] * py + m[0, 2] - px, m[1, 0] * px + m[1, 1] * py + m[1, 2] - py), axis=-1
        )


def _flow_valid(flow: F32, owner: npt.NDArray[np.int32], prev_owner: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
    """True where p + flow[p] lies in frame t-1 and all its bilinear neighbours show p's surface."""
    h, w = owner.shape
    eps = 1e-4
    xs = np.arange(w, dtype=np.float64)[None, :] + flow[..., 0]
    ys = np.arange(h, dtype=np.float64)[:, None] + flow[..., 1]
    inside = (xs >= -eps) & (xs <= w - 1 + eps) & (ys >= -eps) & (ys <= h - 1 + eps)
    xs, ys = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
    x0, y0 = np.floor(xs).astype(np.intp), np.floor(ys).astype(np.intp)
    fx, fy = xs - x0, ys - y0
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    nx, ny = fx <= eps, fy <= eps  # the +1 neighbour has (almost) no weight
    ok = prev_owner[y0, x0] == owner
    ok &= nx | (prev_owner[y0, x1] == owner)
    ok &= ny | (prev_owner[y1, x0] == owner)
    ok &= nx | ny | (prev_owner[y1, x1] == owner)
    return inside & ok


def _keypoint_record(fig: _Figure2D, owner: npt.NDArray[np.int32]) -> dict:
    h, w = owner.shape
    points = []
    for (x, y), own in zip(fig.points, fig.own, strict=True):
        xi, yi = round(float(x)), round(float(y))
        if not (0 <= xi < w and 0 <= yi < h):
            v = 0
        else:
            v = 2 if int(owner[yi, xi]) in own else 1
        points.append([float(x), float(y), v])
    return {"instance_id": fig.instance, "keypoints": points}


def _loop_x(x0: float, speed: float, t: int, width: int, margin: float) -> float:
    """Screen x of an object moving at ``speed`` that re-enters on the other side after leaving."""
    span = width + 2.0 * margin
    return (x0 + margin + speed * t) % span - margin


# ------------------------------------------------------------------------------ articulated figure


class _Figure(_Mover):
    """An articulated person: capsule limbs, torso and head, posed by forward kinematics.

    ``view="front"`` faces the camera (the person's left is image right) and dances;
    ``view="side"`` walks along x facing ``facing`` (+1 right, -1 left).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        height: float,
        view: Literal["front", "side"],
        facing: int,
        inst: int,
        root_x: Callable[[int], float],
        ground_y: float,
        walk_speed: float = 0.0,
    ) -> None:
        hb = height
        self.view, self.facing, self.inst = view, facing, inst
        self.root_x, self.ground_y, self.depth = root_x, ground_y, ground_y
        front = view == "front"
        self.len_torso, self.neck = 0.30 * hb, 0.035 * hb
        self.head_r = max(2.0, 0.065 * hb)
        self.lens = {"upperarm": 0.16 * hb, "lowerarm": 0.15 * hb, "thigh": 0.23 * hb, "shin": 0.23 * hb}
        self.lens["foot"] = (0.045 if front else 0.07) * hb
        self.radii = {
            "upperarm": max(1.0, 0.03 * hb),
            "lowerarm": max(1.0, 0.026 * hb),
            "thigh": max(1.0, 0.042 * hb),
            "shin": max(1.0, 0.034 * hb),
            "foot": max(1.0, 0.022 * hb),
        }
        self.shoulder_dx = (0.105 if front else 0.012) * hb
        self.hip_dx = (0.06 if front else 0.008) * hb
        self.shoulder_drop = 0.04 * hb

        skin = _colour([(241, 194, 160), (224, 172, 125), (198, 134, 90), (141, 85, 54), (95, 60, 40)][rng.integers(5)])
        hair = _colour([(30, 25, 20), (70, 45, 25), (120, 90, 50), (20, 20, 20), (170, 150, 110)][rng.integers(5)])
        shirt = _hsv(rng.random(), rng.uniform(0.35, 0.9), rng.uniform(0.45, 0.95))
        shirt2 = _hsv(rng.random(), rng.uniform(0.2, 0.8), rng.uniform(0.3, 1.0))
        pants = _colour([(45, 60, 110), (35, 35, 40), (120, 100, 70), (80, 80, 85), (60, 70, 50)][rng.integers(5)])
        shoes = _colour([(25, 25, 25), (90, 55, 30), (230, 230, 230)][rng.integers(3)])
        long_sleeves = bool(rng.random() < 0.5)
        stripes = bool(rng.random() < 0.5)

        sprites: dict[str, _Sprite] = {}
        for side in ("l", "r"):
            shade = 1.0 if front or side == self._near() else 0.8
            sprites[f"upperarm_{side}"] = self._capsule(
                rng, "upperarm", shirt * shade, None, shirt2 if stripes else None
            )
            fore = shirt * shade if long_sleeves else skin * shade
            sprites[f"lowerarm_{side}"] = self._capsule(rng, "lowerarm", fore, skin * shade, None)
            sprites[f"thigh_{side}"] = self._capsule(rng, "thigh", pants * shade, None, None)
            sprites[f"shin_{side}"] = self._capsule(rng, "shin", pants * shade, None, None)
            sprites[f"foot_{side}"] = self._capsule(rng, "foot", shoes * shade, None, None)
        sprites["torso"] = self._torso(rng, shirt, shirt2 if stripes else None, pants)
        sprites["head"] = self._head(rng, skin, hair)
        near, far = self._near(), self._far()
        if front:
            order = ["thigh_r", "shin_r", "foot_r", "thigh_l", "shin_l", "foot_l", "torso", "head"]
            order += ["upperarm_r", "lowerarm_r", "upperarm_l", "lowerarm_l"]
        else:
            order = [f"upperarm_{far}", f"lowerarm_{far}", f"thigh_{far}", f"shin_{far}", f"foot_{far}"]
            order += ["torso", "head", f"thigh_{near}", f"shin_{near}", f"foot_{near}"]
            order += [f"upperarm_{near}", f"lowerarm_{near}"]
        self.order = order
        self.sprites = sprites
        self.owners: dict[str, int] = {}

        # motion parameters
        if front:
            self.w1 = 2 * math.pi / rng.uniform(70, 120)
            self.w2 = 2 * math.pi / rng.uniform(50, 100)
            self.w3 = 2 * math.pi / rng.uniform(90, 160)
            self.arm_c = rng.uniform(0.5, 1.3, 2)
            self.arm_a = rng.uniform(0.35, 0.55, 2)
            self.ph = rng.uniform(0, 2 * math.pi, 10)
        else:
            self.stride = 1.3 * hb * rng.uniform(0.9, 1.1)
            self.walk_speed = walk_speed
            self.ph = rng.uniform(0, 2 * math.pi, 1)

    # -- construction

    def _near(self) -> str:
        return "r" if self.facing > 0 else "l"

    def _far(self) -> str:
        return "l" if self.facing > 0 else "r"

    def _capsule(
        self,
        rng: np.random.Generator,
        part: str,
        colour: F32,
        end_colour: F32 | None,
        stripe_colour: F32 | None,
    ) -> _Sprite:
        length, r = self.lens[part], self.radii[part]
        pad = 3.0
        sw, sh = math.ceil(length + 2 * r + 2 * pad), math.ceil(2 * r + 2 * pad)
        anchor = (r + pad, (sh - 1) / 2.0)
        ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
        a, b = xs - anchor[0], ys - anchor[1]
        dist = np.hypot(a - np.clip(a, 0, length), b)
        alpha = np.clip(0.5 + (r - dist), 0.0, 1.0).astype(np.float32)
        shade = 0.8 + 0.2 * np.clip(1.0 - (b / (r + 0.5)) ** 2, 0.0, 1.0)
        tex = np.ones((sh, sw, 3), np.float32) * colour
        if stripe_colour is not None:
            period = max(6.0, 0.8 * length / 2)
            sw_t = _smoothstep(-0.3, 0.3, np.sin(2 * math.pi * a / period))[..., None]
            tex = tex * (1 - 0.6 * sw_t) + stripe_colour * (0.6 * sw_t)
        if end_colour is not None:
            hand = _smoothstep(length - 0.25 * length - 1.0, length - 0.25 * length + 1.0, a)[..., None]
            tex = tex * (1 - hand) + end_colour * hand
        grain = 1.0 + 0.06 * _noise(rng, sh, sw, max(3.0, 1.2 * r))
        tex = tex * (shade * grain)[..., None]
        return _Sprite(tex.astype(np.float32), alpha, PERSON, self.inst, anchor)

    def _torso(self, rng: np.random.Generator, shirt: F32, shirt2: F32 | None, pants: F32) -> _Sprite:
        front = self.view == "front"
        lt = self.len_torso
        hb = lt / 0.30
        top_hw = self.shoulder_dx + self.radii["upperarm"] + 0.01 * hb if front else 0.085 * hb
        bot_hw = self.hip_dx + self.radii["thigh"] + 0.005 * hb if front else 0.08 * hb
        ext_b, ext_t = 0.05 * hb, 0.01 * hb
        pad = 3.0
        sw = math.ceil(lt + ext_b + ext_t + 2 * pad)
        sh = math.ceil(2 * max(top_hw, bot_hw) + 2 * pad)
        anchor = (ext_b + pad, (sh - 1) / 2.0)
        ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
        a, b = xs - anchor[0], ys - anchor[1]  # a: along the spine (pelvis -> neck), b: image right
        half = bot_hw + (top_hw - bot_hw) * np.clip(a / lt, 0, 1)
        alpha = _box(a, -ext_b, lt + ext_t) * np.clip(0.5 + half - np.abs(b), 0, 1)
        alpha = _round_corners(alpha, 0.12 * 2 * top_hw)
        shade = 0.78 + 0.22 * np.clip(1.0 - (b / (top_hw + 0.5)) ** 2, 0.0, 1.0)
        tex = np.ones((sh, sw, 3), np.float32) * shirt
        if shirt2 is not None:
            period = max(6.0, lt / 4)
            sw_t = _smoothstep(-0.3, 0.3, np.sin(2 * math.pi * a / period))[..., None]
            tex = tex * (1 - 0.6 * sw_t) + shirt2 * (0.6 * sw_t)
        waist = _smoothstep(0.1 * lt + 1.0, 0.1 * lt - 1.0, a)[..., None]
        tex = tex * (1 - waist) + pants * waist
        grain = 1.0 + 0.05 * _noise(rng, sh, sw, max(3.0, 0.15 * lt))
        tex = tex * (shade * grain)[..., None]
        return _Sprite(tex.astype(np.float32), alpha, PERSON, self.inst, anchor)

    def _face_points(self) -> dict[str, tuple[float, float]]:
        """Face keypoints in head-sprite local coordinates (a: neck -> crown, b: image right)."""
        rh, ac, f = self.head_r, self.neck + self.head_r, self.facing
        if self.view == "front":
            return {
                "nose": (ac - 0.15 * rh, 0.0),
                "left_eye": (ac + 0.15 * rh, 0.38 * rh),
                "right_eye": (ac + 0.15 * rh, -0.38 * rh),
                "left_ear": (ac, 0.8 * rh),
                "right_ear": (ac, -0.8 * rh),
            }
        near, far = ("right", "left") if f > 0 else ("left", "right")
        return {
            "nose": (ac - 0.05 * rh, f * 0.8 * rh),
            f"{near}_eye": (ac + 0.15 * rh, f * 0.5 * rh),
            f"{far}_eye": (ac + 0.17 * rh, f * 0.6 * rh),
            f"{near}_ear": (ac, -f * 0.1 * rh),
            f"{far}_ear": (ac + 0.03 * rh, -f * 0.15 * rh),
        }

    def _head(self, rng: np.random.Generator, skin: F32, hair: F32) -> _Sprite:
        rh, nl = self.head_r, self.neck
        pad = 3.0
        sw = math.ceil(nl + 2 * rh + 2 * pad)
        sh = math.ceil(2 * rh + 2 * pad)
        anchor = (pad, (sh - 1) / 2.0)
        ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
        a, b = xs - anchor[0], ys - anchor[1]
        ac = nl + rh
        disc = np.clip(0.5 + rh - np.hypot(a - ac, b), 0, 1)
        neck_r = max(1.0, 0.4 * rh)
        neck = np.clip(0.5 + neck_r - np.hypot(a - np.clip(a, 0, ac), b), 0, 1)
        alpha = np.maximum(disc, neck).astype(np.float32)
        tex = np.ones((sh, sw, 3), np.float32) * skin
        soft = max(1.0, 0.12 * rh)
        if self.view == "front":
            cap = _smoothstep(ac + 0.35 * rh - soft, ac + 0.35 * rh + soft, a + 0.25 * np.abs(b) ** 2 / rh)
        else:
            back = _smoothstep(0.0 + soft, -soft, self.facing * b + 0.1 * rh)
            cap = np.maximum(
                _smoothstep(ac + 0.3 * rh - soft, ac + 0.3 * rh + soft, a),
                back * _smoothstep(ac - 0.6 * rh, ac - 0.4 * rh, a),
            )
        cap = cap[..., None]
        tex = tex * (1 - cap) + hair * cap
        eye_r = max(0.7, 0.12 * rh)
        for name, (pa, pb) in self._face_points().items():
            if name.endswith("eye"):
                dot = np.clip(0.5 + (eye_r - np.hypot(a - pa, b - pb)) / 0.8, 0, 1)[..., None]
                tex = tex * (1 - 0.85 * dot) + _colour((30, 25, 25)) * (0.85 * dot)
        mouth_a = ac - 0.5 * rh
        mouth_b = 0.0 if self.view == "front" else self.facing * 0.6 * rh
        mouth = np.clip(0.5 + (max(0.6, 0.08 * rh) - np.hypot((a - mouth_a) * 2.5, b - mouth_b) / 2.5), 0, 1)
        tex = tex * (1 - 0.5 * mouth[..., None]) + _colour((150, 50, 50)) * (0.5 * mouth[..., None])
        shade = 0.85 + 0.15 * np.clip(1.0 - ((a - ac) ** 2 + b**2) / (rh + 0.5) ** 2, 0, 1)
        grain = 1.0 + 0.03 * _noise(rng, sh, sw, max(3.0, 0.5 * rh))
        tex = tex * (shade * grain)[..., None]
        return _Sprite(tex.astype(np.float32), alpha, PERSON, self.inst, anchor)

    # -- motion

    def _angles(self, t: int) -> dict[str, float]:
        """Joint angles (radians); limb angles are measured from straight down, positive toward +x."""
        if self.view == "front":
            ph, w1, w2, w3 = self.ph, self.w1, self.w2, self.w3
            s = math.sin
            hip_l, hip_r = 0.1 + 0.07 * s(w1 * t + ph[4]), -(0.1 + 0.07 * s(w1 * t + ph[5]))
            kn_l, kn_r = -(0.1 + 0.08 * s(w2 * t + ph[6])), 0.1 + 0.08 * s(w2 * t + ph[7])
            return {
                "lean": 0.08 * s(w3 * t + ph[8]),
                "tilt": 0.15 * s(w2 * t + ph[9]),
                "sh_l": self.arm_c[0] + self.arm_a[0] * s(w1 * t + ph[0]),
                "sh_r": -(self.arm_c[1] + self.arm_a[1] * s(w1 * t + ph[1])),
                "el_l": 0.5 + 0.4 * s(w2 * t + ph[2]),
                "el_r": -(0.5 + 0.4 * s(w2 * t + ph[3])),
                "hip_l": hip_l,
                "hip_r": hip_r,
                "kn_l": kn_l,
                "kn_r": kn_r,
                "ft_l": (math.pi / 2 - 0.1) - (hip_l + kn_l),
                "ft_r": -(math.pi / 2 - 0.1) - (hip_r + kn_r),
            }
        f = self.facing
        psi = float(self.ph[0]) + 2 * math.pi * self.walk_speed * t / self.stride
        near, far = self._near(), self._far()
        out = {"lean": f * 0.05, "tilt": 0.0}
        for side, p in ((near, psi), (far, psi + math.pi)):
            hip = f * 0.42 * math.sin(p)
            knee = -f * (0.08 + 0.65 * ((1 + math.cos(p + 0.3)) / 2) ** 3)
            out[f"hip_{side}"] = hip
            out[f"kn_{side}"] = knee
            out[f"ft_{side}"] = f * math.pi / 2 - 0.6 * (hip + knee)
            out[f"sh_{side}"] = -f * 0.35 * math.sin(p)
            out[f"el_{side}"] = f * (0.25 + 0.12 * (1 - math.sin(p)))
        return out

    def _skeleton(self, t: int, root_x: float) -> tuple[dict[str, F64], dict[str, float]]:
        """Joint positions in frame coordinates and the image angle of each layer's axis."""
        ang = self._angles(t)
        lean = ang["lean"]
        up = np.array([math.sin(lean), -math.cos(lean)])
        right = np.array([math.cos(lean), math.sin(lean)])

        def down(phi: float) -> F64:
            return np.array([math.sin(phi), math.cos(phi)])

        j: dict[str, F64] = {"pelvis": np.zeros(2), "neck": self.len_torso * up}
        for side, sgn in (("l", 1.0), ("r", -1.0)):
            sh = j["neck"] - self.shoulder_drop * up + sgn * self.shoulder_dx * right
            el = sh + self.lens["upperarm"] * down(ang[f"sh_{side}"] + lean)
            wr = el + self.lens["lowerarm"] * down(ang[f"sh_{side}"] + ang[f"el_{side}"] + lean)
            hip = sgn * self.hip_dx * right
            kn = hip + self.lens["thigh"] * down(ang[f"hip_{side}"])
            an = kn + self.lens["shin"] * down(ang[f"hip_{side}"] + ang[f"kn_{side}"])
            toe = an + self.lens["foot"] * down(ang[f"hip_{side}"] + ang[f"kn_{side}"] + ang[f"ft_{side}"])
            j.update({f"sh_{side}": sh, f"el_{side}": el, f"wr_{side}": wr})
            j.update({f"hip_{side}": hip, f"kn_{side}": kn, f"an_{side}": an, f"toe_{side}": toe})
        lowest = max(max(j[f"an_{s}"][1] + self.radii["shin"], j[f"toe_{s}"][1] + self.radii["foot"]) for s in "lr")
        offset = np.array([root_x, self.ground_y - lowest])
        for key in j:
            j[key] = j[key] + offset
        head_angle = -math.pi / 2 + lean + ang["tilt"]
        return j, {"head": head_angle}

    def assign_owners(self, first: int) -> int:
        for i, name in enumerate(self.order):
            self.owners[name] = first + i
        return first + len(self.order)

    def _affines(self, t: int, root_x: float) -> tuple[dict[str, F64], F64]:
        j, extra = self._skeleton(t, root_x)
        segments = {"torso": ("pelvis", "neck")}
        for side in "lr":
            segments[f"upperarm_{side}"] = (f"sh_{side}", f"el_{side}")
            segments[f"lowerarm_{side}"] = (f"el_{side}", f"wr_{side}")
            segments[f"thigh_{side}"] = (f"hip_{side}", f"kn_{side}")
            segments[f"shin_{side}"] = (f"kn_{side}", f"an_{side}")
            segments[f"foot_{side}"] = (f"an_{side}", f"toe_{side}")
        affines: dict[str, F64] = {}
        for name, (start, end) in segments.items():
            d = j[end] - j[start]
            affines[name] = _rigid(self.sprites[name].anchor, j[start], math.atan2(d[1], d[0]))
        affines["head"] = _rigid(self.sprites["head"].anchor, j["neck"], extra["head"])
        head = affines["head"]
        anchor = self.sprites["head"].anchor
        face = {
            name: head[:2, :2] @ np.array([anchor[0] + pa, anchor[1] + pb]) + head[:2, 2]
            for name, (pa, pb) in self._face_points().items()
        }
        names = {"shoulder": "sh", "elbow": "el", "wrist": "wr", "hip": "hip", "knee": "kn", "ankle": "an"}
        points = []
        for kp in COCO_KEYPOINTS:
            if kp in face:
                points.append(face[kp])
            else:
                side, joint = kp.split("_")
                points.append(j[f"{names[joint]}_{side[0]}"])
        return affines, np.array(points)

    def _own_sets(self) -> tuple[frozenset[int], ...]:
        o = self.owners
        sets = []
        for kp in COCO_KEYPOINTS:
            if kp == "nose" or kp.endswith(("eye", "ear")):
                sets.append(frozenset({o["head"]}))
                continue
            side, joint = kp.split("_")
            s = side[0]
            parts = {
                "shoulder": ("torso", f"upperarm_{s}"),
                "elbow": (f"upperarm_{s}", f"lowerarm_{s}"),
                "wrist": (f"lowerarm_{s}",),
                "hip": ("torso", f"thigh_{s}"),
                "knee": (f"thigh_{s}", f"shin_{s}"),
                "ankle": (f"shin_{s}", f"foot_{s}"),
            }[joint]
            sets.append(frozenset(o[p] for p in parts))
        return tuple(sets)

    def place(self, t: int) -> tuple[list[_Placed], _Figure2D | None]:
        x_now = self.root_x(t)
        now, points = self._affines(t, x_now)
        before, _ = self._affines(t - 1, self.root_x_before(t))
        layers = [_Placed(self.owners[n], self.sprites[n], now[n], before[n]) for n in self.order]
        return layers, _Figure2D(self.inst, points, self._own_sets())

    def root_x_before(self, t: int) -> float:
        """Root x one frame earlier, continuous with ``root_x(t)`` (no wrap-around jump)."""
        return self.root_x(t - 1)


class _Walker(_Figure):
    """A side-view figure walking along a sidewalk, looping through the frame."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        height: float,
        facing: int,
        inst: int,
        ground_y: float,
        world_speed: float,
        screen_speed: float,
        x0: float,
        width: int,
    ) -> None:
        self.screen_speed = screen_speed
        margin = 1.2 * height + 2 * abs(screen_speed) + 4

        def root_x(t: int) -> float:
            return _loop_x(x0, screen_speed, t, width, margin)

        super().__init__(
            rng,
            height=height,
            view="side",
            facing=facing,
            inst=inst,
            root_x=root_x,
            ground_y=ground_y,
            walk_speed=world_speed,
        )

    def root_x_before(self, t: int) -> float:
        return self.root_x(t) - self.screen_speed


# ------------------------------------------------------------------------------ cars


class _Car(_Mover):
    """A textured car sprite translating at a constant screen speed along a lane."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        length: float,
        bottom: float,
        speed: float,
        x0: float,
        width: int,
        margin: float,
        inst: int,
    ) -> None:
        self.sprite = _car_sprite(rng, length, facing=1 if speed > 0 else -1, inst=inst)
        self.bottom, self.speed, self.x0, self.width = bottom, speed, x0, width
        self.depth = bottom
        # cars of a lane share one loop (same margin) so their spacing never changes
        if margin < self.sprite.alpha.shape[1] + abs(speed) + 1:
            raise ValueError("loop margin too small: a car would jump while visible")
        self.margin = margin
        self.owner = -1

    def assign_owners(self, first: int) -> int:
        self.owner = first
        return first + 1

    def place(self, t: int) -> tuple[list[_Placed], _Figure2D | None]:
        x = _loop_x(self.x0, self.speed, t, self.width, self.margin)
        y = self.bottom - self.sprite.anchor[1]
        now = _translation(x, y)
        before = _translation(x - self.speed, y)
        return [_Placed(self.owner, self.sprite, now, before)], None


def _car_sprite(rng: np.random.Generator, length: float, *, facing: int, inst: int) -> _Sprite:
    """A side-view car (body, cabin with windows, wheels, lights); anchor marks the ground line."""
    lc, hc = length, 0.37 * length
    pad = 3
    sw, sh = math.ceil(lc) + 2 * pad, math.ceil(hc) + 2 * pad
    ss = 4  # supersampling for the polygon masks
    shift = 4  # fractional bits for cv2 drawing

    def mask(
        draw: Callable[[np.ndarray, Callable[[float, float], tuple[int, int]], Callable[[float], int]], None],
    ) -> F32:
        big = np.zeros((sh * ss, sw * ss), np.uint8)

        def pt(u: float, v: float) -> tuple[int, int]:
            return (round((pad + u + 0.5) * ss * 16 - 8), round((pad + v + 0.5) * ss * 16 - 8))

        def rad(r: float) -> int:
            return round(r * ss * 16)

        draw(big, pt, rad)
        small = cv2.resize(big.astype(np.float32) / 255.0, (sw, sh), interpolation=cv2.INTER_AREA)
        return np.asarray(small, np.float32)

    wheel_r = 0.19 * hc
    wheels = (0.2 * lc, 0.8 * lc)
    wheel_v = hc - wheel_r

    def body(img: np.ndarray, pt: Callable[[float, float], tuple[int, int]], rad: Callable[[float], int]) -> None:
        r = 0.12 * hc
        top, bot = 0.38 * hc, hc - 0.4 * wheel_r
        poly = [
            pt(r, top),
            pt(lc - r, top),
            pt(lc, top + r),
            pt(lc, bot - r),
            pt(lc - r, bot),
            pt(r, bot),
            pt(0, bot - r),
            pt(0, top + r),
        ]
        cv2.fillPoly(img, [np.array(poly, np.int32)], 255, cv2.LINE_8, shift)
        for cu, cv_ in ((r, top + r), (lc - r, top + r), (lc - r, bot - r), (r, bot - r)):
            cv2.circle(img, pt(cu, cv_), rad(r), 255, -1, cv2.LINE_8, shift)
        cabin = [pt(0.22 * lc, top + 1), pt(0.32 * lc, 0.02 * hc), pt(0.62 * lc, 0.02 * hc), pt(0.78 * lc, top + 1)]
        cv2.fillPoly(img, [np.array(cabin, np.int32)], 255, cv2.LINE_8, shift)

    def glass(img: np.ndarray, pt: Callable[[float, float], tuple[int, int]], rad: Callable[[float], int]) -> None:
        top, bot = 0.1 * hc, 0.36 * hc
        rear = [pt(0.27 * lc, bot), pt(0.34 * lc, top), pt(0.46 * lc, top), pt(0.46 * lc, bot)]
        front = [pt(0.49 * lc, bot), pt(0.49 * lc, top), pt(0.6 * lc, top), pt(0.72 * lc, bot)]
        cv2.fillPoly(img, [np.array(rear, np.int32), np.array(front, np.int32)], 255, cv2.LINE_8, shift)

    def tyres(img: np.ndarray, pt: Callable[[float, float], tuple[int, int]], rad: Callable[[float], int]) -> None:
        for u in wheels:
            cv2.circle(img, pt(u, wheel_v), rad(wheel_r), 255, -1, cv2.LINE_8, shift)

    def hubs(img: np.ndarray, pt: Callable[[float, float], tuple[int, int]], rad: Callable[[float], int]) -> None:
        for u in wheels:
            cv2.circle(img, pt(u, wheel_v), rad(0.5 * wheel_r), 255, -1, cv2.LINE_8, shift)

    smooth = max(0.7, 0.006 * lc)
    m_body = _round_corners(mask(body), 0.06 * hc)
    m_glass = cv2.GaussianBlur(mask(glass), (0, 0), smooth)
    m_tyre = mask(tyres)
    m_hub = cv2.GaussianBlur(mask(hubs), (0, 0), smooth)

    if rng.random() < 0.4:
        paint = _colour([(235, 235, 235), (25, 25, 30), (160, 162, 168), (95, 95, 100)][rng.integers(4)])
    else:
        paint = _hsv(rng.random(), rng.uniform(0.4, 0.9), rng.uniform(0.35, 0.9))
    ys, xs = np.mgrid[0:sh, 0:sw].astype(np.float32)
    u, v = xs - pad, ys - pad
    shade = 1.05 - 0.3 * np.clip(v / hc, 0, 1)
    highlight = 0.12 * np.exp(-(((v - 0.47 * hc) / max(1.0, 0.04 * hc)) ** 2))
    tex = paint * (shade + highlight)[..., None] * (1 + 0.03 * _noise(rng, sh, sw, max(3.0, 0.1 * hc)))[..., None]
    sky_ref = _colour((60, 75, 95)) + _colour((60, 60, 55)) * np.clip(1 - v / (0.4 * hc), 0, 1)[..., None]
    tex = tex * (1 - m_glass[..., None]) + sky_ref * m_glass[..., None]
    lamp_front = _box(u, 0.955 * lc, 1.0 * lc) * _box(v, 0.45 * hc, 0.57 * hc)
    lamp_rear = _box(u, 0.0, 0.04 * lc) * _box(v, 0.45 * hc, 0.57 * hc)
    lamps = cv2.GaussianBlur((lamp_front + lamp_rear).astype(np.float32), (0, 0), smooth)
    lamp_col = np.where((u > 0.5 * lc)[..., None], _colour((250, 240, 190)), _colour((200, 30, 30)))
    tex = tex * (1 - lamps[..., None]) + lamp_col * lamps[..., None]
    tyre_col = _colour((28, 28, 30)) * (1 - m_hub[..., None]) + _colour((170, 170, 175)) * m_hub[..., None]
    m_tyre_s = cv2.GaussianBlur(m_tyre, (0, 0), smooth)
    tex = tex * (1 - m_tyre_s[..., None]) + tyre_col * m_tyre_s[..., None]
    alpha = np.maximum(m_body, m_tyre).astype(np.float32)
    if facing < 0:
        tex, alpha = tex[:, ::-1], alpha[:, ::-1]
    anchor = (0.0, float(pad + hc))  # anchor y: the ground line (bottom of the tyres)
    return _Sprite(np.ascontiguousarray(tex, np.float32), np.ascontiguousarray(alpha), CAR, inst, anchor)


# ------------------------------------------------------------------------------ street scene


class _PanoramaBuilder:
    """Paints soft-edged regions into a horizontally periodic panorama (RGB + labels)."""

    def __init__(self, h: int, period: int) -> None:
        self.h, self.p = h, period
        self.rgb = np.zeros((h, period, 3), np.float32)
        self.label = np.zeros((h, period), np.uint8)

    def paint(self, y0: int, x0: int, alpha: np.ndarray, colour: np.ndarray, lab: int) -> None:
        """Blend ``colour`` (vector or patch) with coverage ``alpha`` at (y0, x0), wrapping along x."""
        h, w = alpha.shape
        top, bottom = max(0, y0), min(self.h, y0 + h)
        if top >= bottom:
            return
        a = alpha[top - y0 : bottom - y0]
        col = colour[top - y0 : bottom - y0] if np.ndim(colour) == 3 else colour
        cols = (x0 + np.arange(w)) % self.p
        region = self.rgb[top:bottom][:, cols]
        self.rgb[top:bottom, cols] = region + (col - region) * a[..., None]
        old = self.label[top:bottom][:, cols]
        self.label[top:bottom, cols] = np.where(a > 0.5, np.uint8(lab), old)


def _street_panorama(rng: np.random.Generator, h: int, period: int, s: float) -> tuple[F32, npt.NDArray[np.uint8]]:
    pb = _PanoramaBuilder(h, period)
    ys = (np.arange(h, dtype=np.float32) + 0.5)[:, None] / h  # fraction of the height
    full = np.ones((h, period), np.float32)

    # sky: gradient and soft clouds
    grad = np.clip(ys / 0.5, 0, 1)[..., None]
    sky = _colour((70, 120, 200)) * (1 - grad) + _colour((180, 208, 236)) * grad
    clouds = _smoothstep(0.35, 1.3, _noise(rng, h, period, 0.15 * h) + 0.3 * _noise(rng, h, period, 0.05 * h))
    clouds = (clouds * np.clip(1.2 - ys / 0.4, 0, 1))[..., None]
    sky = sky * (1 - 0.85 * clouds) + _colour((246, 246, 250)) * (0.85 * clouds)
    pb.paint(0, 0, full, sky * np.ones((1, period, 1), np.float32), SKY)

    # buildings along the street
    base = round(0.52 * h)
    widths: list[float] = []
    while sum(widths) < period:
        widths.append(rng.uniform(0.35, 0.9) * h)
        if rng.random() < 0.25:
            widths.append(-rng.uniform(0.05, 0.2) * h)  # a gap showing the sky
    scale = period / sum(abs(x) for x in widths)
    x = 0.0
    palette = [(200, 185, 160), (150, 150, 155), (170, 95, 75), (215, 210, 200), (120, 110, 100), (190, 160, 120)]
    for wd in widths:
        wpx = abs(wd) * scale
        if wd > 0:
            _paint_building(pb, rng, round(x), round(wpx), base, palette, s)
        x += wpx

    # sidewalks and road
    rows = np.arange(h, dtype=np.float32)[:, None] + 0.5
    far_sw, road_top, road_bot = 0.50 * h, 0.56 * h, 0.92 * h
    road = (
        _colour((92, 92, 97))
        * (1 + 0.06 * _noise(rng, h, period, 0.06 * h) + 0.04 * _noise(rng, h, period, 4 * s))[..., None]
    )
    road = road * np.ones((h, period, 3), np.float32)
    xs = np.arange(period, dtype=np.float32)[None, :]
    line_w = max(1.0, 0.012 * h)
    n_dash = max(1, round(period / (0.35 * h)))
    dash = _smoothstep(-0.2, 0.2, np.sin(2 * math.pi * xs * n_dash / period))
    centre = _box(rows, 0.755 * h - line_w / 2, 0.755 * h + line_w / 2) * dash
    edges = _box(rows, road_top + 0.02 * h, road_top + 0.02 * h + 0.6 * line_w) + _box(
        rows, road_bot - 0.02 * h - 0.6 * line_w, road_bot - 0.02 * h
    )
    marks = cv2.GaussianBlur(np.clip(centre + edges * np.ones_like(xs), 0, 1).astype(np.float32), (0, 0), 0.6)
    road = road * (1 - marks[..., None]) + _colour((225, 225, 215)) * marks[..., None]
    road_alpha = _box(rows, road_top, road_bot) * full
    pb.paint(0, 0, road_alpha, road, ROAD)

    slabs = max(4.0, 0.07 * h)
    n_slab = max(1, round(period / slabs))
    joints = _smoothstep(0.5, 0.95, np.cos(2 * math.pi * xs * n_slab / period))
    pave = _colour((178, 172, 165)) * (1 - 0.18 * joints)[..., None] * np.ones((h, 1, 1), np.float32)
    pave = pave * (1 + 0.05 * _noise(rng, h, period, 0.06 * h))[..., None]
    kerb_w = max(2.0, 0.015 * h)
    kerb_far = _smoothstep(road_top - kerb_w, road_top - 0.3 * kerb_w, rows) * full
    kerb_near = _smoothstep(road_bot + kerb_w, road_bot + 0.3 * kerb_w, rows) * full
    pave = pave * (1 + 0.15 * (kerb_far + kerb_near))[..., None]
    sw_alpha = (_box(rows, far_sw, road_top) + _box(rows, road_bot, h + 2.0)) * full
    pb.paint(0, 0, np.clip(sw_alpha, 0, 1), pave, SIDEWALK)

    # hedges at the building line, then trees on the far sidewalk
    n_hedges = max(1, round(period / h * rng.uniform(0.4, 0.8)))
    for _ in range(n_hedges):
        wpx = rng.uniform(0.2, 0.5) * h
        hpx = rng.uniform(0.05, 0.09) * h
        green = _hsv(rng.uniform(0.22, 0.33), rng.uniform(0.45, 0.75), rng.uniform(0.3, 0.55))
        _paint_blob(pb, rng, rng.uniform(0, period), base - 0.4 * hpx, wpx / 2, hpx / 2 + 1, green, s)
    n_trees = max(1, round(period / h * rng.uniform(0.7, 1.3)))
    for _ in range(n_trees):
        cx = rng.uniform(0, period)
        trunk_w = max(1.5, 0.022 * h)
        crown_y = rng.uniform(0.24, 0.34) * h
        trunk_h = round(0.535 * h - crown_y)
        tw = math.ceil(trunk_w + 4)
        yy, xx = np.mgrid[0:trunk_h, 0:tw].astype(np.float32)
        trunk = _box(xx, (tw - trunk_w) / 2, (tw + trunk_w) / 2) * np.clip(yy, 0, 1)
        bark = _colour((95, 70, 45)) * (1 + 0.1 * _noise(rng, trunk_h, tw, 3.0))[..., None]
        pb.paint(round(crown_y), round(cx - tw / 2), trunk.astype(np.float32), bark, VEGETATION)
        rx, ry = rng.uniform(0.06, 0.1) * h, rng.uniform(0.06, 0.09) * h
        green = _hsv(rng.uniform(0.22, 0.33), rng.uniform(0.45, 0.75), rng.uniform(0.35, 0.6))
        for dx, dy, k in ((-0.7, 0.35, 0.8), (0.7, 0.35, 0.8), (0.0, -0.25, 1.0)):
            _paint_blob(pb, rng, cx + dx * rx, crown_y + dy * ry, k * rx, k * ry, green, s)
    # a slight optical blur keeps edges (buildings, joints, markings) band-limited
    return _blur_wrap(pb.rgb, 0.6 * max(1.0, s)), pb.label


def _blur_wrap(img: F32, sigma: float) -> F32:
    """Gaussian blur of an image that is periodic along x."""
    pad = math.ceil(3 * sigma) + 1
    padded = np.pad(img, ((0, 0), (pad, pad), (0, 0)), mode="wrap")
    blurred = cv2.GaussianBlur(padded, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(blurred[:, pad:-pad], dtype=np.float32)


def _paint_building(
    pb: _PanoramaBuilder,
    rng: np.random.Generator,
    x0: int,
    w: int,
    base: int,
    palette: list[tuple[int, int, int]],
    s: float,
) -> None:
    h = pb.h
    top = round(rng.uniform(0.08, 0.38) * h)
    pad = 2
    bh, bw = base - top + pad, w + 2 * pad
    if bw < 4 or bh < 4:
        return
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    u, v = xx - pad, yy - pad  # building-local coordinates, origin at its top-left corner
    alpha = (_box(u, 0, w - 1) * _box(v, 0, bh + 5)).astype(np.float32)
    wall = _colour(palette[rng.integers(len(palette))]) * rng.uniform(0.85, 1.1)
    tex = wall * (1 + 0.05 * _noise(rng, bh, bw, 0.06 * h) + 0.02 * _noise(rng, bh, bw, 4 * s))[..., None]
    cornice = _box(v, 0, max(1.0, 0.02 * h))[..., None]
    tex = tex * (1 - 0.25 * cornice)
    sx, sy = rng.uniform(0.08, 0.12) * h, rng.uniform(0.085, 0.11) * h
    nx = int((w - 0.08 * h) // sx)
    ny = int((base - top - 0.14 * h) // sy)
    if nx >= 1 and ny >= 1:
        gx0 = (w - nx * sx) / 2
        gy0 = 0.05 * h
        cu, cv_ = (u - gx0) / sx, (v - gy0) / sy
        iu, iv = np.floor(cu), np.floor(cv_)
        fu, fv = (cu - iu) * sx, (cv_ - iv) * sy
        inside = (iu >= 0) & (iu < nx) & (iv >= 0) & (iv < ny)
        ww, wh = rng.uniform(0.45, 0.65) * sx, rng.uniform(0.5, 0.7) * sy
        win = _box(fu, (sx - ww) / 2, (sx + ww) / 2) * _box(fv, (sy - wh) / 2, (sy + wh) / 2) * inside
        win = cv2.GaussianBlur(win.astype(np.float32), (0, 0), 0.7 * max(1.0, s))
        lit = rng.random((ny + 1, nx + 1)) < 0.15
        lit_map = lit[np.clip(iv, 0, ny).astype(np.intp), np.clip(iu, 0, nx).astype(np.intp)][..., None]
        glass = np.where(lit_map, _colour((235, 210, 140)), _colour((55, 70, 92)))
        glass = glass + _colour((40, 40, 35)) * np.clip(1 - fv / sy * 1.5, 0, 1)[..., None] * (~lit_map)
        tex = tex * (1 - win[..., None]) + glass * win[..., None]
    pb.paint(top - pad, x0 - pad, alpha, tex.astype(np.float32), BUILDING)


def _paint_blob(
    pb: _PanoramaBuilder,
    rng: np.random.Generator,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    green: F32,
    s: float,
) -> None:
    """Paint a noisy green blob (tree crown or bush) centred at (cx, cy)."""
    pad = 3
    w, h = math.ceil(2 * rx * 1.3) + 2 * pad, math.ceil(2 * ry * 1.3) + 2 * pad
    x0, y0 = round(cx - w / 2), round(cy - h / 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = (xx + x0 - cx) / rx, (yy + y0 - cy) / ry
    r = np.hypot(dx, dy)
    wobble = 0.12 * _noise(rng, h, w, max(3.0, 0.35 * min(rx, ry)))
    field = (1.0 - r + wobble) * min(rx, ry)  # roughly a signed distance in pixels
    alpha = np.clip(0.5 + field, 0, 1).astype(np.float32)
    alpha[:pad] = 0
    alpha[-pad:] = 0
    alpha[:, :pad] = 0
    alpha[:, -pad:] = 0
    leaf = 1 + 0.18 * _noise(rng, h, w, max(3.0, 0.15 * min(rx, ry))) + 0.05 * _noise(rng, h, w, 4 * s)
    light = 1.15 - 0.35 * np.clip(dy * 0.5 + 0.5, 0, 1)
    tex = green * (leaf * light)[..., None]
    pb.paint(y0, x0, alpha, tex.astype(np.float32), VEGETATION)


def _street_scene(rng: np.random.Generator, width: int, height: int) -> _Scene:
    h, w = height, width
    s = math.sqrt(w * h / (256.0 * 128.0))  # 1 at 256x128
    period = 3 * w
    cam_speed = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.0) * s)
    pano_rgb, pano_label = _street_panorama(rng, h, period, s)
    panorama = _Panorama(pano_rgb, pano_label, float(rng.uniform(0, period)), cam_speed)

    movers: list[_Mover] = []
    # cars: two lanes in opposite directions; cars of a lane share its speed
    n_cars = int(rng.integers(2, 5))
    far_dir = float(rng.choice([-1.0, 1.0]))
    lanes = [(0.71 * h, far_dir, 0.5 * h), (0.885 * h, -far_dir, 0.62 * h)]
    per_lane = [n_cars // 2, n_cars - n_cars // 2]
    if rng.random() < 0.5:
        per_lane.reverse()
    k = 0
    for (bottom, direction, length), count in zip(lanes, per_lane, strict=True):
        if count == 0:
            continue
        speed = direction * rng.uniform(1.0, 2.2) * s - cam_speed  # screen speed
        if abs(speed) < 0.5 * s:
            speed = math.copysign(0.5 * s, speed if speed != 0 else direction)
        lengths = [length * rng.uniform(0.88, 1.12) for _ in range(count)]
        margin = max(lengths) + 2 * abs(speed) + 10
        span = w + 2 * margin
        spacing = span / count
        start = rng.uniform(0, max(1.0, w - lengths[0]))
        for i, ln in enumerate(lengths):
            jitter = rng.uniform(-0.15, 0.15) * max(0.0, spacing - max(lengths) - 0.1 * h)
            x0 = start + i * spacing + jitter
            car = _Car(
                rng, length=ln, bottom=bottom, speed=speed, x0=x0, width=w, margin=margin, inst=instance_id(CAR, k)
            )
            movers.append(car)
            k += 1

    # people: walking along the near or the far sidewalk
    n_people = int(rng.integers(1, 4))
    slots = np.linspace(0.15, 0.85, n_people) + rng.uniform(-0.08, 0.08, n_people)
    for p in range(n_people):
        near = bool(rng.random() < 0.5)
        ground = (0.965 if near else 0.545) * h + rng.uniform(-0.008, 0.008) * h
        hb = (0.30 if near else 0.20) * h * rng.uniform(0.9, 1.1)
        facing = int(rng.choice([-1, 1]))
        world_speed = rng.uniform(0.35, 0.8) * s
        movers.append(
            _Walker(
                rng,
                height=hb,
                facing=facing,
                inst=instance_id(PERSON, p),
                ground_y=ground,
                world_speed=world_speed,
                screen_speed=facing * world_speed - cam_speed,
                x0=float(slots[p]) * w,
                width=w,
            )
        )
    return _Scene(w, h, panorama, movers)


# ------------------------------------------------------------------------------ pose scene


def _pose_scene(rng: np.random.Generator, width: int, height: int) -> _Scene:
    h, w = height, width
    s = math.sqrt(w * h / (256.0 * 128.0))
    pb = _PanoramaBuilder(h, w)
    rows = np.arange(h, dtype=np.float32)[:, None] + 0.5
    xs = np.arange(w, dtype=np.float32)[None, :]
    floor_y = rng.uniform(0.74, 0.8) * h

    wall_col = _hsv(rng.random(), rng.uniform(0.1, 0.35), rng.uniform(0.6, 0.85))
    panels = max(3, round(w / (rng.uniform(0.25, 0.4) * h)))
    seams = _smoothstep(0.9, 0.99, np.cos(2 * math.pi * xs * panels / w)) * np.ones_like(rows)
    wall = (
        wall_col * (1 + 0.07 * _noise(rng, h, w, 0.12 * h) + 0.03 * _noise(rng, h, w, 3 * s) - 0.15 * seams)[..., None]
    )
    skirting = _box(rows, floor_y - 0.04 * h, floor_y) * np.ones_like(xs)
    wall = wall * (1 - skirting[..., None]) + _colour((235, 232, 225)) * skirting[..., None]
    pb.paint(0, 0, np.ones((h, w), np.float32), wall.astype(np.float32), BUILDING)

    floor_col = _colour([(150, 110, 75), (170, 165, 155), (120, 85, 60)][rng.integers(3)])
    boards = max(4, round(w / (0.12 * h)))
    lines = _smoothstep(0.9, 0.99, np.cos(2 * math.pi * xs * boards / w)) * np.ones_like(rows)
    floor = floor_col * (1 + 0.08 * _noise(rng, h, w, 0.05 * h) - 0.2 * lines)[..., None]
    floor = floor * (0.85 + 0.25 * np.clip((rows - floor_y) / (h - floor_y + 1), 0, 1))[..., None]
    floor_alpha = (_box(rows, floor_y, h + 2.0) * np.ones_like(xs)).astype(np.float32)
    pb.paint(0, 0, floor_alpha, floor.astype(np.float32), SIDEWALK)
    panorama = _Panorama(pb.rgb, pb.label, 0.0, 0.0)

    hb = min(0.82 * h, 1.4 * w)
    cx = w / 2 + rng.uniform(-0.05, 0.05) * w
    sway = rng.uniform(0.03, 0.07) * w
    w_root = 2 * math.pi / rng.uniform(120, 200)
    ph_root = rng.uniform(0, 2 * math.pi)

    def root_x(t: int) -> float:
        return cx + sway * math.sin(w_root * t + ph_root)

    ground = rng.uniform(0.9, 0.94) * h
    dancer = _Figure(
        rng, height=hb, view="front", facing=1, inst=instance_id(PERSON, 0), root_x=root_x, ground_y=ground
    )
    return _Scene(w, h, panorama, [dancer])
