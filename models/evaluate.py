"""`python -m models.evaluate`: scores a tier with its papers' metrics (models/training/evaluate.py)."""
from models.training.evaluate import main

if __name__ == "__main__":
    main()
