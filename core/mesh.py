"""Face-mesh index tables: which of mediapipe's 478 face-mesh points outline each part.

The landmark tier fits the parts from them (models.parsers.landmark_parser) and the effects place
make-up with them (effects.cheeks, effects.eyes); both import them from here, the kernel, rather
than one from the other. "Left" is the image's left for an unmirrored frame (core.classes).
"""

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
             152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LEFT_BROW_PTS = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
RIGHT_BROW_PTS = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
# eyes: corner, upper lid ..., corner / corner, lower lid ..., corner
LEFT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
LEFT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
RIGHT_EYE_UPPER = (362, 398, 384, 385, 386, 387, 388, 466, 263)
RIGHT_EYE_LOWER = (362, 382, 381, 380, 374, 373, 390, 249, 263)
LIPS_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_OUTER_LOWER = (291, 375, 321, 405, 314, 17, 84, 181, 91, 146, 61)
LIPS_INNER_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_INNER_LOWER = (308, 324, 318, 402, 317, 14, 87, 178, 88, 95, 78)
NOSE_PTS = (168, 193, 417, 122, 351, 196, 419, 3, 248, 236, 456, 198, 420, 131, 360, 49, 279, 48, 278,
            219, 439, 64, 294, 98, 327, 97, 326, 2, 129, 358, 102, 331, 240, 460)
LEFT_CHEEK_PTS = (50, 101, 36, 205, 187, 123, 117, 118)   # used for the skin-colour model
RIGHT_CHEEK_PTS = (280, 330, 266, 425, 411, 352, 346, 347)
FOREHEAD_PTS = (151, 108, 337, 9, 107, 336, 109, 338)
