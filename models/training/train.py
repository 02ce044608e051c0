"""The one training loop every trainable tier uses.

    python -m models.train --model rnng --data data/faceparse --epochs 30 --threads 1
    python -m models.train --model rnng --resume                  # continue runs/rnng/last.pt
    python -m models.train --model rnng --init checkpoints/rnng.pt --out runs/ft   # fine-tune
    python -m models.train --model rnng --export-only             # runs/rnng/best.pt -> checkpoints/

config = loop DEFAULTS | recipe.default_config() | flags | --set key=value (dotted keys
reach nested dicts); it is saved as OUT/config.json and inside every checkpoint.

The tier's recipe (models.training.recipes, a models.training.trainable.Trainable) is driven
through its methods, in this order: default_config, build, prepare, extra_datasets, stages;
then per stage parameters_for, and per step train_step (whose default calls loss). The loop
sets the learning rate before each step.

OUT holds config.json, metrics.jsonl (one line per epoch), last.pt (full precision, with
optimizer state, for --resume) and best.pt (by validation overall F1, models.parsers.checkpoint
format with a card).
"""
import argparse
import builtins
import contextlib
import datetime
import json
import math
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from core.errors import InputError
from models.data.augment import make_augment
from models.parsers import checkpoint as ckpt
from models.parsers.registry import UnknownModel, network_class, tier as tier_info
from models.parsers.torch_parser import TorchParser, pick_device
from models.training import distributed
from models.training.evaluate import evaluate_dir, hardware_string, open_dataset, set_threads
from models.training.recipes import get_recipe
from models.training.trainable import Stage, Trainable

DEFAULTS = {
    "epochs": 30, "batch_size": 8, "lr": 1e-3,
    "optimizer": "adamw",        # adam | adamw | sgd
    "weight_decay": 1e-4, "momentum": 0.9, "nesterov": False, "betas": [0.9, 0.999],
    "lr_schedule": "poly",       # constant | poly | cosine | step
    "poly_power": 0.9, "lr_min_ratio": 0.0, "lr_steps": None, "lr_gamma": 0.1, "warmup_steps": 0,
    "grad_clip": None,           # max gradient norm
    "amp": True,                 # bf16 autocast on CUDA (CPU always runs fp32)
    "augment": True,             # models.data.augment.make_augment: the training augmentation
    "sources": None,             # training sources (None: every one in the train split)
    "val_sources": None,         # None: every labelled source of the val split
    "val_batch_size": 8,
    "val_every": 1,              # validate (and pick best.pt) every N epochs, and always at the end
    "select_metric": "overall_f1",  # best.pt criterion; falls back to mean_f1, then hair_f1
}
FALLBACK_METRICS = ("overall_f1", "mean_f1", "hair_f1")


# ---------------------------------------------------------------- config

def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_sets(config: dict, sets) -> dict:
    """--set a=1 b.c=[1,2] name=abc: JSON values (else strings), dots for nested dicts."""
    for item in sets or []:
        if "=" not in item:
            raise ValueError(f"--set wants key=value, got '{item}'")
        key, value = item.split("=", 1)
        *parents, leaf = key.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = parse_value(value)
    return config


def build_config(recipe: Trainable, args, saved: dict | None = None) -> dict:
    config = saved if saved is not None else {**DEFAULTS, **recipe.default_config()}
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "sources": args.sources}
    config.update({k: v for k, v in flags.items() if v is not None})
    return apply_sets(config, args.set)


# ---------------------------------------------------------------- optimisation

def build_optimizer(params, config: dict) -> torch.optim.Optimizer:
    groups = list(params)
    if groups and not isinstance(groups[0], dict):
        groups = [{"params": [p for p in groups if p.requires_grad]}]
    for g in groups:
        g["lr"] = g.get("lr", config["lr"] * g.get("lr_mult", 1.0))
        g["initial_lr"] = g["lr"]
    name, wd = config["optimizer"].lower(), config["weight_decay"]
    if name == "adam":
        return torch.optim.Adam(groups, betas=tuple(config["betas"]), weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(groups, betas=tuple(config["betas"]), weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(groups, momentum=config["momentum"], nesterov=config["nesterov"], weight_decay=wd)
    raise ValueError(f"unknown optimizer '{config['optimizer']}' (adam, adamw, sgd)")


def lr_factor(config: dict, step: int, total: int, steps_per_epoch: int) -> float:
    """Multiplier of the initial lr at `step` of a stage of `total` steps."""
    kind, t = config["lr_schedule"], min(step / max(total, 1), 1.0)
    lo = config["lr_min_ratio"]
    if kind == "constant":
        f = 1.0
    elif kind == "poly":  # DeepLab's poly: (1 - t)^power
        f = lo + (1 - lo) * (1 - t) ** config["poly_power"]
    elif kind == "cosine":
        f = lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * t))
    elif kind == "step":  # lr_steps: an epoch interval, or a list of epochs (milestones)
        epoch, steps = step // max(steps_per_epoch, 1), config["lr_steps"] or max(total // max(steps_per_epoch, 1), 1)
        passed = epoch // steps if isinstance(steps, int) else sum(epoch >= m for m in steps)
        f = config["lr_gamma"] ** passed
    else:
        raise ValueError(f"unknown lr_schedule '{kind}' (constant, poly, cosine, step)")
    warm = config["warmup_steps"]
    return f * min(1.0, (step + 1) / warm) if warm else f


def fitted_epochs(planned: int, done: int, epoch_s: float, left_s: float) -> int:
    """--fit-time: the last stage's length, so that its lr schedule runs out at the time limit
    (on a machine of unknown speed): the epochs done plus those that fit in the time left at the
    mean epoch time so far, validation included; at least one more, never more than planned."""
    return min(planned, done + max(1, int(left_s / max(epoch_s, 1e-6))))


def set_lr(optimizer, factor: float) -> float:
    for g in optimizer.param_groups:
        g["lr"] = g["initial_lr"] * factor
    return optimizer.param_groups[0]["lr"]


# ---------------------------------------------------------------- plumbing

def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _seed_worker(_):
    np.random.seed(torch.initial_seed() % 2 ** 32)
    cv2.setNumThreads(1)   # many workers on a GPU machine: one thread each, not one per core each


def to_device(batch, device):
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    return batch.to(device, non_blocking=True) if isinstance(batch, torch.Tensor) else batch


def loader_for(dataset, batch_size, seed, workers, shuffle=True, sampler=None):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
        num_workers=workers, worker_init_fn=_seed_worker,
        generator=torch.Generator().manual_seed(seed), drop_last=shuffle and len(dataset) > batch_size,
        # persistent: a short epoch (64 FaceSynthetics faces = 8 steps) must not respawn its workers
        pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)


def cycle(loader):
    while True:
        yield from loader


class TrainingParser(TorchParser):
    """The model being trained behind the Parser interface, for validation: unlike
    TorchParser it leaves the model's device and precision alone."""

    def __init__(self, name, model, device, autocast):
        self.name, self.model = name, model
        self.device, self.fp16, self._autocast = device, False, autocast

    def parse(self, crops, five, mesh=None):
        self.model.eval()
        with self._autocast():
            return super().parse(crops, five, mesh)


def selection_key(val: dict | None, metric: str) -> tuple | None:
    """best.pt ordering: the chosen metric, ties (e.g. all 0 early on) broken by the fallbacks."""
    if not val:
        return None
    return tuple(-1.0 if val.get(m) is None else val[m] for m in (metric,) + FALLBACK_METRICS)


def val_summary(val: dict) -> dict:
    keys = ("overall_f1", "mean_f1", "pixel_accuracy", "hair_f1", "hair_iou", "group_f1", "per_class_f1",
            "n_images", "seconds_per_image", "hair_sources")
    out = {k: val.get(k) for k in keys}
    out["by_source"] = {s: {k: r.get(k) for k in ("label_kind", "n_images", "overall_f1", "mean_f1", "hair_f1",
                                                  "hair_iou")} for s, r in val.get("by_source", {}).items()}
    return out


def _f(x):
    return "-" if x is None else f"{x:.4f}"


def numpy_rng_state(saved=None):
    """numpy's RNG state as plain data (a list, so checkpoints load with weights_only=True), or back."""
    if saved is None:
        name, keys, pos, has_gauss, cached = np.random.get_state()
        return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]
    name, keys, pos, has_gauss, cached = saved
    return (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)


# ---------------------------------------------------------------- the loop

def train(args) -> dict:
    ctx = distributed.setup(args.device)   # under torchrun: this rank's place; else one process
    try:
        return _train(args, ctx)
    finally:
        distributed.teardown(ctx)


def _train(args, ctx) -> dict:
    recipe: Trainable = get_recipe(args.model)
    if args.fit_time and (ctx.active or not args.time_limit):
        raise ValueError("--fit-time needs --time-limit and one process (torchrun's ranks would time their epochs apart)")
    out = Path(args.out or Path("runs") / args.model)
    main_rank = ctx.is_main   # only rank 0 writes files and prints
    print = builtins.print if main_rank else (lambda *a, **k: None)
    if main_rank:
        out.mkdir(parents=True, exist_ok=True)
    set_threads(args.threads)
    device = distributed.device_for(ctx, pick_device(args.device))
    hardware = hardware_string(device)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed input sizes

    state = None
    if args.resume:
        if not (out / "last.pt").is_file():
            raise ckpt.CheckpointError(f"--resume: no {out / 'last.pt'} to continue from")
        state = ckpt.read(out / "last.pt")
        config = build_config(recipe, args, state["config"])
    else:
        config = build_config(recipe, args)
        if main_rank:
            (out / "metrics.jsonl").write_text("")
    seed = args.seed if args.seed is not None else config.get("seed", 0)
    config["seed"] = seed
    if main_rank:
        (out / "config.json").write_text(json.dumps(config, indent=1))
    seed_everything(seed)

    model = recipe.build(config).to(device)
    if getattr(args, "init", None) and not state:   # fine-tuning: start from a checkpoint's weights, fresh optimizer and schedule
        ckpt.load_into(model, ckpt.load(args.init, args.model))
        config["init"] = str(args.init)
        if main_rank:
            (out / "config.json").write_text(json.dumps(config, indent=1))
    if state:
        model.load_state_dict(state["model"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(numpy_rng_state(state["rng"]["numpy"]))
        torch.set_rng_state(state["rng"]["torch"])
    recipe.prepare(model, config, args.data)
    distributed.broadcast_weights(ctx, model)
    use_amp = device.type == "cuda" and config["amp"]
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext

    size = model.input_size
    train_set = open_dataset(args.data, "train", size, sources=config["sources"],
                             augment=make_augment(config, size))
    if len(train_set) == 0:
        raise ValueError(f"no training samples in {args.data} (sources {config['sources'] or 'all'})")
    extras = {k: ds for k, ds in recipe.extra_datasets(config, args.data).items() if ds is not None and len(ds) > 0}
    workers = args.workers if args.workers is not None else (0 if device.type == "cpu" else 4)
    val_parser = TrainingParser(args.model, model, device, autocast)

    plan = [(name, int(n), dict(over or {})) for name, n, over in recipe.stages(config, extras)]
    epoch = state["epoch"] if state else 0                 # epochs done, all stages together
    stage_index, stage_epoch = (state["stage_index"], state["stage_epoch"]) if state else (0, 0)
    best = state["best"] if state else {"score": None, "key": None, "epoch": None, "val": None}
    elapsed_before = state["elapsed_s"] if state else 0.0
    start = last_saved = time.time()
    deadline = start + args.time_limit * 60 if args.time_limit else None
    stop = False
    print(f"training {args.model} on {device} ({hardware}), {len(train_set)} train images, "
          f"stages {[(n, e) for n, e, _ in plan]}, out {out}"
          + (f", {ctx.world_size} processes (torchrun)" if ctx.active else ""))

    while stage_index < len(plan) and not stop:
        name, n_epochs, overrides = plan[stage_index]
        if stage_epoch >= n_epochs:
            stage_index, stage_epoch = stage_index + 1, 0
            continue
        stage = Stage(name, stage_index, n_epochs, {**config, **overrides}, device, autocast)
        sc = stage.config
        optimizer = build_optimizer(recipe.parameters_for(model, stage), sc)
        if state and state.get("optimizer") and state["stage_index"] == stage_index:
            optimizer.load_state_dict(state["optimizer"])
        state = None  # resumed; later stages start fresh
        distributed.average_gradients_before_step(ctx, optimizer)
        train_sampler = distributed.sampler(ctx, train_set, seed)
        loader = loader_for(train_set, sc["batch_size"], seed, workers, sampler=train_sampler)
        extra_iters = {k: cycle(loader_for(ds, sc.get(f"{k}_batch_size", sc["batch_size"]), seed, workers,
                                           sampler=distributed.sampler(ctx, ds, seed)))
                       for k, ds in extras.items()}
        steps_per_epoch, total = len(loader), len(loader) * n_epochs
        fit = args.fit_time and deadline and stage_index == len(plan) - 1
        epoch_times, planned = [], n_epochs   # wall seconds per epoch, validation included

        while stage_epoch < n_epochs and not stop:
            if deadline and distributed.any_rank(ctx, time.time() > deadline, device):
                stop = True
                break
            if fit and epoch_times:   # the schedule ends at the deadline, not cut by it
                steady = epoch_times[1:] or epoch_times   # the first holds start-up (workers, cudnn)
                n_epochs = fitted_epochs(planned, stage_epoch, sum(steady) / len(steady), deadline - time.time())
                total = steps_per_epoch * n_epochs
            loader.generator.manual_seed(seed * 1000 + epoch)  # same order on resume
            if train_sampler is not None:
                train_sampler.set_epoch(epoch)
            model.train()
            sums, count, t0 = {}, 0, time.time()
            bar = tqdm(loader, desc=f"{name} {stage_epoch + 1}/{n_epochs}", disable=None if main_rank else True,
                       leave=False)
            for i, batch in enumerate(bar):
                lr = set_lr(optimizer, lr_factor(sc, stage_epoch * steps_per_epoch + i, total, steps_per_epoch))
                batch = to_device(batch, device)
                for k, it in extra_iters.items():
                    batch[k] = to_device(next(it), device)
                logs = {k: float(v) for k, v in recipe.train_step(model, batch, optimizer, stage).items()}
                if not math.isfinite(logs["loss"]):
                    raise FloatingPointError(f"loss is {logs['loss']} at epoch {epoch + 1}, step {i}")
                for k, v in logs.items():
                    sums[k] = sums.get(k, 0.0) + float(v)
                count += 1
                bar.set_postfix(loss=f"{sums['loss'] / count:.4f}", lr=f"{lr:.2e}")
                if deadline and distributed.any_rank(ctx, time.time() > deadline, device):
                    stop = True
                    break
            epoch, stage_epoch = epoch + 1, stage_epoch + 1
            stop = distributed.any_rank(ctx, stop or bool(deadline and time.time() > deadline), device)  # last epoch
            train_logs = {k: v / max(count, 1) for k, v in sums.items()}

            val, last_epoch = None, stop or (stage_index == len(plan) - 1 and stage_epoch == n_epochs)
            validating = last_epoch or epoch % max(int(sc["val_every"]), 1) == 0
            if main_rank and validating:
                try:
                    val = evaluate_dir(val_parser, args.data, "val", sc["val_sources"], sc["val_batch_size"],
                                       progress=True, num_workers=workers)
                except ValueError as exc:  # no labelled validation samples
                    print(f"note: no validation ({exc})", file=sys.stderr)
            model.train()
            key = selection_key(val, sc["select_metric"])
            score = val.get(sc["select_metric"]) if val else None
            improved = best["epoch"] is None or (key is not None and (best.get("key") is None or key > tuple(best["key"])))
            elapsed = elapsed_before + time.time() - start
            record = {"epoch": epoch, "stage": name, "stage_epoch": stage_epoch, "steps": count, "lr": lr,
                      "train": train_logs, "val": val_summary(val) if val else None, "score": score,
                      "best": improved, "epoch_s": time.time() - t0, "elapsed_s": elapsed, "stopped_early": stop}
            if not main_rank:
                distributed.barrier(ctx)   # rank 0 validates and saves meanwhile
                continue
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"epoch {epoch} [{name} {stage_epoch}/{n_epochs}] loss {train_logs.get('loss', float('nan')):.4f} "
                  f"val overall {_f(val and val['overall_f1'])} mean {_f(val and val['mean_f1'])} "
                  f"hair {_f(val and val['hair_f1'])} ({record['epoch_s']:.0f}s){' *' if improved else ''}", flush=True)

            # the training state for --resume: when validating, at the end, and at least once a minute
            # (a GPU epoch can take a second; the paper-sized teacher's state is 250 MB)
            if validating or improved or time.time() - last_saved > 60:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "config": config,
                            "epoch": epoch, "stage_index": stage_index, "stage_epoch": stage_epoch,
                            "best": {**best, **({"score": score, "key": key, "epoch": epoch, "val": record["val"]} if improved else {})},
                            "elapsed_s": elapsed, "tier": args.model,
                            "rng": {"python": random.getstate(), "numpy": numpy_rng_state(),
                                    "torch": torch.get_rng_state()}}, out / "last.pt")
                last_saved = time.time()
            if improved:
                best = {"score": score, "key": key, "epoch": epoch, "val": record["val"]}
                card = make_card(args, tier_info(args.model).description, config, len(train_set), epoch,
                                 elapsed, hardware, record["val"], model)
                ckpt.save(out / "best.pt", args.model, model, config, card, fp16=False)
            distributed.barrier(ctx)
            epoch_times.append(time.time() - t0)   # saving included (--fit-time runs in one process)
        stage_index, stage_epoch = (stage_index + 1, 0) if stage_epoch >= n_epochs else (stage_index, stage_epoch)

    why = "time limit" if stop else "done"
    print(f"{why}: {epoch} epochs; best epoch {best['epoch']} ({config['select_metric']} {_f(best['score'])}); {out}")
    return {"out": str(out), "epochs": epoch, "best": best, "stopped_early": stop}


# ---------------------------------------------------------------- cards and export

def make_card(args, description, config, n_train, epochs, seconds, hardware, val, model) -> dict:
    return {
        "tier": args.model, "description": description,
        "data": str(args.data), "sources": config["sources"] or "all", "n_train_images": n_train,
        "epochs": epochs, "train_seconds": round(seconds, 1), "hardware": hardware,
        "parameters": sum(p.numel() for p in model.parameters()),
        "val": val, "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "command": getattr(args, "command", None),
    }


def card_markdown(card: dict, config: dict) -> str:
    val = card.get("val") or {}
    rows = "\n".join(f"| {k} | {_f(v)} |" for k, v in (val.get("per_class_f1") or {}).items())
    by_source = "\n".join(f"- {s} ({r['label_kind']}, {r['n_images']} images): overall {_f(r['overall_f1'])}, "
                          f"mean {_f(r['mean_f1'])}, hair F1 {_f(r['hair_f1'])}"
                          for s, r in (val.get("by_source") or {}).items())
    return f"""# {card['tier']}: model card

{card.get('description', '')}

- Training data: `{card.get('data')}`, sources {card.get('sources')}, {card.get('n_train_images')} training images
- Trained {card.get('epochs')} epochs in {card.get('train_seconds')} s on {card.get('hardware')} ({card.get('date')}, torch {card.get('torch')})
- Parameters: {card.get('parameters')}
- Command: `{card.get('command')}`

## Validation ({val.get('n_images')} images, scores over all pixels of the split)

- Helen-style overall F1 (brows, eyes, nose, mouth merged): {_f(val.get('overall_f1'))}
- Mean F1 over the 10 foreground classes (LaPa style): {_f(val.get('mean_f1'))}
- Pixel accuracy: {_f(val.get('pixel_accuracy'))}
- Hair F1 {_f(val.get('hair_f1'))}, IoU {_f(val.get('hair_iou'))} on {', '.join(val.get('hair_sources') or []) or '-'}
{by_source}

| class | F1 |
|---|---|
{rows}

These scores are on this project's own validation split (FaceSynthetics is synthetic; LFW
hair masks score hair only): they are not Helen or LaPa test-set numbers.

## Terms

The code is Apache-2.0; these weights inherit the terms of their training data (sources
{card.get('sources')}): see the README's "Weights and data" (FaceSynthetics: non-commercial
research; LFW: research use with citations; the talking-head clips: development and evaluation,
not to ship).

## Config

```json
{json.dumps(config, indent=1)}
```
"""


def last_as_checkpoint(run: Path, tier: str) -> Path:
    """OUT/last.pt (the last epoch, a training state) -> OUT/last_ckpt.pt in best.pt's format, its
    card from that epoch's metrics line: for a tier whose selection metric misleads (RED-Net's
    overall F1 is highest while its untrained decoder leaves everything to the exemplar prior)."""
    run = Path(run)
    state = ckpt.read(run / "last.pt")
    model = network_class(tier).from_config(state["config"])
    model.load_state_dict(state["model"])
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    record = next((r for r in lines if r["epoch"] == state["epoch"]), None)
    if record is None or not record.get("val"):
        raise ValueError(f"{run / 'metrics.jsonl'} has no validation of the last epoch ({state['epoch']})")
    card = ckpt.load(run / "best.pt", tier)["card"] if (run / "best.pt").is_file() else {}  # data, hardware, command
    card.update({"tier": tier, "description": tier_info(tier).description, "epochs": state["epoch"],
                 "train_seconds": round(state["elapsed_s"], 1), "val": record["val"],
                 "parameters": sum(p.numel() for p in model.parameters()), "torch": torch.__version__,
                 "date": datetime.date.today().isoformat(), "selected": "last epoch"})
    path = run / "last_ckpt.pt"
    ckpt.save(path, tier, model, state["config"], card, fp16=False)
    return path


def export(best_path, tier: str, out_path=None) -> tuple[Path, Path]:
    """best.pt -> checkpoints/<tier>.pt (fp16) and the card as checkpoints/<tier>.md."""
    out_path = Path(out_path or tier_info(tier).checkpoint)
    blob = ckpt.load(best_path, tier)
    model = ckpt.load_into(network_class(tier).from_config(blob["config"]), blob)
    ckpt.save(out_path, tier, model, blob["config"], blob["card"], fp16=True)
    md = out_path.with_suffix(".md")
    md.write_text(card_markdown(blob["card"], blob["config"]))
    return out_path, md


# ---------------------------------------------------------------- CLI

def build_argparser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="registry tier name")
    ap.add_argument("--data", default="data/faceparse", help="compact dataset folder")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--out", default=None, help="run folder (default runs/<model>)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    ap.add_argument("--init", default=None, metavar="CHECKPOINT",
                    help="start from this checkpoint's weights (e.g. checkpoints/rnng.pt: fine-tuning); "
                         "ignored with --resume, whose state holds the weights")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 on shared machines)")
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default 0 on CPU, 4 on CUDA)")
    ap.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                    help="stop after the step that passes MIN minutes, then validate and save")
    ap.add_argument("--fit-time", action="store_true",
                    help="with --time-limit: shorten the last stage's epochs (as given) to what fits in the time "
                         "left, re-measured each epoch, so its lr schedule completes (a GPU of unknown speed)")
    ap.add_argument("--sources", nargs="+", default=None, help="training sources (default: all)")
    ap.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                    help="config overrides, JSON values, dotted keys for nested dicts")
    ap.add_argument("--export", nargs="?", const="", default=None, metavar="PATH",
                    help="after training, write best.pt as fp16 PATH (default checkpoints/<model>.pt) + .md card")
    ap.add_argument("--export-only", action="store_true", help="skip training: export OUT/best.pt")
    ap.add_argument("--export-last", action="store_true",
                    help="export the last epoch (OUT/last.pt, via OUT/last_ckpt.pt) instead of best.pt")
    return ap


def main(argv=None):
    args = build_argparser().parse_args(argv)
    args.command = " ".join(["python -m models.train"] + list(sys.argv[1:] if argv is None else argv))
    try:
        result = None
        if not args.export_only:
            if not (Path(args.data) / "index.jsonl").is_file():
                raise FileNotFoundError(f"no dataset at {args.data} (expected index.jsonl)")
            result = train(args)
        if args.export is not None or args.export_only:
            run = Path(args.out or Path("runs") / args.model)
            best = last_as_checkpoint(run, args.model) if args.export_last else run / "best.pt"
            pt, md = export(best, args.model, args.export or None)
            print(f"exported {best} -> {pt} (fp16) and {md}")
        return result
    except (UnknownModel, ckpt.CheckpointError, InputError, FileNotFoundError, ValueError, ModuleNotFoundError) as exc:
        sys.exit(f"error: {exc}")

