"""Frame sources on real files: video decode thread, camera newest-frame-wins, still images."""
import threading
import time

import av
import cv2
import numpy as np
import pytest

from stream.capture import (CameraSource, ImageSource, Mode, VideoFileSource, image_paths_in, open_source,
                            read_image)
from core.errors import InputError
from tests.conftest import damage_file


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
    # damaged data no longer fails (test_damaged_video_...): an unexpected error is injected after frame 3
    class FailingSource(VideoFileSource):
        def _to_frame(self, av_frame, pts, index):
            if index == 3:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            return super()._to_frame(av_frame, pts, index)

    source = FailingSource(tmp_video(n_frames=10))
    got = []
    with pytest.raises(InputError, match="after frame 3"):
        for frame in source:
            got.append(frame.index)
    assert got == [0, 1, 2]
    source.close()


@pytest.mark.parametrize("where", ["middle", "end"])
def test_damaged_video_repeats_the_last_good_frame_in_the_source_timing(tmp_video, tmp_path, where):
    # 20 kB of garbage over a real clip (a broken download): PyAV's own decode loop stops there
    clean = tmp_video(n_frames=200, size=(320, 240), audio=True)
    broken = damage_file(clean, tmp_path / f"broken_{where}.mp4", where, 20_000)
    with av.open(str(broken)) as container, pytest.raises(av.error.InvalidDataError):
        for _ in container.decode(video=0):
            pass
    with VideoFileSource(clean) as source:
        expected = [f.pts for f in source]
    with VideoFileSource(broken) as source:
        frames = list(source)
        lost = source.frames_lost
        assert source.finished and source.frames_read == 200
    assert [f.pts for f in frames] == expected            # every timestamp of the source, in order
    assert [f.index for f in frames] == list(range(200))
    assert 5 < lost < 60
    repeats = [i for i in range(1, 200) if np.array_equal(frames[i].image, frames[i - 1].image)]
    # each lost frame is the last good one again (failed once in ~25 full runs with 32 repeats for
    # 31 lost, not reproduced in 260 runs since, under load or not: print what it saw if it recurs)
    assert len(repeats) == lost, (lost, repeats)
    if where == "end":
        assert repeats[-1] == 199 and repeats == list(range(200 - lost, 200))


def test_phone_clip_with_rotation_comes_out_upright(tmp_video, astronaut):
    # stored 240 wide and 320 high with a display matrix turning it 90 degrees: shown 320x240
    # (-90: what a phone held upright writes; ffprobe shows "rotation of -90.00 degrees")
    for rotation in (-90, 90, 180):
        path = tmp_video(f"phone_{rotation}.mp4", n_frames=6, size=(320, 240), rotation=rotation)
        with av.open(str(path)) as container:
            stored = next(container.decode(video=0))
            assert stored.rotation % 360 == rotation % 360
        with VideoFileSource(path) as source:
            assert source.size == (320, 240) and source.rotation == rotation % 360
            first = next(iter(source)).image
        crop = cv2.resize(astronaut[:341, :341], (320, 240), interpolation=cv2.INTER_AREA).astype(float)
        assert first.shape == (240, 320, 3)
        assert np.abs(first - crop).mean() < 8, rotation      # upright: the picture as it was filmed


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_ten_bit_video(tmp_video, astronaut, codec):
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this PyAV build")
    path = tmp_video(f"ten_bit_{codec}.mp4", n_frames=8, size=(128, 96), codec=codec, pix_fmt="yuv420p10le",
                     options={"x265-params": "log-level=error"} if codec == "libx265" else None)
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    with VideoFileSource(path) as source:
        frames = list(source)
    assert len(frames) == 8 and frames[0].image.dtype == np.uint8
    crop = cv2.resize(astronaut[:341, :341], (128, 96), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(frames[0].image - crop).mean() < 8


def test_gif_animated_is_a_video_still_is_an_image(tmp_path, astronaut):
    from PIL import Image
    pictures = [Image.fromarray(np.roll(astronaut, 40 * i, axis=1)).resize((128, 128)) for i in range(5)]
    pictures[0].save(tmp_path / "anim.gif", save_all=True, append_images=pictures[1:],
                     duration=[100, 100, 200, 100, 300], loop=0)
    pictures[0].save(tmp_path / "still.gif")
    with open_source(tmp_path / "anim.gif") as source:
        assert source.mode is Mode.VIDEO
        frames = list(source)
    assert len(frames) == 5 and [f.time for f in frames] == pytest.approx([0, 0.1, 0.2, 0.4, 0.5])
    source = open_source(tmp_path / "still.gif")
    assert source.mode is Mode.IMAGE
    image = next(iter(source)).image
    assert image.shape == (128, 128, 3) and np.abs(image.astype(float) - np.asarray(pictures[0])).mean() < 6


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


class Unplugged:
    """A camera that delivers `frames` frames, then fails every read (unplugged)."""

    def __init__(self, path, frames):
        self.capture, self.left = cv2.VideoCapture(str(path)), frames

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        time.sleep(0.01)
        return self.capture.read()

    def __getattr__(self, name):   # get, set, isOpened, release
        return getattr(self.capture, name)


def test_camera_that_goes_away_is_reported(tmp_video):
    path = tmp_video(n_frames=40, size=(64, 48))
    source = CameraSource(Unplugged(path, 12), max_failed_reads=5)
    assert source.mode is Mode.LIVE
    frames = list(source)                          # ends instead of waiting forever
    assert source.frames_read == 12 and frames and frames[-1].index == 11
    assert source.disconnected
    ended = CameraSource(cv2.VideoCapture(str(path)))   # a file that simply ends is no disconnection
    list(ended)
    assert ended.frames_read == 40 and not ended.disconnected


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


class Hung(Unplugged):
    """A camera that delivers `frames` frames, then hangs in read() (a driver that stopped)."""

    def __init__(self, path, frames):
        super().__init__(path, frames)
        self.release_hang = threading.Event()

    def read(self):
        if self.left == 0:
            self.release_hang.wait(30)
            return False, None
        return super().read()


def test_closing_a_hung_camera_wakes_its_reader(tmp_video):
    camera = Hung(tmp_video(n_frames=20, size=(64, 48)), 3)
    source = CameraSource(camera, max_failed_reads=5)
    got, done = [], threading.Event()
    reader = threading.Thread(target=lambda: (got.extend(source), done.set()), daemon=True)
    reader.start()
    time.sleep(0.5)                 # the 3 frames read, the camera now hangs
    assert not done.is_set()
    t0 = time.monotonic()
    source.close()                  # gives up on the stuck thread after 2 s
    assert done.wait(1.0) and time.monotonic() - t0 < 3.0 and len(got) >= 1
    camera.release_hang.set()


def test_alpha_is_read_exactly_where_the_file_has_one(tmp_path):
    """read_alpha skips its second decode when the header shows no alpha (most PNGs); every kind
    of transparency a PNG, TIFF or WebP can carry is still found (as OpenCV decodes it)."""
    from PIL import Image
    from skimage import data
    from stream.capture import read_alpha
    rgb = Image.fromarray(data.astronaut()[:64, :48])
    palette = rgb.convert("P")
    files = {"rgb.png": (rgb, {}), "rgba.png": (rgb.convert("RGBA"), {}), "la.png": (rgb.convert("LA"), {}),
             "palette.png": (palette, {}), "palette_transparent.png": (palette, {"transparency": 0}),
             "rgb_transparent_colour.png": (rgb, {"transparency": (0, 0, 0)}), "rgb.tif": (rgb, {}),
             "rgba.tif": (rgb.convert("RGBA"), {}), "rgb.webp": (rgb, {"lossless": True})}
    for name, (image, options) in files.items():
        image.save(tmp_path / name, **options)
        has_alpha = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED).shape[2:] == (4,)
        alpha = read_alpha(tmp_path / name)
        assert (alpha is not None) == has_alpha, name
        assert alpha is None or alpha.shape == (64, 48)
    assert {n for n in files if read_alpha(tmp_path / n) is not None} == {
        "rgba.png", "la.png", "palette_transparent.png", "rgb_transparent_colour.png", "rgba.tif"}
