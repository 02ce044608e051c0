"""stream.video_loop.process_video, the one loop of run_live.py and the page, on real files and how
each run can end: finished, Ctrl-C (partial files), a camera that goes away, a write that fails."""
import os
import signal

import av
import pytest

from stream import assemble
from stream.capture import CameraSource, VideoFileSource
from stream.video_io import read_label_video
from core.errors import OutputError
from stream.video_loop import Interrupted, process_video
from tests.stream.test_capture import Unplugged


@pytest.fixture(scope="module")
def pipeline_factory():
    def make():
        return assemble.build_pipeline(model="landmarks", max_faces=1, log=lambda *a: None)
    return make


def times(path):
    with av.open(str(path)) as container:
        return [float(f.pts * f.time_base) for f in container.decode(video=0)]


def test_finished_run_has_the_source_frames_and_calls_back(tmp_video, tmp_path, pipeline_factory):
    clip = tmp_video(n_frames=10, size=(128, 128), audio=True)
    seen = []
    run = process_video(VideoFileSource(clip), pipeline_factory(), tmp_path / "out.mp4", tmp_path / "l.mkv",
                        on_frame=lambda result, run: seen.append(run.frames))
    assert run.output == tmp_path / "out.mp4" and run.labels == tmp_path / "l.mkv"
    assert run.frames == 10 and seen == list(range(1, 11)) and run.lost == 0 and not run.partial
    assert times(run.output) == pytest.approx(times(clip), abs=1e-3)
    assert read_label_video(run.labels).shape == (10, 128, 128)


def test_ctrl_c_keeps_the_frames_done_in_a_partial_file(tmp_video, tmp_path, pipeline_factory):
    clip = tmp_video(n_frames=30, size=(128, 128), audio=True)

    def interrupt_after_eight(result, run):
        if run.frames == 8:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as stop:
        process_video(VideoFileSource(clip), pipeline_factory(), tmp_path / "out.mp4", tmp_path / "labels.mkv",
                      on_frame=interrupt_after_eight)
    run = stop.value.run
    assert isinstance(stop.value, KeyboardInterrupt)
    assert run.partial and run.frames == 8
    assert run.output == tmp_path / "out.partial.mp4" and run.labels == tmp_path / "labels.partial.mkv"
    assert times(run.output) == pytest.approx(times(clip)[:8], abs=1e-3)   # playable, the first 8 frames
    with av.open(str(run.output)) as container:
        assert len(container.streams.audio) == 1                           # the audio up to there
    assert read_label_video(run.labels).shape[0] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "labels.partial.mkv", "out.partial.mp4"]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_ctrl_c_that_python_drops_still_stops_the_run(tmp_video, tmp_path, pipeline_factory):
    # a real SIGINT whose handler runs inside a __del__: Python prints that KeyboardInterrupt
    # ("Exception ignored in") and drops it; the run must stop all the same
    clip = tmp_video(n_frames=30, size=(128, 128))

    class SignalOnCollect:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)

    def interrupt_after_five(result, run):
        if run.frames == 5:
            SignalOnCollect()   # collected at once: the signal is handled inside its __del__

    with pytest.raises(Interrupted) as stop:
        process_video(VideoFileSource(clip), pipeline_factory(), tmp_path / "out.mp4", on_frame=interrupt_after_five)
    assert stop.value.run.partial and stop.value.run.frames == 6   # the frame being written when it came
    assert len(times(tmp_path / "out.partial.mp4")) == 6
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # the handler is given back


def test_ctrl_c_before_any_frame_keeps_nothing(tmp_video, tmp_path, pipeline_factory):
    class Stopped(VideoFileSource):
        def __iter__(self):
            raise KeyboardInterrupt
            yield

    with pytest.raises(Interrupted) as stop:
        process_video(Stopped(tmp_video(n_frames=5)), pipeline_factory(), tmp_path / "out.mp4")
    assert stop.value.run.output is None and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_camera_that_goes_away_keeps_its_recording(tmp_video, tmp_path, pipeline_factory):
    camera = CameraSource(Unplugged(tmp_video(n_frames=60, size=(128, 96)), 25), max_failed_reads=5)
    run = process_video(camera, pipeline_factory(), tmp_path / "rec.mp4")
    assert run.disconnected and 0 < run.frames <= 25
    recorded = times(tmp_path / "rec.mp4")                  # closed properly: it plays, every frame in it
    assert len(recorded) == run.frames and recorded == sorted(set(recorded))


def test_ctrl_c_ends_a_camera_recording_under_its_name(tmp_video, tmp_path, pipeline_factory):
    camera = CameraSource(Unplugged(tmp_video(n_frames=60, size=(128, 96)), 60), max_failed_reads=5)

    def interrupt(result, run):
        if run.frames == 5:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted) as stop:
        process_video(camera, pipeline_factory(), tmp_path / "rec.mp4", on_frame=interrupt)
    assert not stop.value.run.partial and stop.value.run.output == tmp_path / "rec.mp4"
    assert len(times(tmp_path / "rec.mp4")) == 5


def test_failing_write_keeps_nothing(tmp_video, tmp_path, pipeline_factory, monkeypatch):
    # the disk filling up, as PyAV reports it (the real one: tests/app/test_cli_faults.py)
    from stream import video_io
    write = video_io.VideoWriter.write

    def full_disk(self, image, pts=None):
        if self.frames_written == 4:
            raise av.error.OSError(28, "No space left on device")
        return write(self, image, pts)

    monkeypatch.setattr(video_io.VideoWriter, "write", full_disk)
    with pytest.raises(OutputError, match="No space left on device .the disk is full."):
        process_video(VideoFileSource(tmp_video(n_frames=10)), pipeline_factory(), tmp_path / "out.mp4",
                      tmp_path / "labels.mkv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_ctrl_c_inside_the_stages_stops_every_stage_thread(tmp_video, pipeline_factory):
    # a Ctrl-C that lands while the main thread waits for the next rendered frame: its traceback
    # holds the stages' generators (process_video keeps it while it saves the partial file), and
    # their threads, blocked on full queues, kept Ctrl-C waiting 30 s for close()
    from stream.threads import join_all
    source = VideoFileSource(tmp_video(n_frames=60, size=(128, 128)))
    pipeline = pipeline_factory()
    results = pipeline.run(source)
    next(results)
    try:
        results.throw(KeyboardInterrupt)
    except KeyboardInterrupt as exc:
        held = exc   # noqa: F841 (kept alive here, as the handler keeps it)
        assert [t.name for t in join_all(pipeline._stages, timeout=10)] == []
    finally:
        source.close()
        pipeline.close()
