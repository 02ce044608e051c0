"""RED-Net's training recipe (Guo et al., "Residual Encoder Decoder Network and Adaptive Prior for
Face Parsing", AAAI 2018); the network is models.parsers.rednet.

Before the first step the exemplar prior is filled from the training split (faces with full
labels and five points, unaugmented), so a checkpoint carries it. The loss is eq. 2 (the
negative log of P_final) plus, not in the paper, the same loss on P_net alone: trained from
scratch with eq. 2 only, the decoder left every part to the prior (F1 0 on all parts without
it; the paper's encoder starts pre-trained). Inverse-frequency class weights balance the tiny
parts on few images.
"""
import numpy as np
import torch
import torch.nn.functional as F

from core.classes import IGNORE, NUM_CLASSES
from models.data.dataset import FaceParsingDataset
from models.parsers.rednet import REDNet
from models.training.trainable import REAL_FACE_CONFIG, Recipe, merge_batches, real_face_datasets


def class_weights(labels: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """Inverse-frequency class weights (freq^-power, mean 1 over present classes): without
    them the small parts (brows, eyes) stay at F1 0 on 64 training images (see NOTES.md)."""
    valid = labels[labels != IGNORE]
    return weights_from_counts(torch.bincount(valid, minlength=NUM_CLASSES).float(), power)


def weights_from_counts(counts: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """class_weights from pixel counts per class (absent classes 0)."""
    w = torch.where(counts > 0, (counts / counts.sum().clamp_min(1)).clamp_min(1e-4) ** -power,
                    torch.zeros_like(counts))
    return w / w[counts > 0].mean().clamp_min(1e-8)


def is_exemplar(five: np.ndarray, label: np.ndarray) -> bool:
    """A usable exemplar: known five points and a full label (parts present, little ignore)."""
    if not np.isfinite(five).all():
        return False
    present = np.isin(np.arange(2, 10), label)
    return present.sum() >= 6 and (label == IGNORE).mean() < 0.2


def collect_exemplars(dataset, limit: int):
    """Five points and labels of up to `limit` exemplars of a dataset of batch dicts."""
    fives, labels = [], []
    records = getattr(dataset, "records", None)
    for i in range(len(dataset)):
        if records is not None and records[i].get("label_kind") != "full":
            continue
        item = dataset[i]
        five = np.asarray(item["five"], np.float32)
        label = np.asarray(item["label"]).astype(np.uint8)
        if is_exemplar(five, label):
            fives.append(five)
            labels.append(label)
        if len(fives) >= limit:
            break
    if not fives:
        return np.zeros((0, 5, 2), np.float32), np.zeros((0, 0, 0), np.uint8)
    return np.stack(fives), np.stack(labels)


def fit_prior(model: REDNet, dataset, limit: int) -> REDNet:
    """Fill the exemplar prior from a dataset: faces with full labels and five points."""
    five, labels = collect_exemplars(dataset, limit)
    if len(five):
        model.prior.fit(five, labels)
    return model


def fit_prior_from_batch(model: REDNet, batch: dict):
    five = batch["five"].detach().cpu().numpy()
    labels = batch["label"].detach().cpu().numpy().astype(np.uint8)
    keep = [i for i in range(len(five)) if is_exemplar(five[i], labels[i])]
    if keep:
        model.prior.fit(five[keep], labels[keep])
        model.prior.to(batch["five"].device)


class REDNetRecipe(Recipe):
    name = "rednet"
    network = REDNet

    def default_config(self) -> dict:
        return {
            **REDNet.defaults,
            **REAL_FACE_CONFIG,  # FaceSynthetics + real faces per step, as RNN-G
            "max_exemplars": 512,
            # paper: SGD momentum 0.9, wd 5e-4, lr 0.01 /10 every 5000 it, batch 64; from scratch on
            # a tiny set Adam converges much faster here
            "optimizer": "adam", "lr": 2e-3, "weight_decay": 5e-4, "batch_size": 8, "epochs": 60,
            "class_weight_power": 0.5,  # not in the paper: balances the tiny parts on few images
            "net_loss_weight": 1.0,     # not in the paper: eq. 2 on P_net too (see loss)
        }

    def prepare(self, model, config, data_dir) -> None:
        """The exemplars of the training split (unaugmented, full labels), unless a resumed
        checkpoint brought them."""
        if model.prior.ready:
            return
        dataset = FaceParsingDataset(data_dir, "train", int(config["input_size"]), sources=config.get("sources"),
                                     label_kinds=["full"])
        fit_prior(model, dataset, config["max_exemplars"])
        model.prior.to(next(model.parameters()).device)

    def extra_datasets(self, config, data_dir) -> dict:
        return real_face_datasets(config, data_dir)

    def loss(self, model, batch, stage):
        cfg = {**self.default_config(), **stage.config}
        batch = merge_batches(batch, batch.get("real"))  # the synthetic and the real faces as one
        label = batch["label"]
        if not model.prior.ready:  # not prepared from a dataset: the batch's own faces
            fit_prior_from_batch(model, batch)
        p_final, p_net = model.final_probs(batch["image"], batch["five"], exclude_self=model.training,
                                           detach_scale=True)
        weights = class_weights(label, cfg["class_weight_power"])
        nll = F.nll_loss(torch.log(p_final.clamp_min(1e-8)), label, weight=weights, ignore_index=IGNORE)
        # Not in the paper: the same loss on P_net alone. Trained from scratch with eq. 2 only,
        # the decoder left every part to the prior (stayed uncertain there, F1 0 on all parts
        # without the prior, runs/rednet_eq2only); the paper's encoder starts pre-trained.
        net_nll = F.nll_loss(torch.log(p_net.clamp_min(1e-8)), label, weight=weights, ignore_index=IGNORE)
        total = nll + cfg["net_loss_weight"] * net_nll
        return total, {"loss": float(total.detach()), "nll_final": float(nll.detach()),
                       "nll_net": float(net_nll.detach())}
