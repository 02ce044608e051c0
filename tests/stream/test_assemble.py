"""stream.assemble: the landmark tier runs without torch (start-up and memory: torch is ~1 s
and ~300 MB to import); a learned tier's module loads only when that tier is used."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_python(code: str, tmp_path) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_landmark_tier_parses_a_face_without_a_learned_parser(tmp_path):
    stdout = run_python("""
import sys
from skimage.data import astronaut
from core.types import Frame
from stream import assemble
pipeline = assemble.build_pipeline(model="landmarks", effects=None, static_images=True)
result = pipeline.process(Frame(astronaut(), 0, 0.0))
pipeline.close()
label = assemble.label_map(result)
print(len(result.faces), int((label > 0).sum()))
print("torch" in sys.modules, sorted(m for m in sys.modules if m.startswith("models.parsers.")))
""", tmp_path)
    faces_line, modules_line = stdout.strip().splitlines()[-2:]
    faces, labelled = map(int, faces_line.split())
    assert faces == 1 and labelled > 10_000          # the astronaut's face was parsed
    # ... and no learned parser loaded: torch comes in for the whole-head hair network only
    assert "models.parsers.hair_net" in modules_line
    assert "models.parsers.rnng" not in modules_line and "models.parsers.torch_parser" not in modules_line
