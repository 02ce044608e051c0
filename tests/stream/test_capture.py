"""Frame sources on real files: video decode thread, camera newest-frame-wins, still images."""
import time

import av
import cv2
import numpy as np
import pytest

from stream.capture import CameraSource, ImageSource, VideoFileSource, image_paths_in, open_source, read_image
from core.errors import InputError


# --- VideoFileSource ------------------------------------------------------------------------

def test_video_source_yields_every_frame_in_order_with_stream_timestamps(tmp_video, astronaut):
    path = tmp_video(n_frames=20, size=(96, 64), fps=25, audio=True)
    with av.open(str(path)) as container:
        expected_pts = [f.pts for f in container.decode(video=0)]
    with VideoFileSource(path) as source:
        assert source.size == (96, 64) and source.fps == 25.0 and source.n_frames == 20
        assert source.has_audio and source.path == path
        frames = list(source)
        assert source.finished and source.frames_read == 20
    assert [f.index for f in frames] == list(range(20))
    assert [f.pts for f in frames] == expected_pts
    assert all(f.time_base == source.time_base for f in frames)
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(20)])
    first = frames[0].image
    assert first.shape == (64, 96, 3) and first.dtype == np.uint8
    # RGB, not BGR: the first frame is the astronaut's top-left 2/3, scaled down
    crop = cv2.resize(astronaut[:341, :341], (96, 64), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(first.astype(float) - crop).mean() < 8
    assert np.abs(first[..., ::-1].astype(float) - crop).mean() > 20


def test_video_source_keeps_variable_frame_rate(tmp_video):
    pts = [0, 40, 80, 150, 160, 200, 290, 300]
    path = tmp_video(pts=pts)
    with VideoFileSource(path) as source:
        frames = list(source)
    scale = 1 / (source.time_base * 1000)          # the mp4 muxer picks its own time base
    assert [f.pts / scale for f in frames] == pytest.approx(pts)
    assert [f.time for f in frames] == pytest.approx([p / 1000 for p in pts])


def test_slow_consumer_gets_every_frame_with_bounded_queue(tmp_video):
    path = tmp_video(n_frames=24)
    with VideoFileSource(path, queue_size=3) as source:
        seen = []
        for frame in source:
            assert source._queue.qsize() <= 3         # decoding waits instead of piling frames up
            seen.append(frame.index)
            time.sleep(0.005)
    assert seen == list(range(24))


def test_close_midway_stops_the_decode_thread(tmp_video):
    source = VideoFileSource(tmp_video(n_frames=30), queue_size=2)
    next(iter(source))
    source.close()
    assert not source._thread.is_alive()
    assert not source.finished


def test_decode_thread_error_reaches_consumer_as_input_error(tmp_video):
    # ffmpeg conceals corrupt or truncated data instead of failing mid-stream (checked on
    # truncated and garbled mp4/mkv files), so the failure is injected after frame 3.
    class FailingSource(VideoFileSource):
        def _to_frame(self, av_frame, index):
            if index == 3:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            return super()._to_frame(av_frame, index)

    source = FailingSource(tmp_video(n_frames=10))
    got = []
    with pytest.raises(InputError, match="after frame 3"):
        for frame in source:
            got.append(frame.index)
    assert got == [0, 1, 2]
    source.close()


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        VideoFileSource(tmp_path / "nope.mp4")


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError, match="not a readable video"):
        VideoFileSource(path)


def test_zero_length_video(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    with pytest.raises(InputError, match="is empty"):
        VideoFileSource(empty)
    # valid containers holding a video stream with no frames (mp4 drops the empty track, avi keeps it)
    for name, message in [("no_frames.mp4", "no video stream"), ("no_frames.avi", "no video frames")]:
        path = tmp_path / name
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
            container.start_encoding()
        assert path.stat().st_size > 0
        with pytest.raises(InputError, match=message):
            VideoFileSource(path)


def test_audio_only_file_has_no_video(tmp_path):
    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        wave = np.zeros((1, 4096), np.float32)
        frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
        frame.sample_rate = 44100
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(InputError, match="no video stream"):
        VideoFileSource(path)


# --- CameraSource -----------------------------------------------------------------------------

def test_camera_that_cannot_be_opened():
    with pytest.raises(InputError, match="cannot open camera 99"):
        CameraSource(99)


def test_camera_newest_frame_wins_with_slow_consumer(tmp_video):
    # cv2 reads a file as fast as it can: a stand-in for a camera outrunning the consumer
    path = tmp_video(n_frames=60, size=(64, 48))
    source = CameraSource(cv2.VideoCapture(str(path)))
    delivered = []
    for frame in source:
        assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
        delivered.append(frame.index)
        time.sleep(0.03)
    source.close()
    assert source.frames_read == 60
    assert source.dropped > 0
    assert delivered == sorted(set(delivered))               # strictly increasing
    assert len(delivered) + source.dropped == source.frames_read
    assert delivered[-1] == 59                                # the newest frame is never lost


def test_camera_close_ends_iteration(tmp_video):
    source = CameraSource(cv2.VideoCapture(str(tmp_video(n_frames=200, size=(64, 48)))))
    frame = source.read(timeout=5)
    assert frame is not None and frame.index >= 0
    source.close()
    assert not source._thread.is_alive()
    assert list(source) == [] and source.read() is None      # nothing left after close


# --- images and open_source ------------------------------------------------------------------

def test_image_source_reads_rgb_and_reports_unreadable(tmp_path, astronaut):
    good = tmp_path / "a.png"
    cv2.imwrite(str(good), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    bad = tmp_path / "b.jpg"
    bad.write_bytes(b"not an image")
    assert np.array_equal(read_image(good), astronaut)

    source = ImageSource([good, bad, good])
    assert len(source) == 3 and source[2].index == 2
    with pytest.raises(InputError, match="not a readable image"):
        list(source)
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "missing.png")

    skipping = ImageSource([good, bad, good], skip_unreadable=True)
    frames = list(skipping)
    assert [f.index for f in frames] == [0, 2] and skipping.skipped == [bad]
    assert np.array_equal(frames[1].image, astronaut)


def test_open_source_picks_by_kind(tmp_path, tmp_video, astronaut):
    folder = tmp_path / "pics"
    folder.mkdir()
    for name in ["b.png", "a.jpg"]:
        cv2.imwrite(str(folder / name), astronaut[..., ::-1])
    (folder / "readme.txt").write_text("x")
    assert [p.name for p in image_paths_in(folder)] == ["a.jpg", "b.png"]

    assert isinstance(open_source(folder), ImageSource)
    assert isinstance(open_source(folder / "b.png"), ImageSource)
    video = tmp_video()
    with open_source(video) as source:
        assert isinstance(source, VideoFileSource)
    odd_name = video.rename(video.with_suffix(".bin"))       # unknown extension: probed with av
    with open_source(odd_name) as source:
        assert isinstance(source, VideoFileSource) and len(list(source)) == 12
    with pytest.raises(InputError, match="cannot open camera 99"):
        open_source("99")
    with pytest.raises(InputError, match="no such file"):
        open_source(tmp_path / "missing.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images"):
        open_source(empty)
