"""Video and label outputs on real files: timing and audio kept, temp-then-rename, lossless labels."""
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from stream.capture import VideoFileSource
from core.errors import InputError
from core.types import Frame
from stream.video_io import LabelVideoWriter, VideoWriter, read_label_video, save_labels
from tools.make_demo_clip import make_clip


def video_facts(path):
    """Frame count, pts list, average rate, duration and start of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        facts = dict(frames=stream.frames, rate=stream.average_rate, duration=stream.duration,
                     start=stream.start_time, time_base=stream.time_base, size=(stream.width, stream.height))
        facts["pts"] = [f.pts for f in container.decode(stream)]
    return facts


def audio_packets(path):
    with av.open(str(path)) as container:
        return [(p.pts, p.duration, bytes(p)) for p in container.demux(audio=0) if p.dts is not None]


def render(source, out_path, **kwargs):
    """Copy a source through a VideoWriter (the pipeline's shape, with the identity as the effect)."""
    with VideoWriter(out_path, source, **kwargs) as writer:
        for frame in source:
            writer.write(frame.image[::-1].copy(), pts=frame.pts)   # an "effect": flip upside down
    return writer


def test_same_frames_timestamps_fps_and_audio(tmp_video, tmp_path):
    path = tmp_video(n_frames=30, size=(96, 64), fps=25, audio=True)
    with VideoFileSource(path) as source:
        writer = render(source, tmp_path / "out.mp4")
    assert writer.frames_written == 30
    got, want = video_facts(tmp_path / "out.mp4"), video_facts(path)
    for key in ["frames", "rate", "duration", "start", "time_base", "size", "pts"]:
        assert got[key] == want[key], key
    copied, original = audio_packets(tmp_path / "out.mp4"), audio_packets(path)
    assert len(copied) == len(original) > 0
    assert copied == original                                  # same timestamps and same bytes


def test_variable_frame_rate_kept(tmp_video, tmp_path):
    pts = [0, 40, 80, 150, 160, 200, 290, 300, 340, 420]
    path = tmp_video(pts=pts, audio=True)
    with VideoFileSource(path) as source:
        render(source, tmp_path / "out.mp4")
    got, want = video_facts(tmp_path / "out.mp4"), video_facts(path)
    assert got["pts"] == want["pts"] and got["time_base"] == want["time_base"]
    assert got["frames"] == len(pts)
    # (no duration check here: with B-frames, as in this input, mp4 derives its duration from
    # decode timestamps; news_1 below, without B-frames, checks duration and average fps)
    assert audio_packets(tmp_path / "out.mp4") == audio_packets(path)


def test_news_clip_variable_frame_rate_and_audio_kept(shared_dir, tmp_path):
    path = shared_dir / "data" / "videos" / "news_1.mp4"    # 135 frames, irregular 22.13 fps, AAC
    with VideoFileSource(path) as source:
        assert source.n_frames == 135 and source.has_audio
        render(source, tmp_path / "news.mp4", preset="ultrafast")
    got, want = video_facts(tmp_path / "news.mp4"), video_facts(path)
    assert len(set(np.diff(want["pts"]))) > 1                  # really variable
    for key in ["frames", "rate", "duration", "start", "time_base", "pts"]:
        assert got[key] == want[key], key
    copied, original = audio_packets(tmp_path / "news.mp4"), audio_packets(path)
    assert len(copied) == len(original) == 264 and copied == original


def test_partial_render_keeps_audio_up_to_the_video_end(tmp_video, tmp_path):
    path = tmp_video(n_frames=50, fps=25, audio=True)
    with VideoFileSource(path) as source:
        with VideoWriter(tmp_path / "part.mp4", source) as writer:
            for frame in source:
                writer.write(frame)
                if frame.index == 9:
                    break
    got = video_facts(tmp_path / "part.mp4")
    assert got["frames"] == 10 and got["pts"] == video_facts(path)["pts"][:10]
    copied, original = audio_packets(tmp_path / "part.mp4"), audio_packets(path)
    assert copied == original[:len(copied)]
    video_end = 10 / 25
    assert copied[-1][0] / 44100 <= video_end < original[len(copied)][0] / 44100   # audio ends with the video


@pytest.mark.parametrize("codec, suffix, kept_as", [("flac", ".mov", "aac"), ("libopus", ".mov", "aac"),
                                                    ("pcm_s16le", ".mp4", "aac"), ("libopus", ".avi", "aac"),
                                                    ("flac", ".mp4", "flac"), ("pcm_s16le", ".mov", "pcm_s16le"),
                                                    ("libmp3lame", ".mp4", "mp3")])   # whose decoder is "mp3float"
def test_audio_the_container_cannot_hold_is_re_encoded(tmp_video, tmp_path, codec, suffix, kept_as):
    # copied because the muxer lists them, FLAC and Opus in .mov and PCM in .mp4 failed when the
    # file was finished (no output at all), and .avi wrote no audio for Opus packets
    path = tmp_video("clip.mkv", n_frames=25, fps=25, audio=codec)
    with VideoFileSource(path) as source:
        render(source, tmp_path / f"out{suffix}")
    with av.open(str(tmp_path / f"out{suffix}")) as container:
        [stream] = container.streams.audio
        seconds = sum(frame.samples for frame in container.decode(stream)) / stream.rate
    assert stream.codec_context.codec.canonical_name == kept_as
    assert seconds == pytest.approx(1.0, abs=0.05)   # the whole second of the source's sound


def test_temp_file_renamed_only_at_close(tmp_path, astronaut):
    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, fps=10)
    for _ in range(3):
        writer.write(astronaut[:64, :96])
    assert not target.exists() and writer.temp_path.exists()
    assert writer.temp_path.parent == target.parent
    assert writer.close() == target
    assert target.exists() and not writer.temp_path.exists()
    assert video_facts(target)["frames"] == 3


def test_abort_and_exception_leave_no_output(tmp_path, astronaut):
    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, fps=10)
    writer.write(astronaut[:64, :96])
    writer.abort()
    assert list(tmp_path.iterdir()) == []

    target.write_bytes(b"previous result")                    # an older output stays as it was
    with pytest.raises(RuntimeError, match="crash"):
        with VideoWriter(target, fps=10) as writer:
            writer.write(astronaut[:64, :96])
            raise RuntimeError("crash in the pipeline")
    assert target.read_bytes() == b"previous result"
    assert list(tmp_path.iterdir()) == [target]


def test_unwritable_output(tmp_path, tmp_video):
    with pytest.raises(InputError, match="does not exist"):
        VideoWriter(tmp_path / "missing_dir" / "out.mp4")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InputError, match="is not a folder"):
        VideoWriter(a_file / "out.mp4")
    with pytest.raises(InputError, match="it is a folder"):
        VideoWriter(tmp_path)
    with pytest.raises(InputError, match=r"unknown video format '.xyz' \(e.g. .mp4"):
        VideoWriter(tmp_path / "out.xyz")
    with pytest.raises(InputError, match="a file name with an extension is needed"):
        VideoWriter(tmp_path / "out")
    with pytest.raises(InputError, match="cannot hold libx264"):
        VideoWriter(tmp_path / "out.ogv")
    with pytest.raises(InputError, match=r"cannot hold ffv1 video \(a video's label maps go to a lossless .mkv"):
        LabelVideoWriter(tmp_path / "labels.png")
    with pytest.raises(InputError, match="cannot write"):
        LabelVideoWriter(tmp_path / "missing_dir" / "labels.mkv")
    video = tmp_video()
    with VideoFileSource(video) as source, pytest.raises(InputError, match="overwrite the input"):
        VideoWriter(video, source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "file"]


def test_odd_size_is_padded_and_constant_rate_without_source(tmp_path, astronaut):
    target = tmp_path / "odd.mp4"
    images = [astronaut[i * 8: i * 8 + 47, :63] for i in range(5)]
    with VideoWriter(target, fps=10) as writer:
        for image in images:
            writer.write(image)
    assert writer.size == (64, 48)
    facts = video_facts(target)
    assert facts["size"] == (64, 48) and facts["frames"] == 5 and facts["rate"] == 10
    assert [p * facts["time_base"] for p in facts["pts"]] == [Fraction(i, 10) for i in range(5)]
    with av.open(str(target)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    for image, out in zip(images, decoded):
        assert np.abs(out[:47, :63].astype(float) - image).mean() < 6     # lossy, but the same picture
        assert np.abs(out[47].astype(float) - out[46]).mean() < 6         # padding repeats the edge


def test_writer_rejects_misuse(tmp_path, astronaut):
    writer = VideoWriter(tmp_path / "a.mp4", fps=10)
    writer.write(Frame(image=astronaut[:64, :96], index=0, time=0.0), pts=5)
    with pytest.raises(ValueError, match="must increase"):
        writer.write(astronaut[:64, :96], pts=5)
    with pytest.raises(ValueError, match="differs"):
        writer.write(astronaut[:32, :32])
    writer.write(astronaut[:64, :96])                          # pts 6: still fine after the errors
    writer.close()
    facts = video_facts(tmp_path / "a.mp4")
    assert [p * facts["time_base"] for p in facts["pts"]] == [Fraction(5, 10), Fraction(6, 10)]
    empty = VideoWriter(tmp_path / "b.mp4")
    with pytest.raises(ValueError, match="no frames"):
        empty.close()
    assert not (tmp_path / "b.mp4").exists() and not empty.temp_path.exists()


def test_label_video_is_lossless_and_frame_aligned(tmp_video, tmp_path):
    path = tmp_video(n_frames=8, size=(96, 64))
    rng = np.random.default_rng(0)
    with VideoFileSource(path) as source:
        labels, pts = [], []
        for frame in source:
            label = rng.integers(0, 11, size=frame.image.shape[:2], dtype=np.uint8)
            label[:4, :4] = 255                                        # ignore pixels survive too
            labels.append(label)
            pts.append(frame.pts)
        target = save_labels(tmp_path / "labels.mkv", zip(labels, pts), source=source)
    back = read_label_video(target)
    assert back.shape == (8, 64, 96) and back.dtype == np.uint8
    assert np.array_equal(back, np.stack(labels))
    with av.open(str(target)) as container:
        times = [float(f.pts * f.time_base) for f in container.decode(video=0)]
    assert times == pytest.approx([p * source.time_base for p in pts], abs=1e-3)


def test_label_video_odd_size_and_abort(tmp_path):
    labels = [np.full((29, 37), k, np.uint8) for k in range(4)]
    labels[2][10:20, 5:30] = 10
    back = read_label_video(save_labels(tmp_path / "odd.mkv", labels, fps=25))
    assert np.array_equal(back, np.stack(labels))
    with pytest.raises(KeyError):
        with LabelVideoWriter(tmp_path / "crash.mkv", fps=25) as writer:
            writer.write(labels[0])
            raise KeyError("crash")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.mkv"]
    with pytest.raises(InputError, match="no such file"):
        read_label_video(tmp_path / "crash.mkv")


def test_bundled_demo_clip(tmp_path):
    demo = Path(__file__).resolve().parents[2] / "assets" / "demo.mp4"
    assert demo.stat().st_size < 1_000_000
    with VideoFileSource(demo) as source:
        assert source.size == (448, 448) and source.fps == 25 and source.n_frames == 125 and source.has_audio
        render(source, tmp_path / "demo_out.mp4", preset="ultrafast")
    assert audio_packets(tmp_path / "demo_out.mp4") == audio_packets(demo)   # passthrough shown on the demo
    got, want = video_facts(tmp_path / "demo_out.mp4"), video_facts(demo)
    for key in ["frames", "rate", "duration", "start", "time_base", "size", "pts"]:
        assert got[key] == want[key], key


def test_demo_clip_maker_is_deterministic(tmp_path):
    first = make_clip(tmp_path / "a.mp4", seconds=0.4, size=96)
    second = make_clip(tmp_path / "b.mp4", seconds=0.4, size=96)
    assert first.read_bytes() == second.read_bytes()
    facts = video_facts(first)
    assert facts["frames"] == 10 and facts["size"] == (96, 96) and len(audio_packets(first)) > 0
