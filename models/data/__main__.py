"""`python -m models.data build ...`: builds a dataset in the compact format (models/data/build.py)."""

from models.data.build import main

main()
