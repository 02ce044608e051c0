"""Frames of a video file (or every video in a folder), every K-th frame, through the same
auto-labelling as models.data.readers.images. Source name "video:<file stem>", ids
"v_<stem>_<frame index>". Consecutive frames are near-duplicates: keep K large (~10).
"""
from pathlib import Path

import av
from av.video.reformatter import VideoReformatter

from models.data.readers.images import ImagesReader

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")


class VideoReader(ImagesReader):
    def __init__(self, every: int = 10, split: str = "train", name: str | None = None,
                 autolabel: bool = True, labeler=None):
        super().__init__(split, name, autolabel, labeler)
        self.every = max(int(every or 10), 1)

    def read(self, path, limit: int | None = None):
        """limit counts frames looked at per file (after the every-K sampling)."""
        path = Path(path)
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if path.is_dir() else [path]
        for f in files:
            yield from self._read_file(f, limit)

    def _read_file(self, path: Path, limit):
        stem = self.name or path.stem
        looked = 0
        with av.open(str(path)) as container:
            # one swscale context for the file: frame.to_ndarray(format=...) builds one per frame,
            # and FFmpeg 8 starts and stops its slice threads with each (stream/capture.py)
            reformatter = VideoReformatter()
            for index, frame in enumerate(container.decode(video=0)):
                if index % self.every:
                    continue
                if limit is not None and looked >= limit:
                    break
                looked += 1
                sample = self.sample(reformatter.reformat(frame, format="rgb24").to_ndarray(), f"v_{stem}_{index:06d}", f"video:{stem}")
                if sample is not None:
                    yield sample
