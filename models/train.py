"""`python -m models.train`: the training loop's command line (models/training/train.py)."""

from models.training.train import main

if __name__ == "__main__":
    main()
