"""A folder of unlabelled photos (e.g. ../shared/data/portraits): each image's largest usable
face, aligned by the pipeline's tracker and auto-labelled by models.data.readers.autolabel (label_kind
"auto"), or only aligned (label_kind "none") with autolabel=False. Auto-labels are training
data only: split "train" unless told otherwise. Drops and their reasons: AutoLabeler.drops.
"""
from pathlib import Path

from models.data.readers.autolabel import IDENTITY, AutoLabeler
from models.data.readers import RawSample, read_rgb

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class ImagesReader:
    def __init__(self, split: str = "train", name: str | None = None, autolabel: bool = True,
                 labeler: AutoLabeler | None = None, exclude=None):
        self.split = split or "train"
        # file stems to leave out: the images of a dev set kept apart from training
        self.exclude = {p.stem for p in Path(exclude).iterdir()} if exclude else set()
        self.name = name
        self.autolabel = autolabel
        self.labeler = labeler or AutoLabeler()
        self.drops = self.labeler.drops

    def read(self, root, limit: int | None = None):
        root = Path(root)
        source = self.name or root.name
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        kept = [p for p in paths if p.stem not in self.exclude]
        if len(kept) < len(paths):
            self.drops["excluded"] += len(paths) - len(kept)
            paths = kept
        for path in paths[:limit]:
            sample = self.sample(read_rgb(path), f"{source}_{path.stem}", source)
            if sample is not None:
                yield sample

    def sample(self, image, sample_id: str, source: str) -> RawSample | None:
        if self.autolabel:
            return self.labeler.label_image(image, sample_id, self.split, source)
        face = self.labeler.best_face(image)
        if face is None:
            return None
        crop, five, mesh = self.labeler.crop_face(image, face)
        return RawSample(sample_id, self.split, source, "none", crop, None, five, mesh, matrix=IDENTITY)

    def close(self):
        self.labeler.close()
