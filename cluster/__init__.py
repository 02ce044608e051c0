"""Running beyond one process: a collection's items spread over Ray workers (ray_collection.py,
with run_live.py's items in ray_live.py and models.data build's in ray_build.py). Ray is an
optional dependency (requirements-scale.txt); nothing here imports it until --ray is given."""
