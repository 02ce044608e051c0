"""STN-iCNN's training recipe (Yin et al., "End-to-End Face Parsing via Interlinked Convolutional
Neural Networks"); the network is models.parsers.stn_icnn.

Three stages of the shared loop (section 2.5.2): pre-train the coarse iCNN K, pre-train the
localisation net L on K's masks against the affines computed from the labels (eq. 12-14),
then everything end to end (eq. 10, plus the coarse and eq. 14 losses as regularisers; see
models.parsers.stn_icnn). Class-balanced cross-entropies (not in the paper) on few images.
"""
import torch
import torch.nn.functional as F

from core.classes import IGNORE
from models.parsers.stn_icnn import COARSE_SIZE, PARTS, STNiCNN, crop, params_to_theta
from models.training.recipes.rednet import class_weights
from models.training.trainable import REAL_FACE_CONFIG, Recipe, merge_batches, real_face_datasets


def theta_from_label(label: torch.Tensor, patch_sizes, parts=PARTS, min_pixels: int = 4):
    """Eq. 14: the ground-truth theta of each part from the label (N, H, W).

    The part centre is the mean pixel of its classes, rounded to a pixel; in align_corners=False
    coordinates that pixel's centre is (c + 0.5), so an odd patch is sampled on whole pixels.
    -> theta (N, P, 2, 3), valid (N, P) bool (False where the part has < min_pixels pixels).
    """
    n, h, w = label.shape
    ys = torch.arange(h, device=label.device, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=label.device, dtype=torch.float32).view(1, 1, w)
    params, valid = [], []
    for (_, classes, _, _), side in zip(parts, patch_sizes):
        m = torch.zeros_like(label, dtype=torch.bool)
        for c in classes:
            m |= label == c
        count = m.flatten(1).sum(1).float()
        cx = ((m * xs).flatten(1).sum(1) / count.clamp_min(1)).round()
        cy = ((m * ys).flatten(1).sum(1) / count.clamp_min(1)).round()
        tx, ty = -1 + 2 * (cx + 0.5) / w, -1 + 2 * (cy + 0.5) / h
        params.append(torch.stack([torch.full_like(tx, side / w), torch.full_like(ty, side / h), tx, ty], -1))
        valid.append(count >= min_pixels)
    return params_to_theta(torch.stack(params, 1)), torch.stack(valid, 1)



def crop_label(label: torch.Tensor, theta: torch.Tensor, side: int) -> torch.Tensor:
    """The patch's ground truth (J_i-hat in eq. 10): nearest sampling, outside the image = ignore."""
    shifted = (label.float() + 1).unsqueeze(1)  # 0 marks "outside" after zero padding
    out = crop(shifted, theta, side, mode="nearest")[:, 0].round().long() - 1
    return torch.where(out < 0, torch.full_like(out, IGNORE), out)


def local_label(label: torch.Tensor, classes) -> torch.Tensor:
    """Global class ids -> a part iCNN's labels: 0 other, j+1 for classes[j], ignore kept."""
    out = torch.zeros_like(label)
    for j, c in enumerate(classes):
        out[label == c] = j + 1
    out[label == IGNORE] = IGNORE
    return out



def smooth_l1_theta(theta, target, valid):
    """Eq. 12-13 on the four free entries (s_x, s_y, t_x, t_y) of the parts present."""
    pick = lambda t: torch.stack([t[..., 0, 0], t[..., 1, 1], t[..., 0, 2], t[..., 1, 2]], -1)
    loss = F.smooth_l1_loss(pick(theta), pick(target), reduction="none").mean(-1)
    return (loss * valid).sum() / valid.sum().clamp_min(1)


class STNiCNNRecipe(Recipe):
    name = "stn-icnn"
    network = STNiCNN

    def default_config(self) -> dict:
        return {
            **STNiCNN.defaults,
            **REAL_FACE_CONFIG,  # FaceSynthetics + real faces per step, as RNN-G
            "optimizer": "adam", "lr": 2e-3, "batch_size": 8,  # stage lengths below, not "epochs"
            # Table 1 (Helen): pre-training lr 0.0023 (K) / 0.0017 (L); end-to-end 1e-4 (K, L), 1e-2 (parts)
            "stage_epochs": {"coarse": 6, "localizer": 20, "end2end": 20},
            "lr_coarse": 2.3e-3, "lr_localizer": 1.7e-3, "lr_pretrained_e2e": 1e-4, "lr_parts": 2e-3,
            "coarse_weight_e2e": 1.0, "theta_weight_e2e": 1.0,
            "class_weight_power": 0.5,
        }

    def stages(self, config, extras):
        e = config["stage_epochs"]
        return [("coarse", e["coarse"], {"lr": config["lr_coarse"]}),
                ("localizer", e["localizer"], {"lr": config["lr_localizer"]}),
                ("end2end", e["end2end"], {"lr": config["lr_parts"]})]

    # -- losses of the three stages ------------------------------------------------------------
    def coarse_loss(self, model, batch, power, coarse=None):
        label = batch["label"]
        small = F.interpolate(label[:, None].float(), size=(COARSE_SIZE, COARSE_SIZE), mode="nearest")[:, 0].long()
        coarse = model.coarse_logits(batch["image"]) if coarse is None else coarse
        w = class_weights(small, power)
        return F.cross_entropy(coarse, small, weight=w, ignore_index=IGNORE)

    def localizer_loss(self, model, batch, theta=None):
        target, valid = theta_from_label(batch["label"], model.patch_sizes)
        if theta is None:
            with torch.no_grad():
                mask = model.coarse_logits(batch["image"]).softmax(1)
            theta = model.localizer(mask)
        return smooth_l1_theta(theta, target, valid.float())

    def part_loss(self, model, batch, theta, parts, power):
        """Eq. 10: mean over parts of the cross-entropy with the label cut by the same theta
        (class-balanced like the coarse loss: an eye fills ~10% of its patch)."""
        losses = []
        for p, (_, classes, _, _) in enumerate(PARTS):
            target = local_label(crop_label(batch["label"], theta[:, p].detach(), model.patch_sizes[p]), classes)
            if (target != IGNORE).any():
                w = class_weights(target, power)[: len(classes) + 1]
                losses.append(F.cross_entropy(parts[p], target, weight=w, ignore_index=IGNORE))
        return torch.stack(losses).mean() if losses else parts[0].sum() * 0

    def extra_datasets(self, config, data_dir) -> dict:
        return real_face_datasets(config, data_dir)

    def loss(self, model, batch, stage):
        c = {**self.default_config(), **stage.config}
        batch = merge_batches(batch, batch.get("real"))  # the synthetic and the real faces as one
        power = c["class_weight_power"]
        if stage.name == "coarse":
            lc = self.coarse_loss(model, batch, power)
            return lc, {"loss": float(lc.detach()), "coarse": float(lc.detach())}
        if stage.name == "localizer":
            lt = self.localizer_loss(model, batch)
            return lt, {"loss": float(lt.detach()), "theta": float(lt.detach())}
        coarse, theta, parts = model(batch["image"])
        lf = self.part_loss(model, batch, theta, parts, power)
        lc = self.coarse_loss(model, batch, power, coarse)
        lt = self.localizer_loss(model, batch, theta)
        total = lf + c["coarse_weight_e2e"] * lc + c["theta_weight_e2e"] * lt
        return total, {"loss": float(total.detach()), "parts": float(lf.detach()),
                       "coarse": float(lc.detach()), "theta": float(lt.detach())}

    def parameters_for(self, model, stage):
        """What each stage trains (section 2.5.2) at the paper's relative learning rates (Table 1):
        K alone, then L alone (K frozen), then everything with K and L slower than the parts."""
        c = stage.config
        if stage.name == "coarse":
            return list(model.coarse.parameters())
        if stage.name == "localizer":
            return list(model.localizer.parameters())
        return [{"params": list(model.coarse.parameters()) + list(model.localizer.parameters()),
                 "lr_mult": c["lr_pretrained_e2e"] / c["lr_parts"]},
                {"params": list(model.part_nets.parameters())}]

    def train_step(self, model, batch, optimizer, stage) -> dict:
        if stage.name == "localizer":
            model.coarse.eval()  # K is frozen: its batch-norm statistics must not drift either
        return super().train_step(model, batch, optimizer, stage)
