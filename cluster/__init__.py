"""Spreading a collection's items over Ray workers (ray_collection.py): the engine only, with
no knowledge of what an item is. run_live.py's items are in stream/ray_live.py, models.data
build's in models/data/ray_build.py. Ray is an optional dependency (requirements-scale.txt);
nothing imports it until --ray is given."""
