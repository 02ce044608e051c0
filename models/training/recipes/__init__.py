"""Training recipes, one module per learned tier: tier name -> "module:Recipe class".

`python -m models.train --model NAME` trains through get_recipe(NAME); the tier's network and
checkpoint live in models.parsers (its registry). Adding a tier: see README, "Architecture".
"""
from core.lazy import resolve
from models.parsers.registry import UnknownModel, tier
from models.training.trainable import Trainable

RECIPES = {
    "rnng": "models.training.recipes.rnng:RNNGRecipe",
    "student": "models.training.recipes.student:StudentRecipe",
    "teacher": "models.training.recipes.teacher:TeacherRecipe",
    "rednet": "models.training.recipes.rednet:REDNetRecipe",
    "bspnet": "models.training.recipes.bspnet:BSPNetRecipe",
    "stn-icnn": "models.training.recipes.stn_icnn:STNiCNNRecipe",
}


def get_recipe(name: str) -> Trainable:
    """A fresh recipe (one per training run) for tier `name`."""
    tier(name)  # unknown names: the registry's error
    if name not in RECIPES:
        raise UnknownModel(f"model '{name}' has no weights to train")
    return resolve(RECIPES[name])()
