"""mediapipe's legacy solutions (face mesh, face detection, selfie segmentation), imported
without matplotlib.

mediapipe's package __init__ imports its drawing helpers, and they import matplotlib.pyplot:
0.3-0.4 s of every start-up here (a third of the landmark tier's) and ~30 MB, for plotting
that this project never does. While mediapipe loads, empty stand-ins take matplotlib's and pyplot's
places; they are removed afterwards, so anyone who imports matplotlib later gets the real one
(only mediapipe's own `plot_landmarks` would not work)."""
import sys
import types

STAND_INS = ("matplotlib", "matplotlib.pyplot")

if "mediapipe" not in sys.modules and not any(name in sys.modules for name in STAND_INS):
    sys.modules.update({name: types.ModuleType(name) for name in STAND_INS})
    try:
        import mediapipe
    finally:
        for name in STAND_INS:
            del sys.modules[name]

import mediapipe as mp

solutions = mp.solutions
