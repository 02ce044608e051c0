"""RED-Net, BSPNet and STN-iCNN train as RNN-G does: each step a batch of fully labelled faces
plus a cycled batch of real faces (here the tiny dataset's LFW-style hair-only sample)."""
import pytest
import torch
from torch.utils.data import default_collate

from models.training import train
from models.training.evaluate import open_dataset
from models.training.recipes import get_recipe
from models.training.trainable import Stage
from tests.models.training.test_train_loop import write_tiny_dataset

SMALL = {"rednet": {"width": 8}, "stn-icnn": {},
         "bspnet": {"width": 8, "semantic_features": 16, "boundary_features": 8, "fusion_features": 16}}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, astronaut):
    torch.set_num_threads(1)
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"), astronaut)


@pytest.mark.parametrize("name", list(SMALL))
def test_real_faces_join_every_step(tiny_data, name):
    recipe = get_recipe(name)
    config = {**train.DEFAULTS, **recipe.default_config(), **SMALL[name], "augment": False}
    assert config["sources"] == ["facesynthetics"] and config["real_batch_size"] == 12
    torch.manual_seed(0)
    model = recipe.build(config)
    recipe.prepare(model, config, tiny_data)
    extras = recipe.extra_datasets(config, tiny_data)
    assert [r["source"] for r in extras["real"].records] == ["lfw_hair"]   # the one real train face
    main = open_dataset(tiny_data, "train", model.input_size, sources=config["sources"])
    batch = default_collate([main[0], main[1]])
    real = default_collate([extras["real"][0]])
    stage = Stage(recipe.stages(config, extras)[0][0], config=config)
    model.eval()   # the same batch-norm statistics for both losses
    with torch.no_grad():
        alone = recipe.loss(model, batch, stage)[0]
        mixed = recipe.loss(model, {**batch, "real": real}, stage)[0]
    assert torch.isfinite(mixed) and not torch.isclose(alone, mixed)   # the real face counts
