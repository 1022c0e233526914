"""The evaluation report: one self-contained HTML file (videos, plots and tables embedded as data URIs).

It opens offline, can be attached to an MLflow run or mailed, and plays in any browser: videos are
VP9 WebM, plots PNG. Sections: which weights every number came from (with a warning when any
network was randomly initialised), the scores table (vid2vid | baseline | real), the preference
proxies with their intervals, per-frame curves, training curves, and side-by-side videos
(input maps | real | vid2vid | per-frame baseline).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# metric → (label, what it measures); lower is better except for those in HIGHER_IS_BETTER
HIGHER_IS_BETTER = {"seg_miou", "seg_accuracy", "landmark_detected", "edge_f", "edge_precision", "edge_recall"}
METRIC_TEXT: dict[str, tuple[str, str]] = {
    "seg_miou": ("Segmentation mIoU", "mean IoU of the segmenter's prediction on the frames vs the input label maps"),
    "seg_accuracy": ("Segmentation accuracy", "pixel accuracy of the segmenter's prediction vs the input label maps"),
    "landmark_error": (
        "Landmark error (NME)",
        "dlib's 68 landmarks found on the frames vs those the face sketch was drawn from, per inter-ocular distance",
    ),
    "landmark_detected": ("Face found", "share of frames where dlib finds a face"),
    "edge_f": ("Edge F-score", "Canny edges of the frames vs the input edge maps, matched within a few pixels"),
    "edge_precision": ("Edge precision", "share of the frames' edge pixels near an input edge"),
    "edge_recall": ("Edge recall", "share of the input edge pixels near an edge of the frames"),
    "fid": ("FID", "Fréchet distance of TF-Inception frame features to the real frames"),
    "fid_tv": ("FID (torchvision Inception)", "as FID, torchvision's ImageNet Inception (not comparable to papers)"),
    "fd_s3d": ("FD (S3D)", "Fréchet distance of S3D Kinetics clip features"),
    "fd_r2plus1d_18": ("FD (R(2+1)D-18)", "Fréchet distance of R(2+1)D-18 Kinetics clip features"),
    "fvd": ("FVD (I3D)", "Fréchet distance of I3D clip features"),
    "lpips": ("LPIPS", "per-frame perceptual distance to the real frame"),
    "warp_error": ("Warping error", "frame t vs frame t-1 warped by the real video's flow (consistent pixels)"),
    "tof": ("tOF", "difference between the video's own flow and the real video's flow (px)"),
    "tlp": ("tLP", "difference between frame-to-frame LPIPS of the video and of the real video"),
}


# the task's own verdict (v2v.data.tasks.VERDICTS), first one present in the metrics → what the report says of it
VERDICT_TEXT = {
    "seg_miou": "The segmentation scores judge whether a frame shows what its label map says",
    "edge_f": "The edge scores judge whether a frame has the edges its input edge map asks for",
    "landmark_error": "The landmark scores judge whether a frame shows the face its sketch was drawn from",
}
NO_VERDICT_TEXT = (
    "No score here judges whether a frame follows its conditions (this task has no judge offline); LPIPS to the "
    "real frame stands in"
)


def verdict_sentence(metrics: Mapping[str, Any]) -> str:
    """What the report says of the task's own score (the one ``promote.metric: auto`` compares)."""
    found = next((text for key, text in VERDICT_TEXT.items() if key in metrics), NO_VERDICT_TEXT)
    return f"{found} (the real frames' row is what a perfect generator reaches)."


@dataclass
class ReportVideo:
    video_id: str
    compare_webm: Path  # input maps | real | vid2vid | baseline
    caption: str


@dataclass
class ReportData:
    title: str
    systems: Sequence[str]  # e.g. ("vid2vid", "baseline")
    metrics: Mapping[str, Any]  # metrics.json content
    weights: Mapping[str, Mapping[str, Any]]  # network → WeightsInfo dict (+ preprocess)
    preferences: Mapping[str, Mapping[str, Any]]  # dimension → Preference dict
    dimension_text: Mapping[str, str]
    per_frame: Mapping[str, Sequence[float]]  # series name → values per frame (for the curves)
    training: Mapping[str, Mapping[str, Sequence[float]]]  # run name → {"step": [...], "loss": [...], "d_loss": [...]}
    videos: Sequence[ReportVideo]
    notes: Sequence[str] = field(default_factory=list)


TRAINING_PNG = "training_curves.png"  # beside report.html: the training curves for offline viewing


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def figure_png(panels: Mapping[str, Mapping[str, Any]], xlabel: str, ylabel: str, log_y: bool = False) -> bytes:
    """Line plots side by side as PNG bytes (matplotlib, Agg backend): ``{panel title: {series name: series}}``,
    a series being ``values`` or ``(xs, ys)``; no network, no fonts beyond matplotlib's own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 3.2), dpi=100, squeeze=False)
    for ax, (title, series) in zip(axes[0], panels.items(), strict=True):
        for name, values in series.items():
            if isinstance(values, tuple) and len(values) == 2:
                ax.plot(values[0], values[1], label=name, linewidth=1.4)
            else:
                ax.plot(list(values), label=name, linewidth=1.4)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: same curves, same bytes
    plt.close(fig)
    return buffer.getvalue()


def training_png(training: Mapping[str, Mapping[str, Sequence[float]]]) -> bytes:
    """Generator and discriminator total loss per logged step of every training run, as one PNG."""
    panels = {
        title: {name: (run["step"], run[key]) for name, run in training.items() if run["step"]}
        for title, key in (("generator loss (total)", "loss"), ("discriminator loss (total)", "d_loss"))
    }
    return figure_png(panels, "step", "loss", log_y=True)


def _figure(series: Mapping[str, Any], title: str, xlabel: str, ylabel: str) -> str:
    """One line plot as a PNG data URI."""
    return _data_uri(figure_png({title: series}, xlabel, ylabel), "image/png")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _scores_table(data: ReportData) -> str:
    rows = []
    others = data.systems[1:]
    for metric, (label, text) in METRIC_TEXT.items():
        if metric not in data.metrics:
            continue
        cells = [data.metrics.get(metric), *(data.metrics.get(f"{metric}_{s}") for s in others)]
        real = data.metrics.get(f"{metric}_real")
        finite = [c for c in cells if isinstance(c, int | float)]
        higher = metric in HIGHER_IS_BETTER
        best = (max(finite) if higher else min(finite)) if finite else None
        tds = "".join(f"<td{' class=best' if c == best and len(finite) > 1 else ''}>{_fmt(c)}</td>" for c in cells)
        arrow = "↑" if higher else "↓"
        rows.append(f"<tr><th title='{html.escape(text)}'>{label} {arrow}</th>{tds}<td>{_fmt(real)}</td></tr>")
    head = "".join(f"<th>{html.escape(s)}</th>" for s in data.systems)
    return f"<table><tr><th>metric</th>{head}<th>real video</th></tr>{''.join(rows)}</table>"


def _preference_table(data: ReportData) -> str:
    primary, other = data.systems[0], data.systems[1] if len(data.systems) > 1 else "?"
    rows = []
    for name, pref in data.preferences.items():
        text = html.escape(data.dimension_text.get(name, ""))
        rows.append(
            f"<tr><th title='{text}'>{html.escape(name)}</th><td>{pref['rate']:.3f}</td>"
            f"<td>[{pref['low']:.3f}, {pref['high']:.3f}]</td>"
            f"<td>{pref['wins']} / {pref['ties']} / {pref['losses']}</td></tr>"
        )
    return (
        f"<p>P({html.escape(primary)} ≻ {html.escape(other)}): each held-out segment is one question; a tie counts "
        "half. <b>Proxies</b> computed from metrics, not human judgements.</p>"
        "<table><tr><th>dimension</th><th>P(A ≻ B)</th><th>95 % Wilson interval</th><th>wins / ties / losses</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _weights_table(data: ReportData) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(str(info.get('model')))}</td>"
        f"<td>{html.escape(str(info.get('name')))}</td><td><code>{html.escape(str(info.get('sha256') or '–'))[:16]}</code></td>"
        f"<td>{html.escape(str(info.get('preprocess', '')))}</td></tr>"
        for name, info in data.weights.items()
    )
    return f"<table><tr><th>score</th><th>network</th><th>weights</th><th>sha256</th><th>input</th></tr>{rows}</table>"


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.3em .7em;text-align:right}
th{background:#f5f5f5;text-align:left}td.best{font-weight:bold;background:#e8f5e9}
.warn{background:#fff3cd;border:1px solid #e0c36b;padding:.7em 1em;border-radius:4px}
figure{margin:1em 0}video,img{max-width:100%}figcaption{color:#555;font-size:.9em}figure.wide{flex-basis:100%}
.grid{display:flex;flex-wrap:wrap;gap:1em}
"""


def render(data: ReportData) -> str:
    """The report as one HTML string."""
    random_init = [name for name, info in data.weights.items() if info.get("name") == "random-init"]
    warn = (
        "<p class=warn>Randomly initialised networks computed "
        + ", ".join(html.escape(n) for n in random_init)
        + ": these numbers check the pipeline only and say nothing about quality. Set the evaluate.*_weights "
        "params to <code>default</code> (online) or to local weight files.</p>"
        if random_init
        else ""
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
    curves = []
    for metric in ("lpips", "warp_error", "tlp", "tof"):
        series = {k.removeprefix(f"{metric}_"): v for k, v in data.per_frame.items() if k.startswith(f"{metric}_")}
        if series:
            label = METRIC_TEXT[metric][0]
            curves.append(
                f"<figure><img alt='{label} per frame' src='{_figure(series, label + ' per frame', 'frame', label)}'></figure>"
            )
    if data.training:
        png = _data_uri(training_png(data.training), "image/png")
        curves.append(
            f"<figure class=wide><img alt='training curves' src='{png}'><figcaption>Generator and discriminator "
            "loss per logged step (each scale restarts its count; log scale). The same picture is "
            f"<a href='{TRAINING_PNG}'>{TRAINING_PNG}</a> beside this report.</figcaption></figure>"
        )
    videos = "".join(
        f"<figure><video controls loop muted autoplay playsinline src='{_data_uri(v.compare_webm.read_bytes(), 'video/webm')}'>"
        f"</video><figcaption>{html.escape(v.video_id)}: {html.escape(v.caption)}</figcaption></figure>"
        for v in data.videos
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(data.title)}</title><style>{STYLE}</style></head>
<body><h1>{html.escape(data.title)}</h1>
{warn}
<h2>Scores</h2>{_scores_table(data)}
<p>↓ lower is better, ↑ higher is better; the best system per row is highlighted. {html.escape(verdict_sentence(data.metrics))}
Frame features are pooled over
{_fmt(data.metrics.get("frames"))} frames of {_fmt(data.metrics.get("videos"))} held-out videos.</p>
<h2>Preference proxies</h2>{_preference_table(data)}
<h2>Curves</h2><div class=grid>{"".join(curves)}</div>
<h2>Videos</h2>{videos or "<p>No videos.</p>"}
<h2>Networks and weights</h2>{_weights_table(data)}
{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
</body></html>
"""
