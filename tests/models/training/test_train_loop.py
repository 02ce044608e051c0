"""The shared training loop and the evaluation CLI, run for real on a tiny dataset.

The dataset (compact format, written with models.data.dataset.DatasetWriter) holds jittered
aligned crops of the astronaut with a label map drawn by hand (ellipses for the parts),
plus two LFW-style hair-only samples (0 not-hair / 10 hair / 255 ignore). The tier is a
2-layer conv net defined here, put into the parser registry and the recipe map for the test.
"""
import json
import time

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.align import alignment_matrix, transform_points, warp_crop
from core.classes import HAIR, IGNORE, NUM_CLASSES
from models.data.dataset import DatasetWriter
from models.parsers import checkpoint as ckpt, registry
from models.parsers.network import TierNet
from models.parsers.parser import Parser
from models.training import evaluate, recipes, train
from models.training.trainable import Recipe, Trainable

ASTRONAUT_FIVE = np.array([(202.5, 102.5), (247.5, 104), (224, 127), (205, 143), (242, 143)], np.float32)


def hand_label() -> np.ndarray:
    """The astronaut's parts in the canonical 256 crop, drawn by hand (checked by overlay)."""
    label = np.zeros((256, 256), np.uint8)

    def ellipse(centre, axes, value, angle=0):
        cv2.ellipse(label, centre, axes, angle, 0, 360, int(value), -1)
    ellipse((128, 80), (95, 72), 10)                       # hair: crown and sides
    ellipse((62, 140), (22, 45), 10)
    ellipse((194, 140), (22, 45), 10)
    ellipse((128, 160), (57, 66), 1)                       # skin
    ellipse((98, 108), (16, 4), 2, 8)                      # brows (image's left, right)
    ellipse((158, 108), (16, 4), 3, -8)
    ellipse((99, 124), (11, 5), 4)                         # eyes
    ellipse((157, 124), (11, 5), 5)
    ellipse((128, 148), (9, 13), 6)                        # nose
    ellipse((128, 172), (24, 4), 7)                        # upper lip, inner mouth, lower lip
    ellipse((128, 177), (20, 3), 8)
    ellipse((128, 184), (20, 5), 9)
    label[-10:] = IGNORE                                   # spacesuit collar: left unlabelled
    return label


def jitter(rng) -> np.ndarray:
    """A small random similarity about the crop centre, 3x3."""
    angle, scale = rng.uniform(-10, 10), rng.uniform(0.9, 1.1)
    m = np.eye(3)
    m[:2] = cv2.getRotationMatrix2D((128, 128), angle, scale)
    m[:2, 2] += rng.uniform(-8, 8, 2)
    return m


def write_tiny_dataset(root, astronaut, n_train=8, n_val=2, seed=0):
    rng = np.random.default_rng(seed)
    base = np.vstack([alignment_matrix(ASTRONAUT_FIVE), [0, 0, 1]])
    canon = hand_label()
    writer = DatasetWriter(root)
    plan = [("train", "facesynthetics", "full")] * n_train + [("val", "facesynthetics", "full")] * n_val \
        + [("train", "lfw_hair", "partial"), ("val", "lfw_hair", "partial")]
    for i, (split, source, kind) in enumerate(plan):
        j = jitter(rng) if i else np.eye(3)
        m = (j @ base)[:2]
        image = warp_crop(astronaut, m)
        label = cv2.warpAffine(canon, j[:2], (256, 256), flags=cv2.INTER_NEAREST, borderValue=IGNORE)
        if kind == "partial":  # LFW hair masks: hair vs not-hair only
            label = np.where(label == IGNORE, IGNORE, np.where(label == HAIR, HAIR, 0)).astype(np.uint8)
        writer.add(f"{source}_{i:02d}", split, source, kind, image, label, transform_points(ASTRONAUT_FIVE, m))
    writer.close()
    return root


class ToyNet(TierNet):
    """Two conv layers at 64x64: enough to learn colour -> class on one face."""
    defaults = {"input_size": 64, "width": 16}

    @classmethod
    def from_config(cls, config):
        return cls({**cls.defaults, **config}["width"])

    def __init__(self, width):
        super().__init__()
        self.input_size = 64
        self.layers = torch.nn.Sequential(torch.nn.Conv2d(3, width, 5, padding=2), torch.nn.ReLU(),
                                          torch.nn.Conv2d(width, NUM_CLASSES, 5, padding=2))

    def forward(self, image):
        return self.layers(image)

    def predict(self, batch):
        return self(batch["image"]).softmax(1)


class ToyRecipe(Recipe):
    name = "toy"
    network = ToyNet

    def default_config(self):
        return {**ToyNet.defaults, "epochs": 3, "batch_size": 4, "lr": 0.005, "optimizer": "adam",
                "weight_decay": 0.0, "lr_schedule": "constant", "augment": False}

    def loss(self, model, batch, stage):
        ce = F.cross_entropy(model(batch["image"]), batch["label"], ignore_index=IGNORE)
        return ce, {"ce": ce.item()}


class StagedToy(ToyRecipe):
    """Two stages, the second training only the last layer; records what each step got."""
    name = "toy-staged"
    seen = []

    def stages(self, config, extras):
        return [("warmup", 1, {"lr": 0.05}), ("head", 1, {"optimizer": "sgd", "lr": 0.01})]

    def parameters_for(self, model, stage):
        return model.layers[2].parameters() if stage.name == "head" else model.parameters()

    def train_step(self, model, batch, optimizer, stage):
        StagedToy.seen.append((stage.name, stage.config["optimizer"], optimizer.param_groups[0]["lr"]))
        return super().train_step(model, batch, optimizer, stage)


class SlowStartToy(ToyRecipe):
    """Its first step takes 1 s, as a GPU's first epoch does (workers starting, cudnn choosing kernels)."""
    name = "toy-slow-start"
    steps = 0

    def train_step(self, model, batch, optimizer, stage):
        SlowStartToy.steps += 1
        if SlowStartToy.steps == 1:
            time.sleep(1.0)
        return super().train_step(model, batch, optimizer, stage)


@pytest.fixture
def toy_registry(monkeypatch):
    for name, cls in (("toy", "ToyRecipe"), ("toy-staged", "StagedToy"), ("toy-slow-start", "SlowStartToy")):
        monkeypatch.setitem(registry.TIERS, name, registry.Tier(name, "toy conv net for tests",
                                                                network=f"{__name__}:ToyNet"))
        monkeypatch.setitem(recipes.RECIPES, name, f"{__name__}:{cls}")


def test_every_recipe_is_a_trainable_of_a_learned_tier():
    """The loop drives recipes only through the Trainable protocol; every learned tier has one."""
    learned = {n for n, t in registry.TIERS.items() if t.learned}
    assert set(recipes.RECIPES) == learned
    for name in recipes.RECIPES:
        recipe = recipes.get_recipe(name)
        assert isinstance(recipe, Trainable) and recipe.name == name
        assert recipe.network is registry.network_class(name)
        assert set(recipe.network.defaults) <= set(recipe.default_config())
    with pytest.raises(registry.UnknownModel, match="no weights to train"):
        recipes.get_recipe("landmarks")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from skimage.data import astronaut
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "faceparse", astronaut())


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_train_resume_export_evaluate(tiny_data, tmp_path, toy_registry, capsys):
    out = tmp_path / "run"
    base = ["--model", "toy", "--data", str(tiny_data), "--out", str(out), "--device", "cpu", "--threads", "1"]
    # trained on the full labels only (the hair-only image is still in the validation)
    result = train.main(base + ["--seed", "1", "--sources", "facesynthetics"])
    assert result["epochs"] == 3 and not result["stopped_early"]

    lines = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in lines] == [1, 2, 3]
    assert lines[-1]["train"]["loss"] < lines[0]["train"]["loss"]
    val = lines[-1]["val"]
    assert val["n_images"] == 3                                   # 2 full + 1 hair-only
    assert val["by_source"]["lfw_hair"]["overall_f1"] is None    # hair masks say nothing of parts
    assert val["hair_sources"] == ["lfw_hair"]
    assert set(val["per_class_f1"]) == {"background", "skin", "left_brow", "right_brow", "left_eye",
                                        "right_eye", "nose", "upper_lip", "inner_mouth", "lower_lip", "hair"}
    assert json.loads((out / "config.json").read_text())["lr"] == 0.005

    blob = ckpt.load(out / "best.pt", "toy")
    model = ckpt.load_into(ToyNet.from_config(blob["config"]), blob)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, NUM_CLASSES, 64, 64)
    assert blob["card"]["epochs"] in (1, 2, 3) and "per_class_f1" in blob["card"]["val"]
    assert blob["card"]["hardware"].startswith("CPU")

    # --resume continues from epoch 3 with the saved weights and config: its loss stays below
    # the midpoint between a fresh net's first epoch (~2.1) and the third (~1.4)
    last = torch.load(out / "last.pt", weights_only=True)
    train.main(base + ["--resume", "--epochs", "4"])
    lines = read_jsonl(out / "metrics.jsonl")
    assert [r["epoch"] for r in lines] == [1, 2, 3, 4]
    assert lines[3]["train"]["loss"] < (lines[0]["train"]["loss"] + lines[2]["train"]["loss"]) / 2
    assert json.loads((out / "config.json").read_text())["sources"] == ["facesynthetics"]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == last["epoch"] + 1

    # export: fp16 checkpoint + markdown card, then the evaluation CLI on it
    exported = tmp_path / "checkpoints" / "toy.pt"
    train.main(["--model", "toy", "--out", str(out), "--export-only", "--export", str(exported)])
    blob = ckpt.load(exported, "toy")
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values())
    card = exported.with_suffix(".md").read_text()
    assert "# toy: model card" in card and "| hair |" in card

    # --export-last: the last epoch (epoch 4) with its own validation, whatever best.pt holds
    last_export = tmp_path / "checkpoints" / "toy_last.pt"
    train.main(["--model", "toy", "--out", str(out), "--export-only", "--export-last", "--export", str(last_export)])
    blob = ckpt.load(last_export, "toy")
    state = torch.load(out / "last.pt", weights_only=True)
    assert blob["card"]["epochs"] == 4 and blob["card"]["selected"] == "last epoch"
    assert blob["card"]["val"] == read_jsonl(out / "metrics.jsonl")[-1]["val"]
    assert blob["card"]["hardware"].startswith("CPU")
    assert all(torch.equal(v, state["model"][k].half()) for k, v in blob["state_dict"].items())

    # --init: a new run starts from those weights (fresh optimizer): its first epoch's loss is
    # a trained net's, below the same midpoint
    fine = tmp_path / "fine"
    train.main(["--model", "toy", "--data", str(tiny_data), "--out", str(fine), "--device", "cpu", "--threads", "1",
                "--seed", "1", "--sources", "facesynthetics", "--epochs", "1", "--init", str(exported)])
    assert read_jsonl(fine / "metrics.jsonl")[0]["train"]["loss"] < (lines[0]["train"]["loss"] + lines[2]["train"]["loss"]) / 2
    assert json.loads((fine / "config.json").read_text())["init"] == str(exported)

    capsys.readouterr()
    report = evaluate.main(["--model", "toy", "--data", str(tiny_data), "--checkpoint", str(exported),
                            "--device", "cpu", "--json", str(tmp_path / "eval.json")])
    printed = capsys.readouterr().out
    assert "overall F1" in printed and "lfw_hair" in printed
    saved = json.loads((tmp_path / "eval.json").read_text())
    for key in ("per_class_f1", "overall_f1", "mean_f1", "pixel_accuracy", "n_images", "hair_f1", "hair_iou",
                "confusion_matrix", "model", "data", "split", "hardware", "seconds_per_image"):
        assert key in saved, key
    assert saved["n_images"] == 3 and saved["model"] == "toy"
    assert np.array(saved["confusion_matrix"]).shape == (11, 11)
    assert report["overall_f1"] == saved["overall_f1"]


class ConstantParser(Parser):
    """Predicts one class everywhere."""

    def __init__(self, c):
        self.c = c

    def parse(self, crops, five, mesh=None):
        probs = np.zeros((len(crops), NUM_CLASSES) + crops.shape[1:3], np.float32)
        probs[:, self.c] = 1
        return probs


def val_labels(root, source):
    index = [json.loads(line) for line in (root / "index.jsonl").read_text().splitlines()]
    return [cv2.imread(str(root / "labels" / f"{r['id']}.png"), cv2.IMREAD_UNCHANGED)
            for r in index if r["split"] == "val" and r["source"] == source]


def test_evaluate_dir_against_counts_from_the_label_files(tiny_data):
    result = evaluate.evaluate_dir(ConstantParser(HAIR), tiny_data, "val", progress=False)
    full = val_labels(tiny_data, "facesynthetics")
    hair_px = sum(int((f == HAIR).sum()) for f in full)
    labelled = sum(int((f != IGNORE).sum()) for f in full)
    # everything predicted hair: accuracy = H / labelled; hair F1 = 2H / (2H + (labelled - H))
    assert result["pixel_accuracy"] == pytest.approx(hair_px / labelled)
    assert result["per_class_f1"]["hair"] == pytest.approx(2 * hair_px / (hair_px + labelled))
    assert result["per_class_f1"]["skin"] == 0.0
    assert result["overall_f1"] == 0.0                    # parts exist, none predicted
    # the hair-only image: TP = hair pixels, FP = not-hair pixels, no FN
    (lfw,) = val_labels(tiny_data, "lfw_hair")
    h, nh = int((lfw == HAIR).sum()), int((lfw == 0).sum())
    assert result["hair_f1"] == pytest.approx(2 * h / (2 * h + nh))
    assert result["hair_iou"] == pytest.approx(h / (h + nh))
    assert result["by_source"]["lfw_hair"]["scored"] == "hair"
    assert list(result["by_source"]["lfw_hair"]["per_class_f1"]) == ["hair"]

    one = evaluate.evaluate(ConstantParser(0), evaluate.open_dataset(tiny_data, "val", 256, ["lfw_hair"]),
                            classes=(HAIR,), progress=False)
    assert one["hair_f1"] == 0.0 and one["n_images"] == 1


def test_stages_hooks_and_time_limit(tiny_data, tmp_path, toy_registry):
    out = tmp_path / "staged"
    StagedToy.seen.clear()
    train.main(["--model", "toy-staged", "--data", str(tiny_data), "--out", str(out), "--threads", "1",
                "--set", "width=8", "momentum=0.5"])
    lines = read_jsonl(out / "metrics.jsonl")
    assert [r["stage"] for r in lines] == ["warmup", "head"]
    assert {(s, o, lr) for s, o, lr in StagedToy.seen} == {("warmup", "adam", 0.05), ("head", "sgd", 0.01)}
    config = json.loads((out / "config.json").read_text())
    assert config["width"] == 8 and config["momentum"] == 0.5

    # a time limit already passed: stops after the first step, still validates and saves
    out = tmp_path / "limited"
    result = train.main(["--model", "toy", "--data", str(tiny_data), "--out", str(out), "--threads", "1",
                         "--time-limit", "0.00001"])
    assert result["stopped_early"] and result["epochs"] == 1
    (line,) = read_jsonl(out / "metrics.jsonl")
    assert line["steps"] == 1 and line["stopped_early"] and line["val"]["n_images"] == 3
    ckpt.load(out / "best.pt", "toy")

    # --fit-time: far more epochs than fit in 4 s; the schedule shrinks to the time, so the lr
    # has decayed by the end instead of being cut near its start, and a slow first epoch does
    # not end the run early (the fit is re-measured each epoch, capped by the epochs asked for)
    out = tmp_path / "fitted"
    SlowStartToy.steps = 0
    result = train.main(["--model", "toy-slow-start", "--data", str(tiny_data), "--out", str(out), "--threads", "1",
                         "--time-limit", str(4 / 60), "--fit-time", "--epochs", "100000", "--lr", "0.01",
                         "--set", "lr_schedule=poly"])
    lines = read_jsonl(out / "metrics.jsonl")
    assert 5 < result["epochs"] < 100000 and lines[-1]["lr"] < 0.5 * 0.01 and lines[-1]["val"] is not None
    assert lines[-1]["elapsed_s"] > 0.75 * 4
    assert train.fitted_epochs(100000, 10, epoch_s=2.0, left_s=30.0) == 25   # 10 done + 15 that fit
    assert train.fitted_epochs(12, 10, epoch_s=2.0, left_s=30.0) == 12       # never more than planned
    assert train.fitted_epochs(100, 10, epoch_s=2.0, left_s=0.5) == 11       # always one more
    with pytest.raises(SystemExit, match="--fit-time needs --time-limit"):
        train.main(["--model", "toy", "--data", str(tiny_data), "--out", str(out), "--fit-time"])


def test_lr_schedules():
    cfg = {**train.DEFAULTS, "lr_min_ratio": 0.0, "warmup_steps": 0}
    # poly 0.9 at step 5 of 10: (1 - 0.5)^0.9 = 0.5359
    assert train.lr_factor({**cfg, "lr_schedule": "poly"}, 5, 10, 2) == pytest.approx(0.5 ** 0.9)
    # cosine at a quarter: 0.5 (1 + cos(pi/4)) = 0.8536
    assert train.lr_factor({**cfg, "lr_schedule": "cosine"}, 25, 100, 10) == pytest.approx(0.5 * (1 + 2 ** -0.5))
    # step: milestones at epochs 2 and 4, 10 steps per epoch; step 45 is epoch 4 -> gamma^2
    assert train.lr_factor({**cfg, "lr_schedule": "step", "lr_steps": [2, 4]}, 45, 100, 10) == pytest.approx(0.01)
    # step every 3 epochs: epoch 7 -> gamma^2
    assert train.lr_factor({**cfg, "lr_schedule": "step", "lr_steps": 3}, 70, 100, 10) == pytest.approx(0.01)
    # linear warmup over 4 steps: step 1 -> 2/4 of the constant lr
    assert train.lr_factor({**cfg, "lr_schedule": "constant", "warmup_steps": 4}, 1, 100, 10) == 0.5
    model = torch.nn.Linear(2, 2)
    for name, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        assert isinstance(train.build_optimizer(model.parameters(), {**cfg, "optimizer": name}), cls)
    assert train.apply_sets({"a": 1}, ["a=2", "b.c=[1, 2]", "d=text"]) == {"a": 2, "b": {"c": [1, 2]}, "d": "text"}


def test_clear_one_line_errors(tiny_data, tmp_path, toy_registry):
    def error_of(main, argv):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        return str(exc.value)
    assert error_of(evaluate.main, ["--model", "nope", "--data", str(tiny_data)]).startswith("error: unknown model 'nope'")
    assert error_of(evaluate.main, ["--model", "toy", "--data", str(tmp_path / "missing")]).startswith("error: no dataset")
    assert "checkpoint not found" in error_of(
        evaluate.main, ["--model", "toy", "--data", str(tiny_data), "--checkpoint", str(tmp_path / "x.pt")])
    assert "no " in error_of(train.main, ["--model", "toy", "--data", str(tiny_data), "--out", str(tmp_path / "r"),
                                          "--resume"])
    assert error_of(train.main, ["--model", "nope", "--data", str(tiny_data)]).startswith("error: unknown model")
