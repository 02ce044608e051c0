"""run_live.py as a user runs it: real files in, real files out, clean one-line errors."""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

import run_live
from stream.video_io import read_label_video
from tests.conftest import write_test_video


def run(capsys, *args):
    code = run_live.main(["--verbose", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def _streams(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        pts = [f.pts for f in c.decode(video=0)]
        return pts, v.average_rate, len(c.streams.audio)


def test_video_keeps_frames_timestamps_and_audio(tmp_path, capsys, astronaut):
    clip = write_test_video(tmp_path / "in.mp4", astronaut, n_frames=10, size=(256, 256), audio=True)
    code, out, err = run(capsys, "--input", clip, "--output", tmp_path / "out.mp4", "--model", "landmarks",
                         "--save-labels", tmp_path / "labels.mkv", "--effects", "lipstick=#b0103a:0.8:gloss")
    assert code == 0, err
    in_pts, in_rate, in_audio = _streams(clip)
    out_pts, out_rate, out_audio = _streams(tmp_path / "out.mp4")
    assert len(out_pts) == len(in_pts) == 10
    assert out_rate == in_rate and out_audio == in_audio == 1
    # same timestamps in seconds
    with av.open(str(clip)) as a, av.open(str(tmp_path / "out.mp4")) as b:
        ta = [float(f.pts * f.time_base) for f in a.decode(video=0)]
        tb = [float(f.pts * f.time_base) for f in b.decode(video=0)]
    assert np.allclose(ta, tb, atol=1e-3)
    labels = read_label_video(tmp_path / "labels.mkv")
    assert labels.shape == (10, 256, 256)
    assert set(np.unique(labels)) >= {0, 1, 7, 9}  # background, skin and both lips found
    assert not list(tmp_path.glob(".*partial*"))  # no temp file left behind


def test_webm_output_is_vp9_with_the_audio_as_opus(tmp_path, capsys, astronaut):
    """WebM holds neither H.264 nor AAC: VP9 video with every frame at its time, and the AAC
    audio re-encoded as Opus over the same length (it used to be a one-line refusal)."""
    clip = write_test_video(tmp_path / "in.mp4", astronaut, n_frames=20, size=(256, 256), audio=True)
    code, out, err = run(capsys, "--input", clip, "--output", tmp_path / "out.webm", "--model", "landmarks")
    assert code == 0, err
    def decoded(path, kind):
        with av.open(str(path)) as c:
            return [s.codec_context.name for s in c.streams], list(c.decode(**{kind: 0}))
    codecs, video = decoded(tmp_path / "out.webm", "video")
    assert codecs == ["vp9", "opus"]
    ta = [float(f.pts * f.time_base) for f in decoded(clip, "video")[1]]
    tb = [float(f.pts * f.time_base) for f in video]
    source = decoded(clip, "audio")[1]
    sound = decoded(tmp_path / "out.webm", "audio")[1]
    audio_in, audio_out = sum(f.samples for f in source) / 44100, sum(f.samples for f in sound) / 48000
    loudness = [max(np.abs(f.to_ndarray()).max() for f in frames) for frames in (source, sound)]
    assert loudness[1] > 0.8 * loudness[0] > 0   # the tone, not silence
    assert np.allclose(ta, tb, atol=1e-3) and len(tb) == 20
    assert abs(audio_out - audio_in) < 0.03, (audio_in, audio_out)


def test_image_labels_and_no_face_passthrough(tmp_path, capsys):
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    code, out, err = run(capsys, "--input", face, "--output", tmp_path / "o.png", "--save-labels",
                         tmp_path / "l.png", "--model", "landmarks")
    assert code == 0, err
    label = cv2.imread(str(tmp_path / "l.png"), cv2.IMREAD_UNCHANGED)
    assert label.shape == (512, 512) and label.max() <= 10 and (label == 4).sum() > 20
    # a label name without an extension gets PNG data (OpenCV's writer needs one: it used to crash)
    code, out, err = run(capsys, "--input", face, "--output", tmp_path / "o.png", "--save-labels",
                         tmp_path / "labels", "--model", "landmarks")
    assert code == 0 and (tmp_path / "labels").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(cv2.imread(str(tmp_path / "labels"), cv2.IMREAD_UNCHANGED), label)

    scenery = tmp_path / "coffee.png"
    cv2.imwrite(str(scenery), cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR))
    code, out, err = run(capsys, "--input", scenery, "--output", tmp_path / "c.png", "--model", "landmarks")
    assert code == 0 and "no face" in err and err.startswith("warning:") and "wrote" in out
    assert np.array_equal(cv2.imread(str(tmp_path / "c.png")), cv2.imread(str(scenery)))



def test_a_cut_out_portrait_keeps_its_transparency(tmp_path, capsys):
    """An RGBA photo (a portrait cut out of its backdrop) comes out with its alpha as it was, in a
    PNG or WebP, alone or in a folder; a JPEG, which has none, is written without it."""
    rgb = cv2.imread(str(Path(__file__).resolve().parents[1] / "fixtures" / "portrait_C001135.jpg"))
    h, w = rgb.shape[:2]
    alpha = np.zeros((h, w), np.uint8)
    cv2.ellipse(alpha, (w // 2, h // 2), (int(w * 0.42), int(h * 0.48)), 0, 0, 360, 255, -1)
    alpha = cv2.GaussianBlur(alpha, (9, 9), 0)   # soft edges: every value 0-255 kept, not only 0 and 255
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "cut.png"), np.dstack([rgb, alpha]))
    code, out, err = run(capsys, "--input", tmp_path / "in" / "cut.png", "--output", tmp_path / "o.png",
                         "--save-labels", tmp_path / "l.png", "--model", "landmarks", "--effects", "lipstick=red")
    assert code == 0, err
    written = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    assert written.shape == (h, w, 4) and np.array_equal(written[..., 3], alpha)
    assert np.abs(written[..., :3].astype(int) - rgb).max() > 30           # the face was painted
    assert cv2.imread(str(tmp_path / "l.png"), cv2.IMREAD_UNCHANGED).ndim == 2   # labels: class ids only
    cv2.imwrite(str(tmp_path / "in" / "plain.jpg"), rgb)
    code, out, err = run(capsys, "--input", tmp_path / "in", "--output", tmp_path / "out", "--model", "landmarks")
    assert code == 0, err
    assert np.array_equal(cv2.imread(str(tmp_path / "out" / "cut.png"), cv2.IMREAD_UNCHANGED)[..., 3], alpha)
    assert cv2.imread(str(tmp_path / "out" / "plain.png"), cv2.IMREAD_UNCHANGED).shape == (h, w, 3)
    for name in ("o.webp", "o.jpg"):
        code, out, err = run(capsys, "--input", tmp_path / "in" / "cut.png", "--output", tmp_path / name,
                             "--model", "landmarks")
        assert code == 0, err
    assert cv2.imread(str(tmp_path / "o.webp"), cv2.IMREAD_UNCHANGED).shape == (h, w, 4)
    assert cv2.imread(str(tmp_path / "o.jpg"), cv2.IMREAD_UNCHANGED).shape == (h, w, 3)


def test_combined_tier_blends_brows_eyes_and_lips_takes_the_rest_from_rnng(tmp_path, capsys):
    """`--model combined` on a real portrait: its saved brows, eyes and lips lie where the landmark
    tier and RNN-G agree and between them where they do not; its nose and hair are RNN-G's
    (each run as a user would, label maps compared)."""
    from models.parsers import registry
    if "combined" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt (committed with the project)")
    portrait = Path(__file__).parents[1] / "fixtures" / "portrait_B001298.jpg"
    labels = {}
    for model in ("combined", "landmarks", "rnng"):
        code, out, err = run(capsys, "--input", portrait, "--output", tmp_path / f"{model}.png",
                             "--save-labels", tmp_path / f"{model}_labels.png", "--model", model)
        assert code == 0, err
        labels[model] = cv2.imread(str(tmp_path / f"{model}_labels.png"), cv2.IMREAD_UNCHANGED)

    def iou(a, b, classes):
        a, b = np.isin(a, classes), np.isin(b, classes)
        return (a & b).sum() / max((a | b).sum(), 1)

    combined, lm, rn = labels["combined"], labels["landmarks"], labels["rnng"]
    for cls in (2, 3, 4, 5, 7, 8, 9):   # brows, eyes, upper lip, inner mouth, lower lip
        both = (lm == cls) & (rn == cls)
        assert both.sum() > 20 and (combined[both] == cls).mean() > 0.95, cls
        inside = combined == cls        # the blend's part lies within the union of the two
        assert np.isin(inside.nonzero()[0], ((lm == cls) | (rn == cls)).nonzero()[0]).all(), cls
        assert min(iou(combined, lm, [cls]), iou(combined, rn, [cls])) > 0.5, cls
    for cls in (6, 10):                 # nose, hair
        assert iou(combined, rn, [cls]) > 0.9, cls


def test_folder_batches_and_skips_bad_files(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, img in (("a.jpg", data.astronaut()), ("b.jpg", cv2.flip(data.astronaut(), 1))):
        cv2.imwrite(str(folder / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    code, out, err = run(capsys, "--input", folder, "--output", tmp_path / "out", "--save-labels",
                         tmp_path / "labels", "--model", "landmarks")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["a.png", "b.png"]
    assert "broken.jpg" in err and "processed 2 of 3" in out
    # the flipped face's left eye is the original's right eye, mirrored
    a = cv2.imread(str(tmp_path / "labels" / "a.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "labels" / "b.png"), cv2.IMREAD_UNCHANGED)
    ya, xa = np.nonzero(a == 4)
    yb, xb = np.nonzero(b == 5)
    assert abs((511 - xa.mean()) - xb.mean()) < 4


def test_folder_of_one_photo_still_writes_into_folders(tmp_path, capsys):
    # the outputs of a folder are folders, however many photos it holds (one used to be taken
    # for a single photo: --save-labels DIR crashed with OpenCV's "could not find a writer")
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    code, out, err = run(capsys, "--input", folder, "--output", tmp_path / "out", "--save-labels",
                         tmp_path / "labels", "--model", "landmarks")
    assert code == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"] and "processed 1 of 1" in out
    label = cv2.imread(str(tmp_path / "labels" / "a.png"), cv2.IMREAD_UNCHANGED)
    assert label.shape == (512, 512) and (label == 4).sum() > 20   # a left eye: parsed


def test_folder_outputs_never_replace_photos_nor_each_other(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(folder / "a.jpg"), face)
    cv2.imwrite(str(folder / "a.png"), cv2.flip(face, 1))
    original = (folder / "a.png").read_bytes()
    # the output folder is the input folder: b.png would be written over the photo b.png
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "b.png").write_bytes(original)
    code, out, err = run(capsys, "--input", alone, "--output", alone, "--model", "landmarks")
    assert code == 2 and "would overwrite the input" in err and err.count("\n") == 1
    assert [p.name for p in alone.iterdir()] == ["b.png"] and (alone / "b.png").read_bytes() == original
    code, out, err = run(capsys, "--input", folder / "a.png", "--output", folder / "a.png", "--model", "landmarks")
    assert code == 2 and "would overwrite the input" in err and (folder / "a.png").read_bytes() == original
    # two photos with one stem: both kept, each under its own name
    code, out, err = run(capsys, "--input", folder, "--output", tmp_path / "out", "--save-labels", tmp_path / "labels",
                         "--model", "landmarks")
    assert code == 0, err
    for sub in ("out", "labels"):
        assert sorted(p.name for p in (tmp_path / sub).iterdir()) == ["a_jpg.png", "a_png.png"]
    a = cv2.imread(str(tmp_path / "labels" / "a_jpg.png"), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(tmp_path / "labels" / "a_png.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(np.isin(a, (4, 5)), np.isin(cv2.flip(b, 1), (4, 5))) is False   # two parses, not one twice
    assert abs(np.isin(a, (4, 5)).sum() - np.isin(b, (4, 5)).sum()) < 0.2 * np.isin(a, (4, 5)).sum()


def test_folder_says_which_videos_it_left_out(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    write_test_video(folder / "clip.mp4", data.astronaut(), n_frames=3)
    code, out, err = run(capsys, "--input", folder, "--output", tmp_path / "out", "--model", "landmarks")
    assert code == 0 and [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
    assert "warning: left out 1 video(s)" in err and "clip.mp4" in err and "--ray" in err
    (folder / "a.jpg").unlink()
    code, out, err = run(capsys, "--input", folder, "--output", tmp_path / "out2")
    assert code == 2 and err.startswith("error: no images in folder") and "it holds videos" in err


def test_a_videos_label_maps_go_into_a_new_folder_as_its_output_does(tmp_path, capsys):
    clip = write_test_video(tmp_path / "in.mp4", data.astronaut(), n_frames=3, size=(128, 128))
    code, out, err = run(capsys, "--input", clip, "--output", tmp_path / "new" / "out.mp4",
                         "--save-labels", tmp_path / "also_new" / "labels.mkv", "--model", "landmarks")
    assert code == 0, err   # the labels' folder "did not exist" while --output's was made
    assert (tmp_path / "new" / "out.mp4").is_file() and (tmp_path / "also_new" / "labels.mkv").is_file()


def test_an_animated_webp_says_only_its_first_frame_is_processed(tmp_path, capsys):
    from PIL import Image
    frames = [Image.fromarray(np.roll(data.astronaut(), 8 * i, axis=1)) for i in range(3)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(tmp_path / "still.webp")
    for name, warned in (("anim.webp", True), ("still.webp", False)):
        code, out, err = run(capsys, "--input", tmp_path / name, "--output", tmp_path / f"{name}.png",
                             "--model", "landmarks")
        assert code == 0 and (tmp_path / f"{name}.png").is_file(), err
        assert ("holds 3 frames: only its first was processed" in err) == warned, err


def _bad_inputs(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    clip = write_test_video(tmp_path / "ok.mp4", data.astronaut(), n_frames=3)
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    garbled = tmp_path / "garbled.jpg"
    garbled.write_bytes(bytes(range(256)) * 8)
    sound = tmp_path / "tone.m4a"   # an extension neither list knows: probed
    with av.open(str(sound), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 44100
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return {
        "missing": (["--input", tmp_path / "nope.mp4"], "no such file"),
        "not a video": (["--input", text], "not a readable video"),
        "zero length": (["--input", empty], ""),
        "unwritable output": (["--input", clip, "--output", blocker / "out.mp4"], "cannot write"),
        "unknown effect": (["--input", clip, "--effects", "glitter=#ffffff:0.5"], "glitter"),
        "bad colour": (["--input", clip, "--effects", "lipstick=#zzzzzz:0.5"], "colour"),
        "unknown colour name": (["--input", clip, "--effects", "lipstick=crimsom:0.5"], "'crimsom'"),
        "unknown model": (["--input", clip, "--model", "resnet9000"], "unknown model"),
        "camera": (["--camera", "99"], "camera"),
        "wrong checkpoint": (["--input", clip, "--model", "rnng", "--checkpoint", blocker], "checkpoint"),
        # refused before the photo is parsed (these crashed after it, with a traceback)
        "lossy label map": (["--input", photo, "--save-labels", tmp_path / "labels.jpg"], "lossless"),
        "unknown image format": (["--input", photo, "--output", tmp_path / "out.txt"], "'.txt'"),
        "photo into a folder's name": (["--input", photo, "--save-labels", tmp_path], "it is a folder"),
        "labels under a file": (["--input", photo, "--save-labels", blocker / "labels.png"], "is a file, not a folder"),
        "budget": (["--input", clip, "--budget-ms", "0"], "--budget-ms"),
        # an error, not a "skipped" warning, and before the model loads
        "unreadable photo": (["--input", garbled, "--output", tmp_path / "out.png"], "garbled.jpg is not a readable image"),
        "sound file": (["--input", sound, "--output", tmp_path / "out.mp4"], "tone.m4a has no video stream"),
        "url": (["--input", "https://example.com/clip.mp4", "--output", tmp_path / "out.mp4"],
                "https://example.com/clip.mp4 is a URL"),
    }


@pytest.mark.parametrize("case", [
    "missing", "not a video", "zero length", "unwritable output", "unknown effect", "bad colour", "unknown colour name",
    "unknown model", "camera", "wrong checkpoint", "lossy label map", "unknown image format",
    "photo into a folder's name", "labels under a file", "budget", "unreadable photo", "sound file", "url"])
def test_bad_input_gives_one_line_error(tmp_path, capsys, case):
    args, words = _bad_inputs(tmp_path)[case]
    code, out, err = run(capsys, *args)
    assert code == 2
    lines = [l for l in err.strip().splitlines() if l]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err and words.lower() in lines[0].lower()


def test_colour_names_on_the_command_line(tmp_path, capsys, astronaut):
    """--effects lipstick=crimson:0.7 renders exactly what its hex value (#dc143c) renders."""
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    outputs = []
    for colour in ("crimson", "#dc143c"):
        out_path = tmp_path / f"{colour.strip('#')}.png"
        code, out, err = run(capsys, "--input", face, "--output", out_path, "--model", "landmarks",
                             "--effects", f"lipstick={colour}:0.7")
        assert code == 0, err
        outputs.append(cv2.imread(str(out_path)))
    assert np.array_equal(outputs[0], outputs[1])
    assert np.abs(outputs[0].astype(int) - cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR)).max() > 30  # lips changed


def test_quiet_keeps_results_on_stdout_and_nothing_on_stderr(tmp_path, capsys, astronaut):
    clip = write_test_video(tmp_path / "in.mp4", astronaut, n_frames=4, size=(128, 128))
    code = run_live.main(["--input", str(clip), "--output", str(tmp_path / "out.mp4"), "--model", "landmarks"])
    out = capsys.readouterr()
    assert code == 0 and "frame" in out.err                  # the progress bar
    assert out.out.strip() == f"wrote {tmp_path / 'out.mp4'} (4 frames)"
    code = run_live.main(["-q", "--input", str(clip), "--output", str(tmp_path / "out2.mp4"), "--model", "landmarks"])
    out = capsys.readouterr()
    assert code == 0 and out.err == "" and out.out.strip() == f"wrote {tmp_path / 'out2.mp4'} (4 frames)"
    assert run_live.main(["-q", "--verbose"]) == 2             # one or the other
    assert "not allowed with" in capsys.readouterr().err


def test_help_lists_the_tiers_and_the_examples(capsys):
    assert run_live.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "{auto,landmarks,rnng,combined,student,teacher,rednet,bspnet,stn-icnn}" in text.replace("\n", "").replace(" ", "")
    assert "examples:" in text and "--virtual-camera" in text and "python run_live.py --camera /dev/video2" in text
    assert "-q, --quiet" in text and "N|DEVICE|URL" in text
