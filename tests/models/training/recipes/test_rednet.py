"""RED-Net's training recipe: exemplars of the training split, and the loss on real faces."""
import numpy as np
import pytest
import torch

from models.parsers import checkpoint as ckpt
from models.parsers.rednet import REDNet
from models.training.recipes.rednet import REDNetRecipe, collect_exemplars, fit_prior
from models.training.trainable import Stage
from tests.models.parsers.test_rednet import facesynthetics_faces, to_batch


@pytest.fixture(scope="module")
def faces(shared_dir):
    torch.set_num_threads(1)
    return facesynthetics_faces(shared_dir, 10, 128)


def test_exemplars_come_from_full_labels_and_survive_a_checkpoint(faces, tmp_path):
    images, labels, fives = faces

    class Split(torch.utils.data.Dataset):  # the FaceParsingDataset interface: items + records
        records = [{"label_kind": "full"}] * 8 + [{"label_kind": "partial"}] * 2

        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"five": torch.from_numpy(fives[i]), "label": torch.from_numpy(labels[i].astype(np.int64))}

    five, lab = collect_exemplars(Split(), limit=100)
    assert 0 < len(five) <= 8 and lab.shape[1:] == (128, 128)

    recipe = REDNetRecipe()
    model = fit_prior(recipe.build(recipe.default_config()), Split(), limit=512)
    assert model.prior.ready and model.prior.labels.shape[0] == len(five)
    path = tmp_path / "rednet.pt"
    ckpt.save(path, "rednet", model, recipe.default_config())
    loaded = ckpt.load_into(REDNet.from_config(recipe.default_config()), ckpt.load(path, "rednet"))
    assert torch.equal(loaded.prior.labels, model.prior.labels)
    model.eval(), loaded.eval()
    q = torch.from_numpy(fives[:2])
    assert torch.equal(loaded.prior(q), model.prior(q))


def test_a_few_steps_lower_the_loss_on_real_faces(faces):
    torch.manual_seed(0)
    images, labels, fives = faces
    recipe = REDNetRecipe()
    stage = Stage(config={**recipe.default_config(), "width": 8})
    model = recipe.build(stage.config)
    batch = to_batch(images[:4], labels[:4], fives[:4])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss, logs = recipe.loss(model, batch, stage)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    assert model.prior.ready  # from the batch's own faces when prepare() had no dataset
    assert np.isfinite(losses).all() and losses[-1] < losses[0] - 0.05, losses
