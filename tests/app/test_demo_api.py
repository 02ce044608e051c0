"""The page's API as a gradio_client user sees it: three named endpoints with named, typed
parameters, called on real photos; a wrong value comes back as one readable line. Also: `python
demo.py --help` answers without loading gradio or torch."""
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from gradio_client import Client, handle_file

import demo
import faceparse
from core.classes import LOWER_LIP, NUM_CLASSES, UPPER_LIP

ROOT = Path(__file__).resolve().parents[2]
PORTRAIT = ROOT / "tests" / "fixtures" / "portrait_B001298.jpg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    page = demo.Page(demo.PageConfig(out_dir=tmp_path_factory.mktemp("results")))
    app = demo.build_demo(page)
    app.queue()
    _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_port(), quiet=True,
                           allowed_paths=[str(demo.ASSETS)])
    try:
        yield Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    finally:
        app.close()


def test_the_api_has_three_named_endpoints_with_named_typed_parameters(client):
    info = client.view_api(return_format="dict", print_info=False)
    assert info["unnamed_endpoints"] == {}
    endpoints = info["named_endpoints"]
    assert set(endpoints) == {"/parse", "/apply", "/video"}
    params = {name: {p["parameter_name"]: p["python_type"]["type"] for p in e["parameters"]}
              for name, e in endpoints.items()}
    assert list(params["/parse"]) == ["image", "model"]
    assert list(params["/apply"]) == ["image", "effects", "model", "show_labels"]
    assert list(params["/video"]) == ["video", "effects", "model"]
    assert params["/apply"]["image"] == "filepath" and params["/apply"]["effects"] == "str"
    assert params["/apply"]["show_labels"] == "bool"
    assert params["/parse"]["model"].startswith("Literal['auto', 'landmarks'")   # the tiers, as choices


def test_parse_returns_the_class_map_overlay_and_faces(client):
    labels_png, overlay_png, faces, message = client.predict(handle_file(str(PORTRAIT)), "landmarks", api_name="/parse")
    labels = cv2.imread(labels_png, cv2.IMREAD_UNCHANGED)
    expected = faceparse.parse(PORTRAIT, model="landmarks").labels
    assert labels.shape == expected.shape and labels.max() < NUM_CLASSES
    assert (labels == expected).mean() > 0.999                     # the same labels as the Python API
    assert len(faces) == 1 and message.startswith("1 face found")
    x0, y0, x1, y1 = faces[0]["box"]
    assert len(faces[0]["points"]) == 5 and 0 <= x0 < x1 <= labels.shape[1]
    overlay = cv2.imread(overlay_png)
    photo = cv2.imread(str(PORTRAIT))
    assert overlay.shape == photo.shape and np.abs(overlay.astype(int) - photo)[labels > 0].mean() > 10


def test_apply_paints_the_named_colour(client):
    out_png, message = client.predict(image=handle_file(str(PORTRAIT)), effects="lipstick=crimson:0.8",
                                      model="landmarks", api_name="/apply")
    assert message.startswith("1 face found")
    out = cv2.imread(out_png)
    photo = cv2.imread(str(PORTRAIT))
    lips = np.isin(faceparse.parse(PORTRAIT, model="landmarks").labels, (UPPER_LIP, LOWER_LIP))
    a_before = cv2.cvtColor(photo, cv2.COLOR_BGR2LAB)[lips][:, 1].astype(int).mean()
    a_after = cv2.cvtColor(out, cv2.COLOR_BGR2LAB)[lips][:, 1].astype(int).mean()
    assert a_after > a_before + 5                                  # redder lips
    assert np.array_equal(out[:20], photo[:20])                    # the top rows (no face) untouched


def test_video_endpoint(client, tmp_path):
    from tests.app.test_demo import cut_clip, video_facts
    clip = cut_clip(demo.EXAMPLE_VIDEO, tmp_path / "half.mp4", 0.5)
    path, message = client.predict(video=handle_file(str(clip)), effects="hair=rebeccapurple:0.6",
                                   model="landmarks", api_name="/video")
    assert video_facts(path) == video_facts(clip) and "audio kept" in message


@pytest.mark.parametrize("call, words", [
    (dict(effects="lipstick=crimsom:0.7"), "bad colour 'crimsom' for lipstick (did you mean 'crimson'?)"),
    (dict(effects="glitter=gold:0.5"), "unknown effect 'glitter'"),
    (dict(model="resnet9000"), "resnet9000 is not in the list of choices"),
    (dict(image=str(ROOT / "README.md")), "is not a readable image"),
])
def test_wrong_values_give_one_readable_line(client, call, words):
    args = {"image": str(PORTRAIT), "effects": "lipstick=#b0103a:0.7", "model": "landmarks", **call}
    args["image"] = handle_file(args["image"])
    with pytest.raises(Exception) as err:
        client.predict(**args, api_name="/apply")
    message = str(err.value)
    assert words in message and "\n" not in message and "Traceback" not in message


def test_help_answers_before_gradio_and_torch_load():
    run = subprocess.run([sys.executable, "-X", "importtime", "demo.py", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and "--max-faces" in run.stdout
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert not imported & {"gradio", "torch", "cv2", "mediapipe"}, imported & {"gradio", "torch", "cv2", "mediapipe"}


@pytest.mark.parametrize("flags, words", [(["--max-faces", "0"], "--max-faces must be at least 1"),
                                          (["--device", "cuda"], "no CUDA GPU")])
def test_bad_start_options_are_one_line_before_serving(flags, words):
    if "cuda" in flags:
        torch = pytest.importorskip("torch")
        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA GPU")
    run = subprocess.run([sys.executable, "demo.py", "--port", "7897", *flags], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and lines[-1].startswith("error: ") and words in lines[-1]
    assert "Traceback" not in run.stderr and "Running on" not in run.stdout
