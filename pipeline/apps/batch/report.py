"""The report of a batch job: one row per file, as `report.json` and `report.csv`."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.atomic import write_atomically
from pipeline.summary import StreamSummary

# done: complete results; skipped: complete from an earlier run; failed: see `reason`;
# stopped: interrupted partway (processed again next time); pending: not reached.
FILE_STATUSES = ("done", "skipped", "failed", "stopped", "pending")


@dataclass(frozen=True)
class FileReport:
    """How one file of a batch went."""

    file: str  # the input file, relative to its input folder
    status: str  # one of FILE_STATUSES
    reason: str = ""
    frames: int = 0  # frames with results
    duration_s: float = 0.0  # media duration of those frames
    processing_s: float = 0.0
    fps: float = 0.0  # processing rate
    detections: dict[str, int] = field(default_factory=dict)  # per class label
    output: str = ""  # the JSONL, relative to the output folder
    node: str = ""  # the cluster node that processed it (a cluster job's)
    retries: int = 0  # times it was started again after its node was lost (a cluster job's)

    @classmethod
    def from_stream(cls, file: str, output: str, stream: StreamSummary) -> FileReport:
        return cls(
            file=file,
            status=stream.status,
            reason="; ".join(stream.errors),
            frames=stream.frames_processed,
            duration_s=stream.media_seconds,
            processing_s=stream.processing_seconds,
            fps=stream.fps,
            detections=dict(stream.detections),
            output=output,
        )

    @classmethod
    def from_results(cls, file: str, output: str, jsonl: Path) -> FileReport:
        """A file skipped because it is complete: its figures read back from its results."""
        frames, classes, last_pts = 0, Counter[str](), 0.0
        with jsonl.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                frames += 1
                last_pts = record["pts_ms"]
                classes.update(d["label"] for d in record["detections"])
        duration = last_pts / 1000 * frames / (frames - 1) if frames > 1 else 0.0
        return cls(
            file=file, status="skipped", frames=frames, duration_s=round(duration, 3),
            detections=dict(sorted(classes.items())), output=output,
        )  # fmt: skip


@dataclass(frozen=True)
class BatchReport:
    files: list[FileReport]
    wall_seconds: float  # the whole job, model loading included
    frames: int  # frames processed in this run (skipped files not counted)
    fps: float  # processing rate, from the first file's start to the last file's end
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    def write(self, directory: Path) -> None:
        """`report.json` and `report.csv`, each replaced atomically (OutputError if not)."""
        data = {
            "files": [asdict(f) for f in self.files],
            "totals": {status: self.count(status) for status in FILE_STATUSES},
            "frames": self.frames,
            "wall_seconds": self.wall_seconds,
            "fps": self.fps,
            "interrupted": self.interrupted,
        }
        write_atomically(directory / "report.json", json.dumps(data, indent=2) + "\n")
        classes = sorted({label for f in self.files for label in f.detections})
        columns = ["file", "status", "reason", "frames", "duration_s", "processing_s", "fps"]
        if any(f.node for f in self.files):  # a cluster job's
            columns += ["node", "retries"]
        table = io.StringIO(newline="")
        writer = csv.writer(table)
        writer.writerow(columns + [f"detections:{c}" for c in classes] + ["output"])
        for f in self.files:
            row = [getattr(f, c) for c in columns]
            writer.writerow(row + [f.detections.get(c, 0) for c in classes] + [f.output])
        write_atomically(directory / "report.csv", table.getvalue())

    def format_text(self) -> str:
        totals = ", ".join(f"{self.count(s)} {s}" for s in FILE_STATUSES if self.count(s))
        lines = [f"  failed: {f.file}: {f.reason}" for f in self.failed]
        lines.append(
            f"{len(self.files)} files: {totals}; {self.frames} frames in "
            f"{self.wall_seconds:.1f} s = {self.fps:.1f} fps"
            + (" — interrupted" if self.interrupted else "")
        )
        return "\n".join(lines)


def previous_reports(directory: Path) -> dict[str, FileReport]:
    """The rows of `directory/report.json` by input file, or none if it is missing or unreadable
    (it is only a shortcut: results on disk decide what is complete)."""
    try:
        rows = json.loads((directory / "report.json").read_text(encoding="utf-8"))["files"]
        return {row["file"]: FileReport(**row) for row in rows}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
