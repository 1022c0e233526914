"""``segmenter`` stage: the judge of segmentation consistency (``models/segmenter/model.pt``).

``segmenter.backend: trained`` (default, offline) fits :class:`v2v.eval.segmentation.SegmentationNet`
on the train split's real frames and their label maps; ``deeplabv3`` records torchvision's
pretrained DeepLabV3 (VOC classes mapped to Cityscapes ids). Either way the stage scores the judge on
the *held-out real* frames against their label maps (``metrics/segmenter.json``): the ceiling a
generator can reach under this judge, also reported by the evaluation as ``seg_miou_real``.
"""

from __future__ import annotations

import logging
from typing import Any

from v2v.config import Config
from v2v.data.clips import list_videos
from v2v.data.tasks import get_task
from v2v.eval.segmentation import (
    SegmenterTraining,
    deeplabv3_segmenter,
    frames_and_labels,
    labelled_frames,
    save_segmenter,
    train_segmenter,
)
from v2v.io.atomic import write_json
from v2v.mlops.tracking import stage_run
from v2v.ops.device import resolve_device
from v2v.paths import ProjectPaths
from v2v.stages.common import split_timing, stage_main, write_metrics

log = logging.getLogger(__name__)


def run(cfg: Config, paths: ProjectPaths) -> dict[str, Any]:
    sc = cfg.segmenter
    with stage_run("segmenter", cfg, paths, ("segmenter",)) as tracker:
        if get_task(cfg.train.task).maps != "segment":  # only label maps can be judged by segmentation
            paths.segmenter_dir.mkdir(parents=True, exist_ok=True)
            (paths.segmenter_dir / "model.pt").unlink(missing_ok=True)
            reason = f"train.task {cfg.train.task!r} has no label maps to judge segmentation consistency against"
            write_json(paths.segmenter_dir / "status.json", {"needed": False, "reason": reason})
            write_metrics(paths.segmenter_metrics, {"needed": 0})
            log.info("segmenter: nothing to do: %s", reason)
            return {"needed": 0}
        (paths.segmenter_dir / "status.json").unlink(missing_ok=True)
        device = resolve_device(sc.device, "segmenter.device")
        train_ids = [v.video_id for v in list_videos(paths, "train")]
        test_ids = [v.video_id for v in list_videos(paths, "test")]
        if sc.backend == "trained":
            images, labels = frames_and_labels(
                labelled_frames(paths.frames, paths.segment_maps, train_ids, sc.max_frames_per_video)
            )
            settings = SegmenterTraining(
                steps=sc.steps,
                batch_size=sc.batch_size,
                lr=sc.lr,
                width=sc.width,
                downsample=sc.downsample,
                seed=sc.seed,
                jitter=sc.jitter,
            )
            segmenter, summary = train_segmenter(images, labels, settings, device)
        else:
            segmenter, summary = deeplabv3_segmenter(sc.weights, device), {"backend": "deeplabv3"}
        meter = segmenter.meter()
        held_out = 0
        for rgb, ids in labelled_frames(paths.frames, paths.segment_maps, test_ids):
            meter.add("real", segmenter(rgb), ids)
            held_out += 1
        scores = meter.scores("real") if held_out else {"miou": None, "accuracy": None}
        metrics = {
            "needed": 1,
            "backend": sc.backend,
            "classes": len(segmenter.classes),
            "train_frames": summary.get("frames", 0),
            "test_frames": held_out,
            "real_miou": _round(scores["miou"]),
            "real_accuracy": _round(scores["accuracy"]),
            "final_loss": _round(summary.get("final_loss")),
            "seconds": _round(summary.get("seconds")),
        }
        paths.segmenter_dir.mkdir(parents=True, exist_ok=True)
        # durations go to metrics/timing, not into the model file: same run, same bytes
        save_segmenter(paths.segmenter_dir / "model.pt", segmenter, split_timing({**summary, "held_out": metrics})[0])
        write_metrics(paths.segmenter_metrics, metrics)
        tracker.log_metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        tracker.set_tags({"v2v.weights.segmenter": segmenter.weights.get("name", sc.backend)})
        log.info("segmenter: held-out real frames mIoU %s, accuracy %s", metrics["real_miou"], metrics["real_accuracy"])
        return metrics


def _round(value: Any) -> Any:
    return round(float(value), 5) if isinstance(value, int | float) else value


def main() -> None:
    stage_main("segmenter", run)


if __name__ == "__main__":
    main()
