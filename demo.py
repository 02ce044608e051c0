#!/usr/bin/env python
"""The Gradio page: face parsing with makeup and hair effects on an image, the webcam (live) or a video.

    python demo.py                  # then open http://127.0.0.1:7860
    python demo.py --port 8000 --share

Only assembles the page: every handler calls web.handlers, which drives the same pipeline as
run_live.py (stream.assemble.build_pipeline -> FacePipeline -> VideoWriter). Nothing downloads.
"""
import argparse
import logging
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 to serve the network)")
    p.add_argument("--share", action="store_true", help="also make a public gradio.live link (off by default)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--max-faces", type=int, default=4)
    talk = p.add_mutually_exclusive_group()
    talk.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    talk.add_argument("--verbose", action="store_true", help="debug messages too")
    return p.parse_args(argv)


if __name__ == "__main__":
    parse_args()   # --help and argument errors answer now, before gradio and torch load (seconds)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # no telemetry, no version check

import effects  # noqa: E402
from effects.spec import COLOUR_EFFECTS, EFFECT_NAMES, FINISHES  # noqa: E402
from stream.user_errors import user_errors  # noqa: E402
from web import handlers as web  # noqa: E402

ASSETS = Path(__file__).resolve().parent / "assets"
EXAMPLE_IMAGE = ASSETS / "astronaut.png"
EXAMPLE_VIDEO = ASSETS / "demo.mp4"
QUEUE_MAX_SIZE = 32         # requests waiting at once; beyond that a request is refused with "Queue is full"
MAX_UPLOAD = "100mb"        # per uploaded file; larger uploads are refused before they reach a handler

EFFECT_LABELS = {"smooth": "skin smoothing", "blush": "blush", "eyeshadow": "eyeshadow", "brows": "brow tint",
                 "lipstick": "lipstick", "teeth": "teeth whitening", "hair": "hair colour"}


@dataclass(frozen=True)
class PageConfig:
    """What `python demo.py` options set; build_demo() takes one."""
    device: str = "auto"
    max_faces: int = 4
    out_dir: Path = Path(tempfile.gettempdir()) / "faceparse_demo"   # results to download; kept an hour
    live_ttl_s: float = 600.0   # a webcam session idle this long frees its tracker
    leave_a_core: bool = True   # torch gets one thread fewer than the cores: the tracking thread keeps one


class Reply(NamedTuple):
    output: object        # image array, video path or None
    message: str
    warning: bool = False  # show the message as a warning toast too


class Page:
    """The page's server side: its config, one parser per tier shared by every session,
    and one live webcam session per browser tab. Handlers take (input, {control name: value}) and
    never raise: every failure becomes a Reply with a message."""

    def __init__(self, config: PageConfig = PageConfig()):
        self.config = config
        self.parsers = web.ParserCache(config.device, leave_a_core=config.leave_a_core)
        self.live = {}   # browser session id -> its web.LiveSession (closed by the unload hook)
        self._live_lock = threading.Lock()

    def on_image(self, image, controls: dict) -> Reply:
        """One image (file path or array) -> Reply(rendered image, message); the input unchanged
        when no face is found, None when the file is not a usable image."""
        if image is None:   # also when the user clears the input: nothing to warn about
            return Reply(None, "Upload an image or click the example.")
        if isinstance(image, UploadError):
            return Reply(None, str(image), True)
        try:
            output, message = web.process_image(image, controls, self.parsers, max_faces=self.config.max_faces)
        except Exception as exc:   # every failure becomes a message; the server keeps serving
            return Reply(None, web.error_message(exc), True)
        return Reply(output, message, message.startswith("No face"))

    def on_video(self, video, controls: dict, progress=None) -> Reply:
        """A video file -> Reply(path of the rendered mp4 with the source's audio, message)."""
        if video is None:
            return Reply(None, "Upload a video or click the example first.", True)
        web.cleanup_old_files(self.config.out_dir)
        self.config.out_dir.mkdir(parents=True, exist_ok=True)
        out_dir = Path(tempfile.mkdtemp(prefix="video_", dir=self.config.out_dir))
        try:
            path, message = web.process_video(video, controls, self.parsers, out_dir, progress=progress,
                                              max_faces=self.config.max_faces)
        except Exception as exc:
            return Reply(None, web.error_message(exc), True)
        return Reply(path, message, message.startswith("No face"))

    def on_webcam(self, frame, live, controls: dict, session_id: str | None = None):
        """One webcam frame of one browser session -> (Reply or None when the frame is dropped,
        that session's LiveSession, created at its first frame)."""
        if live is not None and live.closed:   # a late frame of a tab that has been closed
            return None, live
        if live is None:
            with self._live_lock:   # two early frames of one tab may both arrive before its state is stored
                live = self.live.get(session_id)
                if live is None or live.closed:
                    live = web.LiveSession(self.parsers, self.config.max_faces)
                    if session_id is not None:
                        self.live[session_id] = live
        if frame is None:
            return None, live
        try:
            reply = live.process(frame, controls)
        except Exception as exc:
            return Reply(frame, web.error_message(exc), True), live
        return (None if reply is None else Reply(*reply)), live

    def close_live(self, session_id: str | None):
        """The page's unload hook: the tab was closed or reloaded."""
        live = self.live.get(session_id)
        if live is not None:
            live.close()   # waits for a frame in progress
            self.live.pop(session_id, None)

    def close_state(self, live):
        """gr.State's delete_callback: the session ended or sat idle for live_ttl_s."""
        if live is not None:
            live.close()
            for key in [k for k, v in self.live.items() if v is live]:
                self.live.pop(key, None)

    # --- the API (gradio_client, "Use via API"): named endpoints, named and typed parameters;
    # a bad value raises gr.Error with one readable line
    def api_parse(self, image: str, model: str = "auto"):
        """Labels every pixel of every face: a PNG of class ids 0-10 (the order of the legend), the
        labels painted over the image, one {id, box, points} per face, and a message."""
        return _api_call(lambda: web.parse_image(_api_input(image), model, self.parsers, self.config.max_faces))

    def api_apply(self, image: str, effects: str = effects.DEFAULT_EFFECTS, model: str = "auto",
                  show_labels: bool = False):
        """Paints effects on an image. effects: run_live.py's --effects spec, e.g.
        "lipstick=crimson:0.7:gloss,hair=#6a2ca0:0.5,smooth=0.4" (colours: CSS names or #rrggbb)."""
        return _api_call(lambda: web.process_image(_api_input(image), web.controls_from_spec(effects, model, show_labels),
                                                   self.parsers, max_faces=self.config.max_faces))

    def api_video(self, video: str, effects: str = effects.DEFAULT_EFFECTS, model: str = "auto"):
        """Processes a whole video (every frame, the audio kept): the mp4 result and a message."""
        controls = _api_call(lambda: web.controls_from_spec(effects, model))
        reply = self.on_video(video, controls)
        if reply.output is None:
            raise _gr().Error(reply.message, print_exception=False)
        return str(reply.output), reply.message


def _gr():
    import gradio
    return gradio


def _api_input(value):
    if isinstance(value, UploadError):
        raise web.InputError(str(value))
    if value is None:
        raise web.InputError("no image given")
    return value


def _api_call(call):
    """call() with the user's errors raised as gr.Error (one line for the API client)."""
    try:
        return call()
    except user_errors() as exc:
        raise _gr().Error(str(exc), print_exception=False) from None
    except Exception as exc:
        raise _gr().Error(web.error_message(exc), print_exception=False) from None


# --- the page -------------------------------------------------------------------------------------
class UploadError(Exception):
    """An upload gradio itself could not open (not an image, too large): shown as a message."""


def readable_uploads(component: "gr.Image") -> "gr.Image":
    """Let unreadable uploads reach on_image as an UploadError (a message on the page) instead
    of failing inside gradio with a bare "Error". Wraps the instance's preprocess: a subclass
    of gr.Image would make gradio write a demo.pyi stub beside this file."""
    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except Exception as exc:
            name = getattr(payload, "orig_name", None) or "the file"
            reason = "too large" if "decompression bomb" in str(exc).lower() else "not a readable image"
            return UploadError(f"{name} is {reason}; upload a JPEG or PNG photo with a face.")

    component.preprocess = checked
    return component


def _notify(reply: Reply):
    if reply.warning:
        _gr().Warning(reply.message)


def build_demo(page: Page) -> "gr.Blocks":
    import gradio as gr
    from models.parsers import registry

    defaults = web.default_controls()
    models = ["auto"] + registry.available_checkpoints()
    with gr.Blocks(title="Face parsing: live makeup and hair effects", analytics_enabled=False,
                   delete_cache=(1800, 3600)) as demo:
        gr.Markdown("## Face parsing: makeup and hair effects\n"
                    "Every pixel of each face is labelled (11 classes) and the effects are painted from the labels. "
                    "Pick an input tab; change the effects on the left.")
        widgets = {}
        with gr.Row():
            with gr.Column(scale=1, min_width=300):
                widgets["effects"] = gr.CheckboxGroup(
                    choices=[(EFFECT_LABELS[n], n) for n in EFFECT_NAMES], value=defaults["effects"],
                    label="Effects", elem_id="effects")
                with gr.Row():
                    widgets["model"] = gr.Dropdown(models, value="auto", label="Model tier", elem_id="model",
                                                   info="auto: the most accurate tier (live tabs: that keeps up here)")
                    widgets["show_labels"] = gr.Checkbox(False, label="Show labels", elem_id="show-labels",
                                                         info="colour each pixel by its class")
                gr.HTML(effects.legend_html(), elem_id="legend")
                for name in ("lipstick", "eyeshadow", "blush", "brows", "hair", "smooth", "teeth"):
                    with gr.Accordion(EFFECT_LABELS[name], open=name == "lipstick"):
                        with gr.Row():
                            if name in COLOUR_EFFECTS:
                                widgets[f"{name}_colour"] = gr.ColorPicker(
                                    defaults[f"{name}_colour"], label="colour", elem_id=f"{name}-colour")
                            widgets[f"{name}_strength"] = gr.Slider(
                                0, 1, value=defaults[f"{name}_strength"], step=0.05, label="strength",
                                elem_id=f"{name}-strength")
                        if name == "lipstick":
                            widgets["lipstick_finish"] = gr.Radio(list(FINISHES), value=defaults["lipstick_finish"],
                                                                  label="finish", elem_id="lipstick-finish")
            with gr.Column(scale=2):
                with gr.Tab("Image"):
                    with gr.Row():
                        image_in = readable_uploads(gr.Image(
                            type="filepath", image_mode=None, sources=["upload", "clipboard"], label="Input image",
                            elem_id="input-image"))
                        image_out = gr.Image(type="numpy", format="png", label="Result", interactive=False,
                                             elem_id="output-image")
                    image_button = gr.Button("Apply", variant="primary", elem_id="apply-image")
                    image_status = gr.Textbox(label="Status", interactive=False, elem_id="image-status")
                    gr.Examples([[str(EXAMPLE_IMAGE)]], inputs=[image_in], label="Example (public-domain NASA portrait)",
                                api_visibility="private")
                with gr.Tab("Webcam (live)"):
                    with gr.Row():
                        webcam_in = gr.Image(sources=["webcam"], streaming=True, type="numpy",
                                             label="Webcam", elem_id="webcam")
                        webcam_out = gr.Image(type="numpy", label="Live result", interactive=False,
                                              elem_id="webcam-output")
                    webcam_status = gr.Textbox(label="Status", interactive=False, elem_id="webcam-status")
                    live_state = gr.State(None, time_to_live=page.config.live_ttl_s, delete_callback=page.close_state)
                with gr.Tab("Video"):
                    with gr.Row():
                        video_in = gr.Video(sources=["upload"], label="Input video (up to "
                                            f"{web.MAX_VIDEO_SECONDS:.0f} s)", elem_id="input-video")
                        video_out = gr.Video(label="Result", interactive=False, elem_id="output-video")
                    video_button = gr.Button("Process video", variant="primary", elem_id="apply-video")
                    video_file = gr.File(label="Download", interactive=False, elem_id="video-download")
                    video_status = gr.Textbox(label="Status", interactive=False, elem_id="video-status")
                    gr.Examples([[str(EXAMPLE_VIDEO)]], inputs=[video_in], label="Example clip (with sound)",
                                api_visibility="private")

        assert set(widgets) == set(web.CONTROL_NAMES), "every control of web.handlers has one widget"
        names = {component: name for name, component in widgets.items()}

        def controls_of(data: dict) -> dict:
            return {name: data[component] for component, name in names.items()}

        def run_image(data: dict):
            reply = page.on_image(data[image_in], controls_of(data))
            _notify(reply)
            return reply.output, reply.message

        def run_video(data: dict, progress=gr.Progress(track_tqdm=True)):   # shows web.process_video's tqdm bar
            reply = page.on_video(data[video_in], controls_of(data))
            _notify(reply)
            path = None if reply.output is None else str(reply.output)
            return path, path, reply.message

        def run_webcam(data: dict, request: gr.Request):
            reply, live = page.on_webcam(data[webcam_in], data[live_state], controls_of(data),
                                         getattr(request, "session_hash", None))
            if reply is None:   # dropped (still busy with the previous frame): keep what is shown
                return gr.skip(), live, gr.skip()
            return reply.output, live, reply.message

        def end_session(request: gr.Request):
            page.close_live(getattr(request, "session_hash", None))

        # the page's own events: private (the API below is the one way in for clients)
        image_inputs = {image_in, *widgets.values()}
        image_event = dict(fn=run_image, inputs=image_inputs, outputs=[image_out, image_status],
                           trigger_mode="always_last", concurrency_id="image", concurrency_limit=2,
                           show_progress_on=[image_out], api_visibility="private")
        image_in.change(**image_event)
        image_button.click(**image_event)
        for name, widget in widgets.items():   # re-render the image as the controls change
            (widget.release if isinstance(widget, gr.Slider) else widget.input)(**image_event)

        video_button.click(run_video, inputs={video_in, *widgets.values()},
                           outputs=[video_out, video_file, video_status], concurrency_limit=1,
                           show_progress_on=[video_out], api_visibility="private")
        webcam_in.stream(run_webcam, inputs={webcam_in, live_state, *widgets.values()},
                         outputs=[webcam_out, live_state, webcam_status], stream_every=0.1,
                         concurrency_limit=2, show_progress="hidden", api_visibility="private")
        demo.unload(end_session)

        # the API: /parse, /apply, /video (no trigger on the page; parameters named by the functions)
        with gr.Group(visible=False):
            api_effects = gr.Textbox(effects.DEFAULT_EFFECTS, label="effects")
            api_show_labels = gr.Checkbox(False, label="show_labels")
            api_labels = gr.Image(type="numpy", format="png", image_mode="L", label="class ids")
            api_faces = gr.JSON(label="faces")
        gr.on([], page.api_parse, inputs=[image_in, widgets["model"]],
              outputs=[api_labels, image_out, api_faces, image_status], api_name="parse",
              concurrency_id="image", concurrency_limit=2)
        gr.on([], page.api_apply, inputs=[image_in, api_effects, widgets["model"], api_show_labels],
              outputs=[image_out, image_status], api_name="apply", concurrency_id="image", concurrency_limit=2)
        gr.on([], page.api_video, inputs=[video_in, api_effects, widgets["model"]],
              outputs=[video_out, video_status], api_name="video", concurrency_limit=1)
    return demo


def main(argv=None):
    args = parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(name)s: %(message)s")   # tier choice, errors
    if args.max_faces < 1:
        _fail("--max-faces must be at least 1")
    if args.device == "cuda":   # now, not as a traceback in the log when the first parser loads
        from core.errors import InputError
        from models.parsers.torch_parser import pick_device
        try:
            pick_device("cuda")
        except InputError as exc:
            _fail(str(exc))
    page = Page(PageConfig(device=args.device, max_faces=args.max_faces))
    demo = build_demo(page)
    # load (and for "auto" time) the default parser now, so the first click is quick
    threading.Thread(target=page.parsers.get, args=("auto",), daemon=True).start()
    serve(demo, args.host, args.port, share=args.share)


def _fail(message: str):
    """One 'error:' line and exit code 2, as run_live.py gives for bad input."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def serve(demo: "gr.Blocks", host: str = "127.0.0.1", port: int = 7860, **launch_options):
    """Launch with the page's limits: at most 2 runs of a handler at once, QUEUE_MAX_SIZE waiting
    (more are refused with gradio's "Queue is full" message), uploads up to MAX_UPLOAD."""
    demo.queue(default_concurrency_limit=2, max_size=QUEUE_MAX_SIZE)
    return demo.launch(server_name=host, server_port=port, allowed_paths=[str(ASSETS)], show_error=True,
                       max_file_size=MAX_UPLOAD, **launch_options)


if __name__ == "__main__":
    main()
