"""The HTML report: content, escaping, the random-weights banner, and (slow) a headless-Chromium render."""

import dataclasses
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from v2v.eval.report import ReportData, ReportVideo, render, training_png
from v2v.io.video import write_video


def report_data(tmp_path: Path, weights_name: str = "random-init") -> ReportData:
    frames = [np.full((32, 64, 3), 10 * t, np.uint8) for t in range(6)]
    write_video(tmp_path / "compare.webm", frames, fps=6, codec="vp9")
    return ReportData(
        title="test <report>",
        systems=("vid2vid", "baseline"),
        metrics={
            "fid_tv": 12.5,
            "fid_tv_baseline": 20.0,
            "warp_error": 0.01,
            "warp_error_baseline": 0.02,
            "warp_error_real": 0.005,
            "frames": 6,
            "videos": 1,
        },
        weights={"fid_tv": {"model": "inception_v3", "name": weights_name, "sha256": None, "preprocess": "299"}},
        preferences={"combined": {"rate": 0.75, "low": 0.3, "high": 0.95, "wins": 3, "ties": 0, "losses": 1}},
        dimension_text={"combined": "all"},
        per_frame={"warp_error_vid2vid": [0.01, 0.02], "warp_error_baseline": [0.02, 0.03]},
        training={"scale 0": {"step": [1.0, 2.0], "loss": [3.0, 2.0], "d_loss": [1.0, 0.9]}},
        videos=[ReportVideo("clip_a", tmp_path / "compare.webm", "maps | real | vid2vid | baseline")],
    )


def test_report_holds_scores_preferences_plots_and_videos(tmp_path: Path) -> None:
    html = render(report_data(tmp_path))
    assert "test &lt;report&gt;" in html  # escaped
    assert "<td class=best>12.5</td><td>20</td><td>–</td>" in html  # vid2vid best FID; no real-video FID
    assert "<td class=best>0.01</td><td>0.02</td><td>0.005</td>" in html
    assert "0.750" in html and "[0.300, 0.950]" in html and "3 / 0 / 1" in html
    assert html.count("data:image/png;base64,") == 2 and html.count("data:video/webm;base64,") == 1
    assert "Randomly initialised networks computed fid_tv" in html
    assert "Randomly initialised" not in render(report_data(tmp_path, "Inception_V3_Weights.IMAGENET1K_V1"))


def test_the_report_names_the_tasks_own_score(tmp_path: Path) -> None:
    """Each task's verdict is named in the text and shown as a row (higher is better for the edge F-score)."""
    data = report_data(tmp_path)
    assert "No score here judges whether a frame follows its conditions" in render(data)
    edges = {"edge_f": 0.4, "edge_f_baseline": 0.3, "edge_f_real": 0.9}
    html = render(dataclasses.replace(data, metrics={**data.metrics, **edges}))
    assert "The edge scores judge whether a frame has the edges" in html and "segmentation" not in html
    assert "Edge F-score" in html and "<td class=best>0.4</td><td>0.3</td><td>0.9</td>" in html
    street = render(dataclasses.replace(data, metrics={**data.metrics, "seg_miou": 0.5}))
    assert "The segmentation scores judge whether a frame shows what its label map says" in street


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(report_data(tmp_path)))
    shot = tmp_path / "report.png"
    command = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"]
    result = subprocess.run(
        [*command, "--enable-logging=stderr", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and shot.stat().st_size > 10_000, result.stderr[-2000:]
    assert "Uncaught" not in result.stderr  # no script errors (the report has no scripts)
    dom = subprocess.run([*command, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "Preference proxies" in dom and "<video" in dom


def test_training_curves_png_is_two_panels_and_reproducible() -> None:
    runs = {"scale 0": {"step": [1.0, 2.0, 3.0], "loss": [3.0, 2.0, 1.5], "d_loss": [1.0, 0.9, 0.8]}}
    png = training_png(runs)
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (320, 1280, 3) and training_png(runs) == png  # same curves, same bytes
    other = training_png({"scale 0": {**runs["scale 0"], "d_loss": [2.0, 0.1, 0.05]}})
    assert other != png  # the discriminator curve is drawn
