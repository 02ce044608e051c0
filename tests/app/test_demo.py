"""The Gradio page's handlers on real inputs (the public-domain astronaut, the bundled demo clip),
and the page itself served in-process."""
import urllib.request
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from skimage import data

import demo
from effects.colour import parse_colour, rgb_to_lab
from core.classes import CLASS_NAMES
from stream import assemble as session
from web import handlers as web
from core.types import Frame

LIPS = [CLASS_NAMES.index("upper_lip"), CLASS_NAMES.index("lower_lip")]
BLUE = "#1e3cdc"   # far from any natural lip colour: a move toward it is the effect's doing


PAGE = demo.Page(demo.PageConfig())   # the page's server side, as `python demo.py` builds it


def controls(**changes) -> dict:
    values = web.default_controls()
    values["model"] = "landmarks"   # needs no weights; "auto" would time every tier first
    values.update(changes)
    return values


def write_rgb(path, rgb) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return Path(path)


@pytest.fixture(scope="module")
def astronaut_parse():
    """(image, lip mask, face box, class map) from the same parser without effects: where the lips are."""
    image = data.astronaut()
    pipeline = session.build_pipeline(model="landmarks", parser=PAGE.parsers.get("landmarks"), static_images=True)
    result = pipeline.process(Frame(image=image, index=0, time=0.0))
    pipeline.close()
    assert len(result.faces) == 1
    labels = session.label_map(result)
    return image, np.isin(labels, LIPS), result.faces[0].box, labels


def lab_distance(pixels: np.ndarray, colour: str) -> float:
    target = rgb_to_lab(np.array([[parse_colour(colour)]], np.uint8))[0, 0]
    return float(np.linalg.norm(rgb_to_lab(pixels[None]) - target, axis=-1).mean())


def test_image_lips_take_the_lipstick_colour_background_unchanged(tmp_path, astronaut_parse):
    image, lips, (x0, y0, x1, y1), _ = astronaut_parse
    assert lips.sum() > 100
    reply = PAGE.on_image(str(write_rgb(tmp_path / "astronaut.png", image)),
                          controls(lipstick_colour=BLUE, lipstick_strength=0.9))
    assert not reply.warning and reply.message.startswith("1 face found")
    out = reply.output
    assert out.shape == image.shape and out.dtype == np.uint8
    before, after = lab_distance(image[lips], BLUE), lab_distance(out[lips], BLUE)
    assert after < 0.7 * before, (before, after)
    # bluer: the blue channel gained on the red one inside the lips
    gain = (out[lips][:, 2].astype(int) - out[lips][:, 0]).mean() - (image[lips][:, 2].astype(int) - image[lips][:, 0]).mean()
    assert gain > 20
    outside = np.ones(image.shape[:2], bool)
    outside[max(y0, 0):y1, max(x0, 0):x1] = False
    assert outside.mean() > 0.5
    np.testing.assert_array_equal(out[outside], image[outside])


def test_show_labels_paints_the_classes(astronaut_parse):
    from core.classes import PALETTE
    image, _, _, labels = astronaut_parse
    reply = PAGE.on_image(image, controls(effects=[], show_labels=True))
    face = labels > 0
    palette = PALETTE[labels[face]].astype(int)
    # blended at alpha 0.5 with each class's palette colour: about halfway there
    before = np.abs(image[face].astype(int) - palette).mean()
    after = np.abs(reply.output[face].astype(int) - palette).mean()
    assert after < 0.6 * before, (before, after)
    np.testing.assert_array_equal(reply.output[~face], image[~face])


def test_default_controls_give_the_default_effects():
    assert set(web.default_controls()) == set(web.CONTROL_NAMES)
    settings = web.settings_from_controls(web.default_controls())
    assert settings.to_spec() == web.effects.parse_effects(web.effects.DEFAULT_EFFECTS).to_spec()
    assert web.settings_from_controls(controls(effects=[])).active() == []
    matte = web.settings_from_controls(controls(effects=["lipstick"], lipstick_finish="matte", lipstick_colour="rgba(10, 20, 30, 1)"))
    assert matte.to_spec() == "lipstick=#0a141e:0.6:matte"


def test_no_face_returns_the_image_unchanged_with_a_message(tmp_path):
    coffee = data.coffee()
    reply = PAGE.on_image(str(write_rgb(tmp_path / "coffee.png", coffee)), controls())
    assert reply.warning and reply.message.startswith("No face")
    np.testing.assert_array_equal(reply.output, coffee)


def test_garbage_and_missing_files_give_messages(tmp_path):
    garbage = tmp_path / "holiday.png"
    garbage.write_bytes(b"this is not an image at all" * 50)
    reply = PAGE.on_image(str(garbage), controls())
    assert reply.output is None and reply.warning
    assert "holiday.png is not a readable image" in reply.message and str(tmp_path) not in reply.message
    # the same file as the page uploads it: gradio's own decoding fails, the page says why
    import gradio as gr
    from gradio.data_classes import FileData
    component = demo.readable_uploads(gr.Image(type="filepath", image_mode=None))
    upload = component.preprocess(FileData(path=str(garbage), orig_name="holiday.png"))
    reply = PAGE.on_image(upload, controls())
    assert reply.output is None and "holiday.png is not a readable image" in reply.message
    missing = PAGE.on_image(str(tmp_path / "gone.jpg"), controls())
    assert missing.output is None and missing.message == "no such file: gone.jpg"
    assert PAGE.on_image(None, controls()).output is None   # a cleared input: no warning needed
    bad_colour = PAGE.on_image(data.astronaut(), controls(lipstick_colour="not a colour"))
    assert bad_colour.output is None and "bad colour" in bad_colour.message


def test_huge_images_are_downscaled_or_refused(tmp_path, monkeypatch):
    huge = cv2.resize(data.astronaut(), (4400, 4400), interpolation=cv2.INTER_LINEAR)
    reply = PAGE.on_image(huge, controls(effects=["lipstick"]))
    assert reply.output.shape == (4096, 4096, 3)
    assert "1 face found" in reply.message and "downscaled from 4400x4400 to 4096x4096" in reply.message
    path = write_rgb(tmp_path / "big.png", cv2.resize(data.astronaut(), (1500, 1000)))
    monkeypatch.setattr(web, "MAX_IMAGE_PIXELS", 1_000_000)
    reply = PAGE.on_image(str(path), controls())
    assert reply.output is None and reply.warning and "big.png is too large" in reply.message and "1500x1000" in reply.message


def cut_clip(src: Path, dst: Path, seconds: float) -> Path:
    """The first `seconds` of a video with its audio, packets copied (no re-encode)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in (inp.streams.video[0], inp.streams.audio[0])}
        for packet in inp.demux():
            if packet.dts is None or packet.pts is None or float(packet.pts * packet.time_base) >= seconds:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


def video_facts(path):
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        return frames, len(container.streams.audio)


def test_video_keeps_every_frame_and_the_audio(tmp_path):
    clip = cut_clip(demo.EXAMPLE_VIDEO, tmp_path / "one_second.mp4", 1.0)
    frames_in, audio_in = video_facts(clip)
    assert frames_in == 25 and audio_in == 1
    seen = []
    reply = web.process_video(clip, controls(lipstick_colour=BLUE), PAGE.parsers, tmp_path / "out",
                              progress=lambda done, total: seen.append((done, total)))
    path, message = reply
    assert path.suffix == ".mp4" and path.is_file()
    assert video_facts(path) == (25, 1)
    assert seen[-1][0] == 25 and "faces in 25 of them; audio kept" in message
    # through the page's handler too, into the page's result folder
    reply = PAGE.on_video(str(clip), controls(effects=[]))
    assert not reply.warning and Path(reply.output).is_relative_to(PAGE.config.out_dir)
    assert video_facts(reply.output) == (25, 1)


def test_damaged_video_is_finished_with_a_warning(tmp_path):
    from tests.conftest import damage_file, write_test_video
    clean = write_test_video(tmp_path / "clip.mp4", data.astronaut(), n_frames=200, size=(320, 240), audio=True)
    broken = damage_file(clean, tmp_path / "broken.mp4", "middle", 20_000)
    reply = PAGE.on_video(str(broken), controls(effects=[]))
    assert reply.output is not None and "could not be decoded" in reply.message and "Warning:" in reply.message
    assert video_facts(reply.output) == (200, 1)   # every frame of the source, the audio kept


def test_old_results_are_cleaned_up(tmp_path):
    import os
    old_dir = tmp_path / "video_old"
    old_dir.mkdir()
    old, new = old_dir / "a_parsed.mp4", tmp_path / "b_parsed.mp4"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    for path in (old, old_dir):
        os.utime(path, (0, 0))
    web.cleanup_old_files(tmp_path, max_age_s=3600)
    assert not old_dir.exists() and new.exists()


def test_bad_videos_give_messages(tmp_path, monkeypatch):
    garbage = tmp_path / "party.mp4"
    garbage.write_bytes(b"\x00\x01not a video" * 100)
    reply = PAGE.on_video(str(garbage), controls())
    assert reply.output is None and reply.warning and "party.mp4 is not a readable video" in reply.message
    monkeypatch.setattr(web, "MAX_VIDEO_SECONDS", 2.0)
    reply = PAGE.on_video(str(demo.EXAMPLE_VIDEO), controls())
    assert reply.output is None and "too long" in reply.message and "5 s" in reply.message


def demo_frames(*indices):
    with av.open(str(demo.EXAMPLE_VIDEO)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return [frames[i] for i in indices]


def test_webcam_sessions_keep_their_own_state():
    first, later = demo_frames(0, 60)
    c = controls()
    reply_a1, a = PAGE.on_webcam(first, None, c, session_id="tab-a")
    reply_a2, a_again = PAGE.on_webcam(later, a, c, session_id="tab-a")
    reply_b, b = PAGE.on_webcam(later, None, c, session_id="tab-b")
    reply_fresh, fresh = PAGE.on_webcam(later, None, c)
    assert a_again is a and b is not a and PAGE.live["tab-a"] is a and PAGE.live["tab-b"] is b
    assert a.pipeline is not b.pipeline and a.pipeline.tracker is not b.pipeline.tracker
    assert a.pipeline.prob_smoother is not b.pipeline.prob_smoother
    assert a.pipeline.parser is b.pipeline.parser          # the loaded model is shared
    assert all(r.message.startswith("1 face") for r in (reply_a1, reply_a2, reply_b))
    # b's first frame is exactly what a brand-new session makes of it: nothing of a's leaked in
    np.testing.assert_array_equal(reply_b.output, reply_fresh.output)
    # while a's second frame was smoothed with its first (the state is real)
    assert np.abs(reply_a2.output.astype(int) - reply_fresh.output).max() > 0
    assert b.pipeline.tracker.active_ids() == {0}
    # closing one tab frees its tracker; the other goes on
    PAGE.close_live("tab-a")
    assert a.closed and a.pipeline is None and "tab-a" not in PAGE.live
    reply_b2, _ = PAGE.on_webcam(first, b, c, session_id="tab-b")
    assert reply_b2.message.startswith("1 face")
    PAGE.close_state(b)
    assert b.closed and "tab-b" not in PAGE.live
    fresh.close()


def test_auto_on_images_is_the_most_accurate_tier_live_input_the_one_that_keeps_up(monkeypatch, tmp_path):
    """The Image tab has no frame budget: its `auto` is the most accurate tier, as run_live.py
    picks for photos; the webcam and video tabs time the tiers against the frame budget. Each
    choice is made once and shared by the sessions."""
    from models.parsers import select
    from models.parsers.landmark_parser import LandmarkParser
    picks = []
    monkeypatch.setattr(select, "most_accurate", lambda device="auto": picks.append("photos") or
                        ("landmarks", LandmarkParser()))
    monkeypatch.setattr(select, "pick_tier", lambda *a, **k: picks.append("live") or
                        ("landmarks", LandmarkParser(), {"landmarks": [5.0, 5.0]}))
    parsers = web.ParserCache()
    image = write_rgb(tmp_path / "astronaut.png", data.astronaut())
    for _ in range(2):
        output, message = web.process_image(image, controls(model="auto"), parsers)
        assert message.startswith("1 face") and picks == ["photos"]
    live = web.LiveSession(parsers)
    for frame in demo_frames(0, 1):
        output, message = live.process(frame, controls(model="auto"))[:2]
        assert message.startswith("1 face") and picks == ["photos", "live"]
    live.close()


def test_page_serves_every_part(tmp_path):
    app = demo.build_demo(PAGE)
    app.queue()
    try:
        _, url, _ = app.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None,
                               allowed_paths=[str(demo.ASSETS)], quiet=True)
        html = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "Face parsing" in html
        config = app.get_config_file()
        ids = {c["props"].get("elem_id") for c in config["components"]}
        assert {"input-image", "output-image", "webcam", "input-video", "legend", "lipstick-colour"} <= ids
        events = [t[1] for d in config["dependencies"] for t in d["targets"]]
        assert events.count("stream") == 1 and events.count("unload") == 1   # live webcam; per-tab cleanup
        legend = next(c for c in config["components"] if c["props"].get("elem_id") == "legend")
        assert all(name in legend["props"]["value"] for name in CLASS_NAMES)
    finally:
        app.close()
