"""The fit of the learned hair fusion (tools/fit_hair_fusion.py) on a few real LFW faces: it reads
only the training people, and what it fits trusts both the hair network and the parser."""
import json

import pytest

from tools import fit_hair_fusion as fit


@pytest.fixture
def few_lfw(shared_dir, monkeypatch):
    pairs = fit.lfw_pairs()
    train = [p for p in pairs if p[2] == "train"][:8]
    val = [p for p in pairs if p[2] == "val"][:2]
    monkeypatch.setattr(fit, "lfw_pairs", lambda: train + val)
    return train, val


def test_fit_reads_only_training_people_and_weighs_both_sources(few_lfw, tmp_path):
    train, val = few_lfw
    cache = tmp_path / "cache" / "rnng"
    fit.build_cache("rnng", cache, log=lambda *a: None)
    assert len(list(cache.glob("*.pkl"))) == 10
    for image, _, _ in val:   # the fit never opens a validation person's file
        (cache / f"{image.stem}.pkl").unlink()
    coef = fit.fit("rnng", cache, log=lambda *a: None)
    assert coef["h"] > 0.1 and coef["q"] > 0.1   # more hair where either source says hair
    out = tmp_path / "fusion.json"
    fit.main(["--model", "rnng", "--cache", str(tmp_path / "cache"), "--out", str(out)])
    assert json.loads(out.read_text())["tiers"]["rnng"] == coef
