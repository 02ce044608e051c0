"""The landmark tier scored against the FaceSynthetics validation labels (ids 64-79).

Floors are the scores measured when the tier was tuned (models/parsers/landmark_parser.py), less a
margin, so that a change that makes it worse fails here."""
from core.classes import CLASS_NAMES
from models.training.evaluate import evaluate_dir, format_table
from models.parsers.landmark_parser import LandmarkParser

# measured 2026-11-27 on the 16 validation faces: overall 0.818, mean 0.721
FLOORS = {"overall_f1": 0.79, "mean_f1": 0.69}
CLASS_FLOORS = {"skin": 0.78, "left_brow": 0.55, "right_brow": 0.54, "left_eye": 0.67, "right_eye": 0.67,
                "nose": 0.84, "upper_lip": 0.61, "inner_mouth": 0.76, "lower_lip": 0.75, "hair": 0.58}


def test_landmark_tier_f1_on_facesynthetics(facesynthetics_dataset):
    result = evaluate_dir(LandmarkParser(), facesynthetics_dataset, split="val", progress=False)
    print("\n" + format_table(result))
    assert result["n_images"] == 16
    for key, floor in FLOORS.items():
        assert result[key] >= floor, key
    for name, floor in CLASS_FLOORS.items():
        assert name in CLASS_NAMES
        assert result["per_class_f1"][name] >= floor, name
