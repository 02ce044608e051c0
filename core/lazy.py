"""String registries that import on use: a name maps to "package.module:attribute".

The parser tiers (models.parsers.registry), the training recipes (models.training.recipes) and
the dataset readers (models.data.build) are listed this way, so that listing them imports
nothing: a tier's torch code loads only when that tier is used, and the landmark tier starts
without torch.
"""
import importlib


def resolve(target: str):
    """"package.module:attribute" -> the attribute, importing its module now (once)."""
    module, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"'{target}' is not of the form 'package.module:attribute'")
    return getattr(importlib.import_module(module), attribute)
