"""Names of a folder's outputs: one file per input in the output folder, never two inputs on one
name, never over an input."""
from collections import Counter
from pathlib import Path

from core.errors import InputError


def output_stems(paths) -> dict:
    """{input path: output name without extension}: the input's stem, or stem_ext for inputs
    that share a stem (a.jpg and a.png -> a_jpg and a_png: both would be a.png)."""
    paths = [Path(p) for p in paths]
    shared = Counter(p.stem for p in paths)
    return {p: f"{p.stem}_{p.suffix.lstrip('.').lower()}" if shared[p.stem] > 1 else p.stem for p in paths}


def check_not_inputs(outputs, inputs) -> None:
    """InputError, before any work, when an output would replace one of the inputs (the output
    folder is the input folder and a photo's output has its name)."""
    originals = {Path(p).resolve(): Path(p) for p in inputs}
    for out in outputs:
        original = originals.get(Path(out).resolve())
        if original is not None:
            raise InputError(f"output {out} would overwrite the input {original}: choose another output folder")
