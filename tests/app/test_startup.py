"""run_live.py --model landmarks on an image: the output is written and torch is never imported."""
from tests.stream.test_assemble import run_python


def test_run_live_landmarks_on_an_image_without_importing_torch(tmp_path):
    out = tmp_path / "out.png"
    stdout = run_python(f"""
import runpy, sys
sys.argv = ["run_live.py", "--model", "landmarks", "--input", "tests/fixtures/portrait_A000371.jpg", "--output", {str(out)!r}]
try:
    runpy.run_path("run_live.py", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
print("torch" in sys.modules)
""", tmp_path)
    assert out.is_file()
    assert stdout.strip().splitlines()[-1] == "False"
