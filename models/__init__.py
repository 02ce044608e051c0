"""Face parsing models, by concern: perception (tracking, person mask, optical flow), parsers
(the Parser interface, the tier registry, networks and inference), data (datasets) and training
(the loop and one recipe per tier). See README, "Architecture"."""
