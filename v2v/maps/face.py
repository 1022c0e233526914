"""Face maps (sketch → face): dlib's 68 landmarks drawn as part curves, plus background Canny and distance maps.

Landmarks are ``(68, 2)`` float32 ``(x, y)`` pixel coordinates in the iBUG 300-W order (jaw 0–16,
brows 17–26, nose 27–35, eyes 36–47, lips 48–67; "right"/"left" are the subject's). As in vid2vid's
face dataset, the jaw is mirrored upwards to close the face outline and the parts are drawn as
:data:`NUM_PART_EDGES` separate curves; the generator sees the curves OR the Canny edges of the
frame outside the face, and optionally one distance map per curve (:func:`v2v.data.conditions.distance_maps`).

Backend: dlib's HOG frontal face detector and its 68-point shape predictor, the model file shipped
by the PyPI package ``face-recognition-models`` (the ``face`` extra). Licence note: that predictor
was trained on the iBUG 300-W data set, whose licence excludes commercial use; a commercial
deployment needs a predictor trained on other data (``face.predictor``: a path to another ``.dat``).

The HOG detector does not find faces smaller than ~80 px: set ``upsample`` (each step doubles the
image the detector sees, ~3-4x the time) for small frames.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from v2v.data.tasks import FACE_PART_EDGES
from v2v.io.files import file_sha256
from v2v.io.weights import WeightsError, WeightsInfo
from v2v.maps.edges import canny

Landmarks = npt.NDArray[np.float32]  # (68, 2) (x, y) pixels

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
PREDICTOR_KEY = "face.predictor"  # the params key named in errors
MODEL_NAME = "dlib frontal HOG detector + shape_predictor_68"
INSTALL_HINT = (
    'the face backend needs dlib and the 68-point landmark model: pip install -e ".[face]" '
    "(dlib-bin + face-recognition-models)"
)
JSON_FORMAT = "dlib-68 (x, y) pixels"
LANDMARKS_FILE = "landmarks.json"  # a video's landmark record (to_json) beside its face maps
NUM_LANDMARKS = 68
NUM_UPPER = 15  # synthesised upper-contour points (mirrors of jaw points 1..15), indices 68..82
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 36, 45

_JAW = tuple(range(0, 17))
_UPPER = tuple(range(NUM_LANDMARKS, NUM_LANDMARKS + NUM_UPPER))
# Part curves, each a tuple of indices into the 68 landmarks + the upper contour (>= 68); k-th curve has label k + 1
PART_EDGES: tuple[tuple[int, ...], ...] = (
    (*_JAW, *_UPPER, 0),  # face outline: jaw, then the mirrored upper contour back to point 0 (closed)
    tuple(range(17, 22)),  # right brow
    tuple(range(22, 27)),  # left brow
    (28, 31), tuple(range(31, 36)), (35, 28),  # nose: bridge → bottom, nostrils, bottom → bridge
    (36, 37, 38, 39), (39, 40, 41, 36),  # right eye: upper lid, lower lid
    (42, 43, 44, 45), (45, 46, 47, 42),  # left eye: upper lid, lower lid
    tuple(range(48, 55)), (54, 55, 56, 57, 58, 59, 48),  # outer lips: upper, lower
    tuple(range(60, 65)), (64, 65, 66, 67, 60),  # inner lips: upper, lower
)  # fmt: skip
NUM_PART_EDGES = FACE_PART_EDGES  # one distance map per curve (v2v.data.conditions.distance_maps)
assert len(PART_EDGES) == NUM_PART_EDGES
FACE_EDGE = 0  # the outline, whose filled polygon is the face region
PIECE = 3  # each curve is drawn as consecutive 3-point pieces sharing their end points (as the reference)


class FaceExtraMissing(WeightsError):
    """dlib or the ``face-recognition-models`` package is not installed."""


def default_predictor_path() -> Path:
    """The 68-point model file of ``face-recognition-models``, found without importing the package
    (its ``__init__`` needs ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise FaceExtraMissing(f"face-recognition-models is not installed; {INSTALL_HINT}")
    path = Path(locations[0]) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise FaceExtraMissing(f"{path}: missing from the installed face-recognition-models; {INSTALL_HINT}")
    return path


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as exc:
        raise FaceExtraMissing(f"cannot import dlib ({exc}); {INSTALL_HINT}") from exc
    return dlib


class FaceLandmarker:
    """dlib face detection + 68-point landmarks of the largest face of an RGB frame."""

    def __init__(
        self,
        predictor: str = "default",  # "default" (face-recognition-models' file) or a path to a dlib shape-predictor .dat
        upsample: int = 0,  # detector upsampling steps (each doubles the size; faces < ~80 px need >= 1)
    ) -> None:
        if upsample < 0:
            raise ValueError(f"face.upsample: {upsample}: must be >= 0")
        dlib = _import_dlib()
        if predictor == "default":
            path = default_predictor_path()
        else:
            path = Path(predictor)
            if not path.is_file():
                raise WeightsError(
                    f"{PREDICTOR_KEY}: {path}: shape-predictor file not found; set {PREDICTOR_KEY} to default "
                    "or an existing dlib .dat file"
                )
        try:
            self._predictor = dlib.shape_predictor(str(path))
        except RuntimeError as exc:
            raise WeightsError(f"{PREDICTOR_KEY}: {path}: not a dlib shape-predictor file ({exc})") from exc
        self._detector = dlib.get_frontal_face_detector()
        self.upsample = int(upsample)
        self.weights = WeightsInfo(MODEL_NAME, predictor, path.name, file_sha256(path))

    def __call__(self, rgb: npt.NDArray[np.uint8]) -> Landmarks | None:
        """``(H, W, 3)`` uint8 RGB → ``(68, 2)`` float32 (x, y) pixels of the largest face, or None when none."""
        assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8, (rgb.shape, rgb.dtype)
        image = np.ascontiguousarray(rgb)
        boxes = self._detector(image, self.upsample)
        if len(boxes) == 0:
            return None
        shape = self._predictor(image, max(boxes, key=lambda box: box.area()))
        return np.array([(point.x, point.y) for point in shape.parts()], np.float32)

    def info(self) -> dict[str, Any]:
        return {"backend": "dlib", "weights": self.weights.as_dict()}


def _check(landmarks: npt.NDArray[np.floating]) -> None:
    if landmarks.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected (68, 2) dlib landmarks, got shape {landmarks.shape}")


def fill_gaps(frames: list[Landmarks | None], max_gap: int) -> tuple[list[Landmarks | None], int]:
    """Linearly interpolate (per point) runs of at most ``max_gap`` missing frames that have detections on both
    sides; leading/trailing and longer runs stay None. Returns the new list and the number of frames filled."""
    out = list(frames)
    filled, n, i = 0, len(out), 0
    while i < n:
        if out[i] is not None:
            i += 1
            continue
        start = i
        while i < n and out[i] is None:
            i += 1
        before, after, length = out[start - 1] if start > 0 else None, out[i] if i < n else None, i - start
        if before is None or after is None or length > max_gap:
            continue
        a, b = before.astype(np.float64), after.astype(np.float64)
        for j in range(length):
            t = (j + 1) / (length + 1)
            out[start + j] = ((1.0 - t) * a + t * b).astype(np.float32)
        filled += length
    return out, filled


def smooth(frames: list[Landmarks | None], window: int) -> list[Landmarks | None]:
    """Centred moving average over ``window`` frames (odd; 1 = off) within each run of consecutive detections:
    never across a gap; near a run's ends the window is cut to the frames the run has."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"face smoothing window: {window}: must be an odd number >= 1 (1 = off)")
    out = list(frames)
    if window == 1:
        return out
    half, n, i = window // 2, len(out), 0
    while i < n:
        if out[i] is None:
            i += 1
            continue
        start = i
        while i < n and out[i] is not None:
            i += 1
        run = np.stack([f for f in frames[start:i] if f is not None]).astype(np.float64)  # (L, 68, 2)
        cumsum = np.concatenate([np.zeros_like(run[:1]), np.cumsum(run, axis=0)])
        for j in range(len(run)):
            lo, hi = max(0, j - half), min(len(run), j + half + 1)
            out[start + j] = ((cumsum[hi] - cumsum[lo]) / (hi - lo)).astype(np.float32)
    return out


def with_upper_contour(landmarks: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """``(68, 2)`` → ``(83, 2)``: the landmarks plus the upper face contour, jaw points 15..1 mirrored about the
    horizontal line at the mean y of jaw points 0 and 16, at 2/3 of their distance to it (as the reference)."""
    _check(landmarks)
    points = landmarks.astype(np.float64)
    baseline = (points[0, 1] + points[16, 1]) / 2.0
    upper = points[15:0:-1].copy()
    upper[:, 1] = baseline + (baseline - upper[:, 1]) * 2.0 / 3.0
    return np.concatenate([points, upper])


def _piece_curve(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Dense samples (~2 per pixel) of the straight line through 2 points or the parametric quadratic through 3
    (parameter: chord length, so the curve passes through all three)."""
    chords = np.linalg.norm(np.diff(points, axis=0), axis=1)
    count = max(2, int(np.ceil(2.0 * chords.sum())) + 1)
    t = np.linspace(0.0, 1.0, count)[:, None]
    if len(points) == 2:
        return (1.0 - t) * points[0] + t * points[1]
    mid = chords[0] / chords.sum() if chords.sum() > 0 and 0 < chords[0] < chords.sum() else 0.5
    basis0 = (t - mid) * (t - 1.0) / mid
    basis1 = t * (t - 1.0) / (mid * (mid - 1.0))
    basis2 = t * (t - mid) / (1.0 - mid)
    return basis0 * points[0] + basis1 * points[1] + basis2 * points[2]


def edge_curve(points: npt.NDArray[np.float64], edge: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """``(N, 2)`` dense polyline of one part edge through ``points`` (the ``(83, 2)`` of :func:`with_upper_contour`)."""
    pieces: list[npt.NDArray[np.float64]] = []
    for i in range(0, max(1, len(edge) - 1), PIECE - 1):
        curve = _piece_curve(points[list(edge[i : i + PIECE])])
        pieces.append(curve if not pieces else curve[1:])
    return np.concatenate(pieces)


def draw_face(
    landmarks: npt.NDArray[np.floating],  # (68, 2) (x, y) pixels
    height: int,
    width: int,
    thickness: int = 1,  # line width in pixels
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.bool_]]:
    """``(edges, parts, region)``: ``(H, W)`` uint8 0/255 with the 14 part curves (no anti-aliasing), ``(H, W)``
    uint8 with k + 1 on curve k (later curves overwrite earlier ones), ``(H, W)`` bool filled face outline."""
    points = with_upper_contour(landmarks)
    parts = np.zeros((height, width), np.uint8)
    region = np.zeros((height, width), np.uint8)
    for k, edge in enumerate(PART_EDGES):
        curve = np.round(edge_curve(points, edge)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(parts, [curve], isClosed=False, color=k + 1, thickness=thickness, lineType=cv2.LINE_8)
        if k == FACE_EDGE:
            cv2.fillPoly(region, [curve], color=1, lineType=cv2.LINE_8)
    edges = np.where(parts > 0, 255, 0).astype(np.uint8)
    return edges, parts, region.astype(bool)


def condition(
    rgb: npt.NDArray[np.uint8],  # (H, W, 3) RGB frame
    landmarks: npt.NDArray[np.floating] | None,  # (68, 2) of this frame, or None (no face)
    *,
    canny_low: float,  # background Canny thresholds and pre-blur sigma (see v2v.maps.edges.canny)
    canny_high: float,
    sigma: float,
    thickness: int = 1,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """``(edge_map, parts)``, both ``(H, W)`` uint8: the face curves OR the frame's Canny edges outside the face
    (0/255), and the part labels of :func:`draw_face` (all 0 without landmarks, where the map is pure Canny)."""
    height, width = rgb.shape[:2]
    background = canny(rgb, sigma=sigma, low=canny_low, high=canny_high)
    if landmarks is None:
        return np.where(background, 255, 0).astype(np.uint8), np.zeros((height, width), np.uint8)
    edges, parts, region = draw_face(landmarks, height, width, thickness)
    edge_map = np.where((edges > 0) | (background & ~region), 255, 0).astype(np.uint8)
    return edge_map, parts


def inter_ocular(landmarks: npt.NDArray[np.floating]) -> float:
    """Distance in pixels between the outer eye corners (points 36 and 45)."""
    _check(landmarks)
    return float(np.linalg.norm(landmarks[LEFT_EYE_OUTER].astype(np.float64) - landmarks[RIGHT_EYE_OUTER]))


def to_json(frames: list[Landmarks | None], filled: set[int] | None = None) -> dict[str, Any]:
    """JSON-able per-video record: ``{"format", "frames": [{"landmarks": [[x, y] * 68] | None}, ...]}``, coordinates
    rounded to 2 decimals, ``"interpolated": true`` on the frames listed in ``filled`` (see :func:`fill_gaps`)."""
    filled = filled or set()
    records: list[dict[str, Any]] = []
    for i, landmarks in enumerate(frames):
        if landmarks is None:
            records.append({"landmarks": None})
            continue
        _check(landmarks)
        record: dict[str, Any] = {"landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in landmarks]}
        if i in filled:
            record["interpolated"] = True
        records.append(record)
    return {"format": JSON_FORMAT, "frames": records}


def from_json(data: dict[str, Any]) -> list[Landmarks | None]:
    """The landmark list of a :func:`to_json` record."""
    if data.get("format") != JSON_FORMAT:
        raise ValueError(f"landmark record: format {data.get('format')!r}, expected {JSON_FORMAT!r}")
    frames: list[Landmarks | None] = []
    for i, record in enumerate(data["frames"]):
        if record.get("landmarks") is None:
            frames.append(None)
            continue
        landmarks = np.asarray(record["landmarks"], np.float32)
        if landmarks.shape != (NUM_LANDMARKS, 2):
            raise ValueError(f"landmark record: frame {i}: expected 68 (x, y) pairs, got shape {landmarks.shape}")
        frames.append(landmarks)
    return frames
