"""Makeup and hair effects on real faces: the astronaut and a dark-haired portrait (tests/fixtures),
parsed by the landmark tier, measured in Lab."""
from functools import lru_cache

from pathlib import Path
import cv2
import numpy as np
import pytest

from effects import (DEFAULT_EFFECTS, EFFECT_NAMES, EffectSettings, EffectSpecError, legend_html, legend_image,
                     overlay_labels, parse_effects, render)
from effects.colour import colour_lab, parse_colour, rgb_to_lab
from effects.hair import extended_box
from core import align
from core.classes import (BACKGROUND, CLASS_NAMES, HAIR, INNER_MOUTH, LEFT_EYE, LOWER_LIP, NOSE, PALETTE, RIGHT_EYE, SKIN,
                            UPPER_LIP)
from models.parsers.landmark_parser import LandmarkParser
from core.types import Face, FaceParse
from tests.faces import tracked

DARK_HAIR = "portrait_D000197"   # shoulder-length dark brown hair, black top under a tweed jacket


@lru_cache(maxsize=None)
def parsed(name: str):
    """(frame, FaceParse) of a fixture face: tracker -> aligned crop -> landmark tier -> frame."""
    image, face = tracked(name)
    crop = align.warp_crop(image, face.matrix)
    five = align.transform_points(face.five, face.matrix)[None]
    mesh = align.transform_points(face.mesh, face.matrix)[None]
    crop_probs = LandmarkParser()(crop[None], five, mesh)[0]
    box, probs = align.probs_to_frame(crop_probs, face.matrix, image.shape[:2])
    image = image.copy()
    image.setflags(write=False)  # render must not write into its input
    return image, FaceParse(face=face, box=box, probs=probs, crop_probs=crop_probs)


def frame_mask(parse: FaceParse, classes, threshold: float, shape) -> np.ndarray:
    """Frame-sized bool mask of pixels whose summed class probability exceeds threshold."""
    x0, y0, x1, y1 = parse.box
    mask = np.zeros(shape[:2], bool)
    mask[y0:y1, x0:x1] = sum(parse.probs[c] for c in classes) > threshold
    return mask


def local_std(L: np.ndarray, mask: np.ndarray) -> float:
    """Mean local (5x5) standard deviation of L over mask: the texture that must survive."""
    mean = cv2.blur(L, (5, 5))
    std = np.sqrt(np.maximum(cv2.blur(L * L, (5, 5)) - mean * mean, 0))
    return float(std[mask].mean())


def hue_gap(lab: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Angle (radians) between each pixel's a/b hue and the target's."""
    d = np.arctan2(lab[..., 2], lab[..., 1]) - np.arctan2(target[2], target[1])
    return np.abs(np.angle(np.exp(1j * d)))


def outside_box(shape, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    out = np.ones(shape[:2], bool)
    out[y0:y1, x0:x1] = False
    return out


# ---------------------------------------------------------------------------------------- spec

def test_parse_effects_reads_every_effect():
    s = parse_effects("lipstick=#b0103a:0.7:gloss,hair=#6a2ca0:0.5,smooth=0.4,blush=#e07a7a:0.4,"
                      "eyeshadow=#6b4c9a:0.5,brows=#3b2416:0.5,teeth=0.5")
    assert s.active() == list(EFFECT_NAMES)
    lip = s.params("lipstick")
    assert lip.colour == (0xb0, 0x10, 0x3a) and lip.strength == 0.7 and lip.finish == "gloss"
    assert s.params("hair").colour == (0x6a, 0x2c, 0xa0) and s.params("hair").strength == 0.5
    assert s.params("smooth").colour is None and s.params("teeth").strength == 0.5
    # the spec survives a round trip, and the default spec parses
    assert parse_effects(s.to_spec()) == s
    assert len(parse_effects(DEFAULT_EFFECTS).active()) >= 4
    assert parse_effects("").active() == [] and parse_effects("none").active() == []
    assert parse_effects("lipstick=#B0103A:1:MATTE").params("lipstick").finish == "matte"
    assert parse_effects("blush").enabled("blush")  # a bare name takes the default values


@pytest.mark.parametrize("spec, words", [
    ("lipstik=#b0103a:0.7", ["unknown effect", "lipstick", "eyeshadow", "teeth"]),
    ("lipstick=crimsom:0.7", ["bad colour", "'crimsom'", "did you mean 'crimson'", "CSS colour name", "#rrggbb"]),
    ("hair=notacolour:0.5", ["bad colour", "'notacolour'", "hair"]),
    ("lipstick=#b0103g:0.7", ["bad colour"]),
    ("hair=#6a2ca0:1.5", ["bad strength", "0 to 1"]),
    ("smooth=-0.1", ["bad strength", "0 to 1"]),
    ("teeth=lots", ["bad strength"]),
    ("smooth=nan", ["bad strength"]),
    ("lipstick=#b0103a:0.7:shiny", ["bad finish", "matte or gloss"]),
    ("blush=#e07a7a:0.4:gloss", ["only lipstick takes a finish"]),
    ("smooth=#ffffff:0.4", ["smooth=strength"]),
    ("hair=#6a2ca0:0.5,hair=#000000:0.5", ["twice"]),
])
def test_parse_effects_errors_say_what_is_allowed(spec, words):
    with pytest.raises(EffectSpecError) as err:
        parse_effects(spec)
    assert isinstance(err.value, ValueError)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_css_colour_names_are_accepted_wherever_a_colour_is():
    s = parse_effects("lipstick=crimson:0.7,hair=RebeccaPurple:0.5,blush= lightcoral :0.3")
    assert s.params("lipstick").colour == (220, 20, 60)     # CSS crimson = #dc143c
    assert s.params("hair").colour == (102, 51, 153)        # case does not matter
    assert s.params("blush").colour == (240, 128, 128)
    assert parse_effects("lipstick=crimson:0.7") == parse_effects("lipstick=#dc143c:0.7")
    assert parse_colour("hsl(0, 100%, 50%)") == (255, 0, 0)
    assert EffectSettings.from_values(brows=("saddlebrown", 0.4)).params("brows").colour == (139, 69, 19)
    with pytest.raises(ValueError, match="not a colour: 'crimsom' \\(did you mean 'crimson'\\?\\)"):
        parse_colour("crimsom")


def test_settings_from_values_and_toggles():
    s = EffectSettings.from_values(lipstick=("#b0103a", 0.7, "gloss"), hair=((106, 44, 160), 0.5),
                                   smooth=0.4, teeth=None, blush=("rgba(224, 122, 122, 1)", 0.0))
    assert s.active() == ["smooth", "lipstick", "hair"]      # None and strength 0 leave an effect off
    assert s.params("hair").colour == (106, 44, 160)
    assert s.params("blush").colour == (224, 122, 122)      # Gradio's colour picker format
    assert s.toggle("lipstick") is False and not s.enabled("lipstick")
    assert s.toggle("lipstick") is True and s.params("lipstick").finish == "gloss"  # values kept
    assert s.toggle("eyeshadow") is True and s.params("eyeshadow").colour is not None  # defaults
    assert s.toggle_key("h") == "hair" and not s.enabled("hair")
    assert s.toggle_key("?") is None
    with pytest.raises(EffectSpecError):
        EffectSettings.from_values(lipstick=("#b0103a", 2.0))
    with pytest.raises(EffectSpecError):
        s.toggle("glitter")


# ------------------------------------------------------------------------------------- effects

def test_no_effect_returns_an_equal_copy():
    image, parse = parsed("astronaut")
    out = render(image, [parse], parse_effects("none"))
    assert out is not image and np.array_equal(out, image)
    assert np.array_equal(render(image, [], parse_effects(DEFAULT_EFFECTS)), image)


def test_lipstick_moves_lips_toward_the_colour_keeps_texture_and_the_rest():
    image, parse = parsed("astronaut")
    target = colour_lab((0xb0, 0x10, 0x3a))
    lips = frame_mask(parse, (UPPER_LIP, LOWER_LIP), 0.7, image.shape)
    before, results = rgb_to_lab(image), {}
    for finish in ("gloss", "matte"):
        out = render(image, [parse], parse_effects(f"lipstick=#b0103a:0.7:{finish}"))
        after = rgb_to_lab(out)
        dist_before = np.linalg.norm(before[lips] - target, axis=1).mean()
        dist_after = np.linalg.norm(after[lips] - target, axis=1).mean()
        assert dist_after < 0.6 * dist_before, (finish, dist_before, dist_after)
        # texture: the lips' local lightness variation survives (no flat paint)
        assert local_std(after[..., 0], lips) > 0.5 * local_std(before[..., 0], lips)
        # nothing outside the face box changes, not even by rounding
        assert np.array_equal(out[outside_box(image.shape, parse.box)], image[outside_box(image.shape, parse.box)])
        # nor far from the lips inside it (the eyes)
        eyes = frame_mask(parse, (LEFT_EYE, RIGHT_EYE), 0.5, image.shape)
        assert np.array_equal(out[eyes], image[eyes])
        results[finish] = after[..., 0][lips]
    # gloss puts highlights on the lips' lit parts, matte flattens them
    assert np.percentile(results["gloss"], 97) > np.percentile(results["matte"], 97) + 3


def test_hair_recolour_lifts_dark_hair_toward_the_colour_and_keeps_strands():
    image, parse = parsed(DARK_HAIR)
    target = colour_lab((0x6a, 0x2c, 0xa0))
    hair = frame_mask(parse, (HAIR,), 0.9, image.shape)
    before = rgb_to_lab(image)
    assert before[..., 0][hair].mean() < 35  # the fixture's hair is dark
    out = render(image, [parse], parse_effects("hair=#6a2ca0:0.5"))
    after = rgb_to_lab(out)
    L0, L1 = before[..., 0][hair], after[..., 0][hair]
    # dark hair takes the colour: lighter (toward the target's L), not only a hue shift
    assert L1.mean() - L0.mean() > 0.25 * (target[0] - L0.mean())
    chroma0, chroma1 = np.hypot(*before[hair][:, 1:].T), np.hypot(*after[hair][:, 1:].T)
    assert chroma1.mean() > chroma0.mean() + 15
    assert hue_gap(after[hair], target).mean() < 0.5 * hue_gap(before[hair], target).mean()
    # strands: the local lightness variation stays (it grows with the lift)
    assert local_std(after[..., 0], hair) > 0.8 * local_std(before[..., 0], hair)
    # pixels outside the hair's working region are untouched
    rest = outside_box(image.shape, extended_box(parse.box, image.shape[:2]))
    assert np.array_equal(out[rest], image[rest])
    # the skin in the middle of the face is not recoloured
    skin = frame_mask(parse, (SKIN, NOSE), 0.99, image.shape) & ~frame_mask(parse, (HAIR,), 0.01, image.shape)
    assert np.abs(after[skin] - before[skin]).max(axis=1).mean() < 0.5


def test_whole_head_hair_leaves_faint_probabilities_unpainted():
    """The hair network's faint hair on a plain backdrop (0.1-0.2 above the crown of a head near
    the frame's top edge) must not tint the wall; confident hair is painted as before."""
    image, parse = parsed(DARK_HAIR)
    probs = parse.probs.copy()
    h, w = probs.shape[1:]
    probs[:, :h // 8] = 0.0
    probs[HAIR, :h // 8, : w // 2] = 0.15          # faint: a wall the network is unsure of
    probs[HAIR, :h // 8, w // 2:] = 0.9            # confident
    probs[BACKGROUND, :h // 8] = 1.0 - probs[HAIR, :h // 8]
    whole = FaceParse(face=parse.face, box=parse.box, probs=probs, whole_hair=True)
    out = render(image, [whole], parse_effects("hair=#c03030:0.7"))
    x0, y0, x1, y1 = parse.box
    change = np.abs(out.astype(int) - image)[y0:y0 + h // 8 - 3].sum(2)   # clear of the feathered edge
    assert change[:, :w // 2 - 3].mean() < 1.0
    assert change[:, w // 2 + 3:].mean() > 20


def test_long_hair_below_the_crop_is_recoloured_but_not_the_clothes():
    """A portrait whose straight black hair falls beyond the bottom of the aligned crop, on a
    white shirt."""
    path = Path(__file__).resolve().parents[1] / "fixtures" / "portrait_C001135.jpg"  # public domain
    if not path.exists():
        pytest.skip(f"{path} not found")
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    from models.perception.tracker import FaceTracker
    tracker = FaceTracker(static_images=True, max_faces=1)
    face = tracker.process(image)[0]
    tracker.close()
    crop = align.warp_crop(image, face.matrix)
    probs = LandmarkParser()(crop[None], align.transform_points(face.five, face.matrix)[None],
                             align.transform_points(face.mesh, face.matrix)[None])[0]
    box, probs_box = align.probs_to_frame(probs, face.matrix, image.shape[:2])
    parse = FaceParse(face, box, probs_box, probs)
    out = render(image, [parse], parse_effects("hair=#6a2ca0:0.6"))
    before, after = rgb_to_lab(image), rgb_to_lab(out)
    below = np.zeros(image.shape[:2], bool)
    below[box[3]:, :] = True
    dark = below & (before[..., 0] < 25)             # the hair below the crop (and nothing else is dark there)
    shirt = below & (before[..., 0] > 80)
    assert dark.sum() > 2000 and shirt.sum() > 5000
    moved = np.linalg.norm(after - before, axis=2)
    assert (moved[dark] > 5).mean() > 0.5            # most of the long hair took the colour
    assert (moved[shirt] > 3).mean() < 0.02          # the white shirt did not


def test_skin_smoothing_removes_fine_texture_but_keeps_lip_edges():
    image, parse = parsed(DARK_HAIR)
    out = render(image, [parse], parse_effects("smooth=1"))
    L0, L1 = rgb_to_lab(image)[..., 0], rgb_to_lab(out)[..., 0]
    skin = frame_mask(parse, (SKIN,), 0.99, image.shape)
    skin = cv2.erode(skin.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    energy = lambda L: np.abs(L - cv2.GaussianBlur(L, (0, 0), 1.5))[skin].mean()
    assert energy(L1) < 0.6 * energy(L0), (energy(L0), energy(L1))
    # the lips' outline: gradient magnitude where the lip probability crosses 1/2
    lips = frame_mask(parse, (UPPER_LIP, LOWER_LIP), 0.5, image.shape).astype(np.uint8)
    edge = (cv2.dilate(lips, np.ones((3, 3), np.uint8)) - cv2.erode(lips, np.ones((3, 3), np.uint8))) > 0
    grad = lambda L: np.hypot(cv2.Sobel(L, cv2.CV_32F, 1, 0), cv2.Sobel(L, cv2.CV_32F, 0, 1))[edge].mean()
    assert grad(L1) > 0.8 * grad(L0), (grad(L0), grad(L1))
    eyes = frame_mask(parse, (LEFT_EYE, RIGHT_EYE), 0.7, image.shape)  # (their soft rim is half skin)
    assert np.array_equal(out[eyes], image[eyes])


def test_teeth_whitening_lifts_and_cools_the_teeth_only():
    image, parse = parsed("astronaut")  # a wide smile
    out = render(image, [parse], parse_effects("teeth=1"))
    before, after = rgb_to_lab(image), rgb_to_lab(out)
    mouth = frame_mask(parse, (INNER_MOUTH,), 0.7, image.shape)
    teeth = mouth & (before[..., 0] > np.percentile(before[..., 0][mouth], 60))
    assert teeth.sum() > 30
    assert after[..., 0][teeth].mean() > before[..., 0][teeth].mean() + 3
    assert after[..., 2][teeth].mean() < before[..., 2][teeth].mean() - 3
    lips = frame_mask(parse, (UPPER_LIP, LOWER_LIP), 0.9, image.shape)
    assert np.abs(after[lips] - before[lips]).max(axis=1).mean() < 1.0


def test_blush_eyeshadow_brows_land_where_they_belong():
    image, parse = parsed(DARK_HAIR)
    before = rgb_to_lab(image)
    m, s = parse.face.mesh, np.linalg.norm(parse.face.five[1] - parse.face.five[0])
    eyes = frame_mask(parse, (LEFT_EYE, RIGHT_EYE), 0.5, image.shape)

    out = render(image, [parse], parse_effects("blush=#e07a7a:0.8"))
    after = rgb_to_lab(out)
    for idx in (50, 280):  # the cheek apples
        x, y = np.round(m[idx]).astype(int)
        assert after[y, x, 1] > before[y, x, 1] + 4  # redder
    assert np.array_equal(out[eyes], image[eyes])

    out = render(image, [parse], parse_effects("eyeshadow=#6b4c9a:0.8"))
    after = rgb_to_lab(out)
    lid = np.round(m[159] + (m[159] - m[145]) * 0.6).astype(int)  # above the upper lid's middle
    assert np.linalg.norm(after[lid[1], lid[0]] - before[lid[1], lid[0]]) > 3
    eyes_core = frame_mask(parse, (LEFT_EYE, RIGHT_EYE), 0.9, image.shape)
    assert np.abs(after[eyes_core] - before[eyes_core]).max(axis=1).mean() < 0.5
    mouth = frame_mask(parse, (UPPER_LIP, LOWER_LIP, INNER_MOUTH), 0.1, image.shape)
    assert np.array_equal(out[mouth], image[mouth])

    target = colour_lab((0x3b, 0x24, 0x16))
    brows = frame_mask(parse, (2, 3), 0.8, image.shape)
    out = render(image, [parse], parse_effects("brows=#3b2416:0.8"))
    after = rgb_to_lab(out)
    assert (np.linalg.norm(after[brows] - target, axis=1).mean()
            < 0.7 * np.linalg.norm(before[brows] - target, axis=1).mean())
    assert s > 20


def test_detector_only_faces_skip_landmark_effects():
    image, parse = parsed("astronaut")
    face = parse.face
    bare = FaceParse(Face(face.id, face.five, face.matrix, None, face.score, "detector"),
                     parse.box, parse.probs, parse.crop_probs)
    assert np.array_equal(render(image, [bare], parse_effects("blush=#e07a7a:1,eyeshadow=#6b4c9a:1")), image)
    out = render(image, [bare], parse_effects("lipstick=#b0103a:0.8,brows=#3b2416:0.8"))
    assert not np.array_equal(out, image)


def test_all_effects_together_stay_inside_the_region():
    image, parse = parsed(DARK_HAIR)
    spec = ("lipstick=#b0103a:0.7:gloss,hair=#6a2ca0:0.5,smooth=0.4,blush=#e07a7a:0.4,"
            "eyeshadow=#6b4c9a:0.5,brows=#3b2416:0.5,teeth=0.5")
    out = render(image, [parse, parse], parse_effects(spec))  # two faces may overlap
    assert out.shape == image.shape and out.dtype == np.uint8
    rest = outside_box(image.shape, extended_box(parse.box, image.shape[:2]))
    assert np.array_equal(out[rest], image[rest])
    assert (np.abs(out.astype(int) - image).max(axis=2) > 2).mean() > 0.05


# ------------------------------------------------------------------------------------- overlay

def test_overlay_labels_and_legend():
    image, parse = parsed("astronaut")
    out = overlay_labels(image, [parse], alpha=0.5)
    label = np.full(image.shape[:2], -1)
    x0, y0, x1, y1 = parse.box
    label[y0:y1, x0:x1] = parse.probs.argmax(0)
    for c in (SKIN, HAIR, LOWER_LIP):
        px = label == c
        expected = 0.5 * image[px].astype(float) + 0.5 * PALETTE[c]
        assert np.abs(out[px] - expected).max() <= 1
    unchanged = label <= 0
    assert np.array_equal(out[unchanged], image[unchanged])
    legend = legend_image()
    assert legend.dtype == np.uint8 and legend.shape[0] >= 11 * 10 and legend.shape[2] == 3
    for c in range(len(CLASS_NAMES)):  # every class colour appears in the legend
        assert (np.abs(legend.astype(int) - PALETTE[c]).sum(axis=2) == 0).any()
    html = legend_html()
    assert all(name in html for name in CLASS_NAMES)


# ------------------------------------------------------------------------- one lazy pass per face

@pytest.mark.parametrize("name", ["astronaut", DARK_HAIR])
def test_lazy_warp_back_renders_the_same_as_warping_every_class(name):
    """Effects on a FaceParse that warps back only what they ask for, and only the parts they
    work on, give the image that the fully warped probabilities give, to a grey level or two on
    a few pixels (the warp is linear; a part warped on its own rounds OpenCV's fixed-point
    coordinates a little differently)."""
    image, parse = parsed(name)
    spec = ("lipstick=#b0103a:0.7:gloss,hair=#6a2ca0:0.5,smooth=0.4,blush=#e07a7a:0.4,"
            "eyeshadow=#6b4c9a:0.5,brows=#3b2416:0.5,teeth=0.5")
    lazy = FaceParse(parse.face, parse.box, crop_probs=parse.crop_probs)
    eager = render(image, [parse], parse_effects(spec))
    out = render(image, [lazy], parse_effects(spec))
    diff = np.abs(out.astype(int) - eager)
    assert diff.max() <= 3 and diff.mean() < 0.01
    assert (diff > 0).mean() < 1e-3


def test_lipstick_alone_warps_and_converts_only_around_the_lips(monkeypatch):
    import sys
    image, parse = parsed("astronaut")
    lazy = FaceParse(parse.face, parse.box, crop_probs=parse.crop_probs)
    render_module = sys.modules["effects.render"]   # (the package exports the function `render`)
    regions = []
    original = render_module.FaceRegion

    def keep(*args, **kwargs):
        regions.append(original(*args, **kwargs))
        return regions[-1]
    monkeypatch.setattr(render_module, "FaceRegion", keep)
    out = render(image, [lazy], parse_effects("lipstick=#b0103a:0.7"))
    assert not np.array_equal(out, image)
    assert lazy._probs is None              # the 11 planes were never warped over the whole box
    converted = regions[0].converted.mean()
    assert 0 < converted < 0.15             # Lab only around the lips, not the face's box
    lips = frame_mask(parse, (UPPER_LIP, LOWER_LIP), 0.5, image.shape)
    changed = (out != image).any(-1)
    assert changed[lips].mean() > 0.9 and changed[~lips].mean() < 0.01


@pytest.mark.parametrize("spec", [DEFAULT_EFFECTS, "blush=#e07a7a:0.8,eyeshadow=#6b4c9a:0.8"])
def test_lab_converted_part_by_part_renders_as_converted_at_once(monkeypatch, spec):
    """Each effect converts to Lab only the bounding box of its pixels not yet converted; pixels
    an earlier effect already edited in Lab keep their edits (the blush's reach under the
    eyeshadow's box). Same image as a region converted whole before the first effect."""
    import sys
    image, parse = parsed(DARK_HAIR)
    settings = parse_effects(spec)
    lazy = render(image, [parse], settings)
    render_module = sys.modules["effects.render"]
    original = render_module.FaceRegion

    def converted_at_once(*args, **kwargs):
        region = original(*args, **kwargs)
        region.ensure_lab(region.rgb.shape[0])
        return region
    monkeypatch.setattr(render_module, "FaceRegion", converted_at_once)
    at_once = render(image, [parse], settings)
    assert not np.array_equal(lazy, image)
    np.testing.assert_array_equal(lazy, at_once)


def test_recolour_writes_into_a_view_of_a_larger_region():
    """recolour edits the Lab it is given in place, also a strided view into the region's Lab
    (what box_lab returns), exactly as it edits a contiguous copy, and nothing beside it."""
    from effects.colour import recolour
    image, parse = parsed("astronaut")
    region = rgb_to_lab(image[60:260, 120:320])
    weight = np.zeros((80, 90), np.float32)
    weight[10:70, 15:75] = 0.8
    view = region[50:130, 40:130]
    alone = view.copy()
    before = region.copy()
    recolour(view, weight, colour_lab((176, 16, 58)), l_pull=0.5, sigma=4.0, chroma=0.8)
    recolour(alone, weight, colour_lab((176, 16, 58)), l_pull=0.5, sigma=4.0, chroma=0.8)
    np.testing.assert_array_equal(region[50:130, 40:130], alone)
    assert np.abs(alone - before[50:130, 40:130]).max() > 10
    region[50:130, 40:130] = before[50:130, 40:130]
    np.testing.assert_array_equal(region, before)


def test_face_parse_class_prob_matches_the_full_warp():
    image, parse = parsed("astronaut")
    lazy = FaceParse(parse.face, parse.box, crop_probs=parse.crop_probs)
    sub = (slice(40, 120), slice(30, 150))
    for classes in ((SKIN,), (UPPER_LIP, LOWER_LIP), (0,), (0, HAIR)):
        full = sum(parse.probs[c] for c in classes)
        assert np.allclose(lazy.class_prob(classes), full, atol=1e-5)
        # a part of the box is warped on its own: OpenCV's fixed-point coordinates (1/32 pixel
        # interpolation steps) round a little differently from another origin
        part = lazy.class_prob(classes, sub)
        assert part.shape == full[sub].shape
        assert np.abs(part - full[sub]).max() < 0.05 and np.abs(part - full[sub]).mean() < 1e-3
    assert np.allclose(lazy.probs, parse.probs, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in EFFECT_NAMES if n != "hair"])
def test_each_effect_reads_only_its_declared_classes(name):
    """effects.render.READS drives what the pipeline parses and smooths without label maps: an
    effect rendered from a parse holding only its declared classes (the rest zeroed, as the
    landmark tier and the smoother leave them) gives the same image as from the full parse."""
    from effects.render import READS, classes_read
    image, full = parsed(DARK_HAIR)
    settings = parse_effects(name)
    assert classes_read(settings) == frozenset(READS[name])
    partial_crop = np.zeros_like(full.crop_probs)
    for c in READS[name]:
        partial_crop[c] = full.crop_probs[c]
    whole = FaceParse(face=full.face, box=full.box, crop_probs=full.crop_probs)
    partial = FaceParse(face=full.face, box=full.box, crop_probs=partial_crop)
    expected = render(image, [whole], settings)
    assert not np.array_equal(expected, image)   # the effect did something
    np.testing.assert_array_equal(render(image, [partial], settings), expected)
