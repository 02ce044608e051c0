"""run_live.py without torch: the landmark tier on an image (no learned parser loaded), with the
hair effect (the hair network on ONNX Runtime), and RNN-G on a clip (its ONNX Runtime path)."""
import pytest

from tests.stream.test_assemble import run_python


def test_run_live_landmarks_on_an_image_without_a_learned_parser(tmp_path):
    out = tmp_path / "out.png"
    stdout = run_python(f"""
import runpy, sys
sys.argv = ["run_live.py", "--model", "landmarks", "--input", "tests/fixtures/portrait_A000371.jpg", "--output", {str(out)!r}]
try:
    runpy.run_path("run_live.py", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print(sorted(m for m in sys.modules if m.startswith("models.parsers.") or m == "torch"))
""", tmp_path)
    assert out.is_file()
    loaded = stdout.strip().splitlines()[-1]
    # without --save-labels or the hair effect the hair network is not needed: not loaded
    assert "models.parsers.hair_net" not in loaded and "'torch'" not in loaded
    assert "models.parsers.rnng" not in loaded and "models.parsers.torch_parser" not in loaded


def test_app_modules_import_no_training_or_dataset_code():
    """The .importlinter contract "nothing that runs the application imports training or dataset
    code", for the two top-level scripts import-linter cannot take as packages."""
    import ast
    from pathlib import Path
    repo = Path(__file__).resolve().parents[2]
    for script in ("run_live.py", "demo.py", "faceparse.py"):
        tree = ast.parse((repo / script).read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert imported, script
        bad = sorted(m for m in imported if m.split(".")[:2] in (["models", "training"], ["models", "data"]))
        assert not bad, f"{script} imports {bad}"


def test_run_live_rnng_on_a_clip_without_torch(tmp_path, tmp_video):
    """RNN-G on the CPU runs from its ONNX files (models.parsers.rnng_ort): a whole video run
    with the default effects never imports torch (1.3 s and ~300 MB at start-up)."""
    from models.parsers import registry, rnng_ort
    if "rnng" not in registry.available_checkpoints() or rnng_ort.load(registry.tier("rnng").checkpoint) is None:
        pytest.skip("needs checkpoints/rnng.pt, its ONNX files and onnxruntime")
    clip = tmp_video("clip.mp4", n_frames=6, size=(320, 240))
    out = tmp_path / "out.mp4"
    stdout = run_python(f"""
import runpy, sys
from models.parsers import rnng_ort
faces = []
parse = rnng_ort.RNNGOrtParser.parse
rnng_ort.RNNGOrtParser.parse = lambda self, crops, *a: faces.append(len(crops)) or parse(self, crops, *a)
sys.argv = ["run_live.py", "--model", "rnng", "--device", "cpu", "--input", {str(clip)!r}, "--output", {str(out)!r}]
try:
    runpy.run_path("run_live.py", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print(sum(faces), "torch" in sys.modules, sorted(m for m in sys.modules if m.startswith("models.parsers.")))
""", tmp_path)
    faces, torch_loaded, modules = stdout.strip().splitlines()[-1].split(" ", 2)
    assert out.is_file() and int(faces) >= 5   # the astronaut's face, parsed on (nearly) every frame
    assert torch_loaded == "False", modules
    assert "models.parsers.rnng_ort" in modules and "models.parsers.torch_parser" not in modules


def test_run_live_landmarks_with_the_hair_effect_without_torch(tmp_path):
    """The hair effect needs the whole head's hair: the hair network runs from its ONNX file
    (models.parsers.hair_net), so the landmark tier still never imports torch."""
    from models.parsers import hair_net, onnx_runtime
    if not onnx_runtime.available() or not (onnx_runtime.folder(hair_net.DEFAULT_CHECKPOINT) / hair_net.ONNX_FILE).is_file():
        pytest.skip("needs onnxruntime and checkpoints/hair_net.onnx")
    out = tmp_path / "out.png"
    stdout = run_python(f"""
import runpy, sys
from models.perception import hair
runs = []
call = hair.HairStage.__call__
hair.HairStage.__call__ = lambda self, image, faces, **kw: runs.append(len(faces)) or call(self, image, faces, **kw)
sys.argv = ["run_live.py", "--model", "landmarks", "--effects", "hair=#6a2ca0:0.5",
            "--input", "tests/fixtures/portrait_A000371.jpg", "--output", {str(out)!r}]
try:
    runpy.run_path("run_live.py", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print(sum(runs), "torch" in sys.modules)
""", tmp_path)
    assert out.is_file()
    assert stdout.strip().splitlines()[-1].split() == ["1", "False"]   # one face's hair, no torch
