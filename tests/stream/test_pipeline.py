"""The assembled pipeline on real frames."""
import numpy as np
import pytest

from models.parsers import registry
from core.classes import BACKGROUND, SKIN
from stream import assemble as session
from stream.capture import VideoFileSource, read_image
from core.types import Frame


def test_stream_results_in_order_with_stage_timings():
    pipeline = session.build_pipeline(model="landmarks", effects=None, max_faces=1)
    with VideoFileSource("assets/demo.mp4") as src:
        results = []
        for r in pipeline.run(src):
            results.append(r)
            if len(results) == 12:
                break
    pipeline.close()
    assert [r.frame.index for r in results] == list(range(12))
    assert all(len(r.faces) == 1 for r in results)
    assert set(results[-1].timings) >= {"landmarks", "parse", "smoothing", "warp_back", "effects"}
    fp = results[-1].faces[0]
    x0, y0, x1, y1 = fp.box
    assert fp.probs.shape == (11, y1 - y0, x1 - x0)
    assert np.allclose(fp.probs.sum(0), 1, atol=1e-3)


def test_face_only_the_detector_finds_is_parsed_by_the_learned_tier(shared_dir):
    if "rnng" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt")
    # FaceSynthetics 000071, a profile: the mesh misses it, the detector finds it
    image = read_image(shared_dir / "data" / "facesynthetics" / "000071.png")
    pipeline = session.build_pipeline(model="landmarks", effects=None, static_images=True)
    assert pipeline.fallback_parser is not None and pipeline.fallback_parser.name != "landmarks"
    result = pipeline.process(Frame(image, 0, 0.0))
    pipeline.close()
    assert len(result.faces) == 1 and result.faces[0].face.mesh is None
    label = result.faces[0].crop_probs.argmax(0)
    assert (label == SKIN).mean() > 0.05 and (label != BACKGROUND).mean() > 0.2


def test_landmark_tier_pipeline_never_imports_torch():
    """The landmark tier's whole path (build, track, parse, smooth, effects, label maps, the
    --model auto card of the tier) runs without torch or numba when whole-head hair is off (the
    hair network, on by default, runs on torch)."""
    import subprocess
    import sys
    code = """
import sys
import effects
from stream import assemble
from stream.capture import VideoFileSource
from models.parsers import select
pipeline = assemble.build_pipeline(model="landmarks", effects=effects.parse_effects(effects.DEFAULT_EFFECTS),
                                   whole_hair=False)
with VideoFileSource("assets/demo.mp4") as src:
    for i, r in enumerate(pipeline.run(src)):
        assemble.label_map(r)
        if i == 8:
            break
pipeline.close()
assert select.recorded_accuracy("landmarks") > 0
print("torch" in sys.modules, "numba" in sys.modules)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[-2:] == ["False", "False"]


def test_smoothing_in_either_thread_gives_the_same_frames(monkeypatch):
    """Smoothing runs in the parse thread with the default effects (the render thread is the
    slowest) and with rendering for lipstick alone; either way the frames are the same."""
    from effects import DEFAULT_EFFECTS, parse_effects
    pipeline = session.build_pipeline(model="landmarks", effects=parse_effects(DEFAULT_EFFECTS), max_faces=1,
                                      whole_hair=False)
    assert pipeline.smooth_with_parse()
    pipeline.effects = parse_effects("lipstick=#b0103a:0.8,teeth=0.4")
    assert not pipeline.smooth_with_parse()
    pipeline.close()
    outputs = []
    for early in (True, False):
        pipeline = session.build_pipeline(model="landmarks", effects=parse_effects(DEFAULT_EFFECTS), max_faces=1,
                                          whole_hair=False)
        monkeypatch.setattr(pipeline, "smooth_with_parse", lambda: early)
        with VideoFileSource("assets/demo.mp4") as src:
            outputs.append(np.stack([r.output for _, r in zip(range(12), pipeline.run(src))]))
        pipeline.close()
    assert np.array_equal(outputs[0], outputs[1])


def test_effects_alone_parse_and_smooth_only_their_classes_with_the_same_image():
    """Without label maps the landmark tier parses and the smoother smooths only the classes
    the effects read (lipstick: the lips); the rendered frames stay those of the full parse
    (the smoother's per-pixel weight is taken over fewer classes: within a grey level)."""
    from effects import parse_effects
    from core.classes import LOWER_LIP, UPPER_LIP
    outputs = {}
    for labels in (True, False):
        pipeline = session.build_pipeline(model="landmarks", effects=parse_effects("lipstick=#b0103a:0.8"),
                                          max_faces=1, whole_hair=False)
        pipeline.labels_wanted = labels
        with VideoFileSource("assets/demo.mp4") as src:
            results = [r for _, r in zip(range(15), pipeline.run(src))]
        pipeline.close()
        outputs[labels] = np.stack([r.output for r in results]).astype(np.float32)
        assert results[-1].classes == (None if labels else frozenset((UPPER_LIP, LOWER_LIP)))
        if not labels:
            assert pipeline.parser._segmenter._segmenter is None   # no skin/hair models ran
    assert np.abs(outputs[True] - outputs[False]).mean() < 0.05
    assert np.abs(outputs[True] - outputs[False]).max() <= 8


def test_hair_effect_with_whole_head_hair_parses_and_warps_only_hair_skin_background():
    """With the hair network on, the hair effect paints the fused hair as it is: the parse, the
    smoother and the warp into the frame keep background, skin and hair only (the other planes
    over the frame box stay 0), and the frames are those of the full parse within a grey level."""
    from effects import parse_effects
    from core.classes import HAIR
    outputs = {}
    for labels in (True, False):
        pipeline = session.build_pipeline(model="landmarks", effects=parse_effects("hair=#c03030:0.7"), max_faces=1)
        pipeline.labels_wanted = labels
        with VideoFileSource("assets/demo.mp4") as src:
            results = [r for _, r in zip(range(15), pipeline.run(src))]
        pipeline.close()
        outputs[labels] = np.stack([r.output for r in results]).astype(np.float32)
        parses = [p for r in results for p in r.faces]
        assert parses and all(p.whole_hair for p in parses)
        assert results[-1].classes == (None if labels else frozenset((BACKGROUND, SKIN, HAIR)))
        others = [c for c in range(11) if c not in (BACKGROUND, SKIN, HAIR)]
        warped = max(float(p.probs[others].max()) for p in parses)
        assert warped > 0.5 if labels else warped == 0.0
    assert np.abs(outputs[True] - outputs[False]).mean() < 0.05
    assert np.abs(outputs[True] - outputs[False]).max() <= 12


@pytest.mark.parametrize("spec", ["lipstick=#b0103a:0.8", "default"])
def test_combined_with_makeup_alone_runs_no_person_mask(monkeypatch, spec):
    """`combined` with lipstick alone (the lips blended from RNN-G's and the landmark tier's) or
    the default makeup: no person mask (it moves hair and skin to background beyond the face's
    outline, where makeup does not paint); the rendered frames are those of the full parse
    within a grey level or so."""
    if "combined" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt (committed with the project)")
    from effects import DEFAULT_EFFECTS, parse_effects
    spec = DEFAULT_EFFECTS if spec == "default" else spec
    outputs = {}
    for labels in (True, False):
        pipeline = session.build_pipeline(model="combined", effects=parse_effects(spec),
                                          max_faces=1, whole_hair=False)
        pipeline.labels_wanted = labels
        rnng_calls = []
        rnng = pipeline.parser.rnng
        monkeypatch.setattr(pipeline.parser, "rnng", lambda *a: rnng_calls.append(1) or rnng(*a))
        with VideoFileSource("assets/demo.mp4") as src:
            results = [r for _, r in zip(range(15), pipeline.run(src))]
        pipeline.close()
        outputs[labels] = np.stack([r.output for r in results]).astype(np.float32)
        assert all(r.faces for r in results)
        masked = [r.person_mask is not None for r in results]
        # (the stage threads may parse a few frames beyond the 15 taken)
        assert len(rnng_calls) >= 15 and (all(masked) if labels else not any(masked))
    assert np.abs(outputs[True] - outputs[False]).mean() < 0.05
    assert np.abs(outputs[True] - outputs[False]).max() <= 8


def test_the_hair_effect_keeps_the_person_mask():
    from effects import parse_effects
    pipeline = session.build_pipeline(model="rnng", effects=parse_effects("smooth=0.4,hair=#c03030:0.7"), max_faces=1)
    pipeline.labels_wanted = False
    assert pipeline.person_wanted()
    pipeline.effects = parse_effects("smooth=0.4,blush=#e07a7a:0.35")
    assert not pipeline.person_wanted()
    pipeline.close()


def test_small_people_in_a_photo_keep_their_skin_and_hair():
    # the learned tiers keep skin and hair inside the person mask; on the whole 1280x720 frame
    # the mask missed these four small people, and every face lost its skin and hair
    from core.classes import HAIR
    from tests.faces import small_group
    if "rnng" not in registry.available_checkpoints():
        pytest.skip("needs checkpoints/rnng.pt (committed with the project)")
    image, boxes = small_group()
    pipeline = session.build_pipeline(model="rnng", effects=None, static_images=True)
    try:
        labels = session.label_map(pipeline.process(Frame(image=image, index=0, time=0.0)))
    finally:
        pipeline.close()
    for x0, y0, x1, y1 in boxes:
        part = labels[y0:y1, x0:x1]
        area = part.size
        assert (part == SKIN).sum() > 0.08 * area and (part == HAIR).sum() > 0.04 * area
    assert not np.isin(labels[:180], (SKIN, HAIR)).any()   # the grey above them stays background
