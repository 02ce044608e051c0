"""Dataset readers: HELEN, LFW Part Labels, LaPa and CelebAMask-HQ on fixtures written here in
their exact release layouts (from the astronaut photo); FaceSynthetics and the LFW hair masks
on the real files in ../shared (skipped when absent)."""
import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from core import align
from core.classes import BACKGROUND, HAIR, IGNORE, LEFT_EYE, NOSE, RIGHT_EYE, SKIN
from models.data.readers import align_sample, fix_left_right

pytest.importorskip("mediapipe", reason="readers align with the pipeline's tracker (mediapipe)")


@pytest.fixture(scope="module")
def face():
    """astronaut() with its five points from the tracker and a label map drawn around them:
    skin ellipse, hair cap, eyes, nose; `swapped` has left/right named the subject's way."""
    from models.perception.tracker import FaceTracker
    image = astronaut()
    tracker = FaceTracker(max_faces=1, static_images=True)
    five = tracker.process(image)[0].five
    tracker.close()
    d = float(np.linalg.norm(five[1] - five[0]))
    centre = tuple(int(v) for v in five.mean(0))
    label = np.zeros(image.shape[:2], np.uint8)
    cv2.ellipse(label, (centre[0], centre[1] - int(0.5 * d)), (int(1.6 * d), int(1.6 * d)), 0, 180, 360, HAIR, -1)
    cv2.ellipse(label, centre, (int(1.1 * d), int(1.5 * d)), 0, 0, 360, SKIN, -1)
    for p, cls in ((five[0], LEFT_EYE), (five[1], RIGHT_EYE)):
        cv2.ellipse(label, tuple(int(v) for v in p), (int(0.2 * d), int(0.1 * d)), 0, 0, 360, cls, -1)
    cv2.circle(label, tuple(int(v) for v in five[2]), int(0.15 * d), NOSE, -1)
    swapped = label.copy()
    swapped[label == LEFT_EYE], swapped[label == RIGHT_EYE] = RIGHT_EYE, LEFT_EYE
    return {"image": image, "five": five, "label": label, "swapped": swapped}


def _write_rgb(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def _check_aligned(sample):
    """Aligned crop: eyes near the template, left eye class on the image's left."""
    a = align_sample(sample)
    assert a["image"].shape == (256, 256, 3) and a["label"].shape == (256, 256)
    template = align.template_points(256)
    assert np.abs(a["five"][:2] - template[:2]).max() < 12
    xs_left = np.nonzero(a["label"] == LEFT_EYE)[1]
    xs_right = np.nonzero(a["label"] == RIGHT_EYE)[1]
    assert len(xs_left) and len(xs_right) and xs_left.mean() < 128 < xs_right.mean()
    return a


def test_fix_left_right_swaps_only_when_needed(face):
    fixed, swapped = fix_left_right(face["swapped"])
    assert swapped and np.array_equal(fixed, face["label"])
    same, swapped = fix_left_right(face["label"])
    assert not swapped and np.array_equal(same, face["label"])


# ---------------------------------------------------------------- HELEN (Smith et al. 2013)
def test_helen_reader(face, tmp_path):
    from models.data.readers.helen import HelenReader
    root = tmp_path / "SmithCVPR2013_dataset_resized"
    ids = {"exemplars.txt": ["100032540_1", "100040721_1"], "tuning.txt": ["10405146_1"], "testing.txt": ["1030333538_1"]}
    for fname, names in ids.items():
        (root).mkdir(parents=True, exist_ok=True)
        (root / fname).write_text("".join(f"{i + 1} , {n}\n" for i, n in enumerate(names)))
        for k, n in enumerate(names):
            _write_rgb(root / "images" / f"{n}.jpg", face["image"])
            label = face["swapped"] if k == 0 else face["label"]   # both conventions occur
            for c in range(11):  # soft per-class maps: blurred masks, argmax recovers the class
                soft = cv2.GaussianBlur((label == c).astype(np.float32) * 255, (5, 5), 1)
                (root / "labels" / n).mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(root / "labels" / n / f"{n}_lbl{c:02d}.png"), soft.astype(np.uint8))
    (root / "labels" / "10405146_1" / "10405146_1_lbl07.png").unlink()   # a broken sample
    reader = HelenReader()
    samples = list(reader.read(root))
    reader.close()
    assert [(s.id, s.split) for s in samples] == [("helen_100032540_1", "train"), ("helen_100040721_1", "train"),
                                                  ("helen_1030333538_1", "test")]
    assert reader.drops == {"missing_file": 1}
    assert reader.stats["left_right_swapped"] == 2 and reader.stats["left_right_as_named"] == 1
    for s in samples:
        assert s.label_kind == "full" and s.mesh is not None
        a = _check_aligned(s)
        assert set(np.unique(a["label"])) <= {BACKGROUND, SKIN, LEFT_EYE, RIGHT_EYE, NOSE, HAIR}


# ---------------------------------------------------------------- LFW Part Labels (Kae et al. 2013)
def test_lfw_parts_reader(face, tmp_path):
    from models.data.readers.lfw_parts import LfwPartsReader
    root = tmp_path / "lfw_parts"
    # funneled LFW is 250x250 around the face: cut it from the astronaut at the same scale
    m = align.similarity_matrix(face["five"][:2], np.array([[104, 114], [147, 113]]))
    image = align.warp_crop(face["image"], m, 250)
    gt3 = align.warp_crop(face["label"], m, 250, interpolation=cv2.INTER_NEAREST)
    ppm = np.zeros((250, 250, 3), np.uint8)   # RGB: R hair, G skin (with parts), B background
    ppm[gt3 == HAIR, 0] = 255
    ppm[(gt3 >= 1) & (gt3 <= 9), 1] = 255
    ppm[gt3 == 0, 2] = 255
    splits = {"parts_train.txt": "Aaron_Eckhart", "parts_validation.txt": "Abel_Pacheco", "parts_test.txt": "Zoe_Ball"}
    for fname, name in splits.items():
        (root / fname).parent.mkdir(parents=True, exist_ok=True)
        (root / fname).write_text(f"{name} 1\n")
        _write_rgb(root / "lfw_funneled" / name / f"{name}_0001.jpg", image)
        _write_rgb(root / "parts_lfw_funneled_gt_images" / f"{name}_0001.ppm", ppm)
    reader = LfwPartsReader()
    samples = {s.split: s for s in reader.read(root)}
    reader.close()
    assert set(samples) == {"train", "val", "test"}
    assert samples["train"].id == "lfwpl_Aaron_Eckhart_0001"
    for split, s in samples.items():
        a = align_sample(s)
        assert a["label"].shape == (256, 256) and (a["label"] == HAIR).sum() > 500
        if split == "train":   # skin -> auto-labelled face classes, else unknown
            assert {LEFT_EYE, RIGHT_EYE, NOSE} <= set(np.unique(a["label"]))
            assert (a["label"] == IGNORE).any() or (a["label"] == SKIN).any()
        else:                  # ground truth only: the three LFW-PL classes
            assert set(np.unique(a["label"])) == {BACKGROUND, SKIN, HAIR}


# ---------------------------------------------------------------- LaPa (Liu et al. 2020)
def _lapa106(five):
    """106 points in the JD-106 layout, filled where the reader looks (others at the centre)."""
    p = np.tile(five.mean(0), (106, 1))
    d = five[1] - five[0]
    for i, k in enumerate(range(52, 58)):
        p[k] = five[0] + d * 0.15 * np.cos(i)
    for i, k in enumerate(range(58, 64)):
        p[k] = five[1] + d * 0.15 * np.cos(i)
    p[47:52] = five[2] + np.linspace(-0.2, 0.2, 5)[:, None] * d
    p[84], p[90], p[104], p[105] = five[3], five[4], five[0], five[1]
    return p


def test_lapa_reader(face, tmp_path):
    from models.data.readers.lapa import LapaReader, five_from_lapa106
    root = tmp_path / "LaPa"
    for split, label in (("train", face["label"]), ("val", face["label"]), ("test", face["swapped"])):
        _write_rgb(root / split / "images" / "a_1.jpg", face["image"])
        (root / split / "labels").mkdir(parents=True)
        cv2.imwrite(str(root / split / "labels" / "a_1.png"), label)
        (root / split / "landmarks").mkdir(parents=True)
        pts = _lapa106(face["five"])
        if split == "val":   # a layout with the sides the other way round
            pts[[104, 105]] = pts[[105, 104]]
            pts[[84, 90]] = pts[[90, 84]]
        (root / split / "landmarks" / "a_1.txt").write_text("106\n" + "".join(f"{x:.3f} {y:.3f}\n" for x, y in pts))
    reader = LapaReader()
    samples = list(reader.read(root))
    assert [s.split for s in samples] == ["train", "val", "test"]
    assert reader.stats == {"left_right_as_named": 2, "left_right_swapped": 1}
    for s in samples:
        assert np.allclose(s.five, face["five"], atol=1.0)
        assert s.mesh is None and s.label_kind == "full"
        a = _check_aligned(s)
        assert a["mesh"] is None
    assert np.allclose(five_from_lapa106(_lapa106(face["five"])), face["five"], atol=1.0)


# ---------------------------------------------------------------- CelebAMask-HQ (Lee et al. 2020)
def test_celebamask_reader(face, tmp_path):
    from models.data.readers.celebamask import CelebAMaskReader
    root = tmp_path / "CelebAMask-HQ"
    big = cv2.resize(face["image"], (1024, 1024))          # CelebA-HQ images are 1024, masks 512
    names = {LEFT_EYE: "r_eye", RIGHT_EYE: "l_eye"}          # the subject's left = image right
    for idx in (0, 1, 2):
        _write_rgb(root / "CelebA-HQ-img" / f"{idx}.jpg", big)
        folder = root / "CelebAMask-HQ-mask-anno" / "0"
        folder.mkdir(parents=True, exist_ok=True)
        masks = {"skin": face["label"] >= 1, "hair": face["label"] == HAIR, "nose": face["label"] == NOSE,
                 names[LEFT_EYE]: face["label"] == LEFT_EYE, names[RIGHT_EYE]: face["label"] == RIGHT_EYE}
        masks["skin"] &= face["label"] != HAIR
        glasses = np.zeros_like(face["label"], bool)
        glasses[face["label"] == LEFT_EYE] = True
        glasses = cv2.dilate(glasses.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool)
        masks["eye_g"] = glasses
        masks["hat"] = np.zeros_like(glasses)
        masks["hat"][:40] = True
        for part, m in masks.items():
            cv2.imwrite(str(folder / f"{idx:05d}_{part}.png"), cv2.resize(m.astype(np.uint8) * 255, (512, 512),
                                                                        interpolation=cv2.INTER_NEAREST))
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text(
        "idx         orig_idx    orig_file\n0 119613 119614.jpg\n1 99094 099095.jpg\n2 200083 200084.jpg\n")
    (root / "list_eval_partition.txt").write_text("099095.jpg 0\n119614.jpg 1\n200084.jpg 2\n")
    reader = CelebAMaskReader()
    samples = list(reader.read(root))
    reader.close()
    assert [(s.id, s.split) for s in samples] == [("celebamask_0", "val"), ("celebamask_1", "train"),
                                                  ("celebamask_2", "test")]
    assert reader.stats["left_right_swapped"] == 3
    a = _check_aligned(samples[0])
    labels = set(np.unique(a["label"]))
    assert IGNORE in labels and {SKIN, NOSE, HAIR, BACKGROUND} <= labels   # glasses frame -> ignore
    assert samples[0].image.shape == (1024, 1024, 3) and samples[0].label.shape == (1024, 1024)


# ---------------------------------------------------------------- FaceSynthetics (real files)
@pytest.fixture
def fs_dir(shared_dir):
    return shared_dir / "data" / "facesynthetics"


@pytest.fixture
def lfw_dir(shared_dir):
    return shared_dir / "data" / "lfw_hair"


def test_facesynthetics_splits_and_mapping(fs_dir):
    FS = fs_dir
    from models.data.readers.facesynthetics import CLASS_MAP, FaceSyntheticsReader
    assert CLASS_MAP[4] == LEFT_EYE and CLASS_MAP[3] == RIGHT_EYE and CLASS_MAP[13] == HAIR
    assert all(CLASS_MAP[k] == BACKGROUND for k in (7, 8, 12, 15, 17))    # ears, neck, clothes, headwear
    assert all(CLASS_MAP[k] == IGNORE for k in (14, 16, 18))               # beard, glasses, facewear
    reader = FaceSyntheticsReader(use_tracker=False)
    samples = list(reader.read(FS))
    splits = [s.split for s in samples]
    assert splits.count("train") == 64 and splits.count("val") == 16
    assert all(s.split == ("train" if int(s.id[3:]) < 64 else "val") for s in samples)
    raw = cv2.imread(str(FS / "000001_seg.png"), cv2.IMREAD_UNCHANGED)
    s = samples[1]
    assert np.array_equal(s.label == LEFT_EYE, raw == 4) and np.array_equal(s.label == IGNORE, np.isin(raw, (14, 16, 18, 255)))
    # "left" is the image's left: the left-eye class lies under the left five point, left of the right eye
    a = align_sample(s)
    assert np.nonzero(a["label"] == LEFT_EYE)[1].mean() < np.nonzero(a["label"] == RIGHT_EYE)[1].mean()
    assert a["five"][0, 0] < a["five"][1, 0]


def test_facesynthetics_aligns_with_the_face_mesh(fs_dir):
    FS = fs_dir
    from models.data.readers.facesynthetics import FaceSyntheticsReader
    reader = FaceSyntheticsReader()
    samples = list(reader.read(FS, limit=3))
    reader.close()
    assert reader.alignment["mesh"] == 3
    for s in samples:
        a = align_sample(s)
        # the fit is least squares over eyes and mouth centre: eyes within a few pixels of the template
        assert a["mesh"].shape == (478, 2) and np.abs(a["five"][:2] - align.template_points(256)[:2]).max() < 12


# ---------------------------------------------------------------- LFW hair masks (real files)
def test_lfw_hair_split_by_person(lfw_dir):
    LFW = lfw_dir
    from models.data.readers.lfw_hair import person_of, split_of_person
    stems = [p.stem for p in (LFW / "images").glob("*.jpg")]
    assert len(stems) == 1791
    persons = {}
    for s in stems:
        persons.setdefault(split_of_person(person_of(s)), set()).add(person_of(s))
    assert not persons["train"] & persons["val"]
    assert len(persons["train"]) + len(persons["val"]) == 1271
    val_images = sum(split_of_person(person_of(s)) == "val" for s in stems)
    assert 0.12 < val_images / len(stems) < 0.18


def test_lfw_hair_labels_and_empty_masks_kept(lfw_dir, tmp_path):
    LFW = lfw_dir
    from models.data.readers.lfw_hair import LfwHairReader, split_of_person
    masks = sorted((LFW / "hair_masks").glob("*.png"), key=lambda p: p.stat().st_size)
    empty = [p for p in masks[:150] if cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).max() == 0]
    assert len(empty) >= 50   # the release has 75
    full = masks[-1]
    val = next(p for p in masks[::-1] if split_of_person(p.stem.rsplit("_", 1)[0]) == "val")
    root = tmp_path / "lfw"
    for p in (empty[0], full, val):
        for sub, ext in (("images", ".jpg"), ("hair_masks", ".png")):
            (root / sub).mkdir(parents=True, exist_ok=True)
            (root / sub / f"{p.stem}{ext}").symlink_to(LFW / sub / f"{p.stem}{ext}")
    reader = LfwHairReader()
    samples = {s.id: s for s in reader.read(root)}
    reader.close()
    assert len(samples) == 3 and reader.stats["empty_mask"] == 1
    e = samples[f"lfw_{empty[0].stem}"]
    assert e.label_kind == "partial" and not (e.label == HAIR).any()
    f = samples[f"lfw_{full.stem}"]
    if f.split == "train":
        assert {SKIN, LEFT_EYE, NOSE, HAIR} <= set(np.unique(f.label))
    v = samples[f"lfw_{val.stem}"]
    assert v.split == "val" and set(np.unique(v.label)) == {BACKGROUND, HAIR}   # ground truth only
    m = cv2.imread(str(LFW / "hair_masks" / f"{val.stem}.png"), cv2.IMREAD_GRAYSCALE)
    # the hair area survives the alignment: LFW eye distance ~43 px -> ~51 px in the crop, so
    # ~1.4x the pixels (less where the crop cuts the frame)
    ratio = (v.label == HAIR).sum() / (m > 127).sum()
    assert 0.7 < ratio < 2.5, ratio


def test_every_build_source_resolves_to_a_reader():
    from core.lazy import resolve
    from models.data.build import READERS
    for name, target in READERS.items():
        reader = resolve(target)
        assert callable(getattr(reader, "read", None)), name


def test_lfw_hair_hats_are_background_bald_foreheads_ignored():
    """Auto hair that the mask denies: not skin-coloured (a blue cap) -> background; skin-coloured
    (a forehead the auto-label took for hair) -> ignore; mask hair always hair."""
    from models.data.readers.lfw_hair import combine_labels
    rng = np.random.default_rng(0)
    crop = np.empty((64, 64, 3), np.uint8)
    crop[:] = (200, 150, 120)                      # skin
    crop[:16] = (30, 60, 200)                      # a blue cap
    crop += rng.integers(0, 6, crop.shape, dtype=np.uint8)
    auto = np.full((64, 64), SKIN, np.uint8)
    auto[:24] = HAIR                               # the cap and the forehead below it called hair
    hair = np.zeros((64, 64), bool)
    hair[:, :4] = True                             # the mask's hair: a strip at the side
    label = combine_labels(hair, np.ones((64, 64), bool), auto, crop)
    assert (label[:16, 4:] == BACKGROUND).all()
    assert (label[17:24, 4:] == IGNORE).all()
    assert (label[24:, 4:] == SKIN).all() and (label[:, :4] == HAIR).all()
    # without the crop (no colour to go by) both stay ignore, as before
    assert (combine_labels(hair, np.ones((64, 64), bool), auto)[:24, 4:] == IGNORE).all()
