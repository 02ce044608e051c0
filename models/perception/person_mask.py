"""Who is a person: mediapipe's selfie segmentation (shipped inside the 0.10.21 wheel), one
lazily built model per user (the landmark tier; the live pipeline for the learned tiers).

The learned tiers see only the face crop and can take a plain backdrop beside the head (a
green screen, a bare wall) for hair; the live pipeline runs the landscape model (1, 1.7 ms a
640x480 frame against 2.7 ms for the general model 0, with the same gain) once per frame in
the tracking stage and keeps their hair and skin inside it. RNN-G on the validation splits
(`python -m benchmarks.accuracy --person-mask`): FaceSynthetics hair F1 0.742 -> 0.772, skin
0.860 -> 0.870, LFW hair 0.740 -> 0.768.
"""
import numpy as np

from core.classes import BACKGROUND, HAIR, SKIN

LANDSCAPE = 1


class PersonSegmenter:
    def __init__(self, model_selection: int = LANDSCAPE):
        self.model_selection = model_selection
        self._segmenter = None

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H, W) float32 in [0, 1] for an RGB uint8 image."""
        if self._segmenter is None:
            from models.perception.mediapipe_solutions import mp  # only the live tiers need it, not training
            self._segmenter = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=self.model_selection)
        return self._segmenter.process(np.ascontiguousarray(image)).segmentation_mask

    def frame_mask(self, image: np.ndarray, faces) -> np.ndarray:
        """(H, W) person mask of a frame: the whole frame, and again around each face whose head
        and shoulders span under half the frame's short side. The model sees its input at 256x144,
        where a person 200 pixels tall in a 1280x720 frame is 40: in a group photo of four such
        people the learned tiers' skin and hair, kept inside this mask, were all lost. The box:
        7 eye distances tall from 2 above the eyes, 16:9 like the model's input."""
        mask = self(image)
        h, w = image.shape[:2]
        for face in faces:
            eyes = float(np.linalg.norm(face.five[1] - face.five[0]))
            if 7 * eyes >= 0.5 * min(h, w):
                continue
            cx, top = face.five[:2].mean(0) - (0, 2 * eyes)
            x0, x1 = max(0, int(cx - 6.2 * eyes)), min(w, int(cx + 6.2 * eyes))
            y0, y1 = max(0, int(top)), min(h, int(top + 7 * eyes))
            if x1 - x0 >= 16 and y1 - y0 >= 16:
                if not mask.flags.writeable:   # mediapipe's own buffer
                    mask = mask.copy()
                region = mask[y0:y1, x0:x1]
                np.maximum(region, self(image[y0:y1, x0:x1]), out=region)
        return mask

    def close(self):
        if self._segmenter is not None:
            self._segmenter.close()
            self._segmenter = None


def keep_inside(probs: np.ndarray, person: np.ndarray) -> None:
    """Move the hair and skin probability that lies outside the person to background, in place.
    probs (11, S, S); person (S, S) in [0, 1], aligned with probs."""
    for k in (HAIR, SKIN):
        outside = probs[k] * (1.0 - person)
        probs[k] -= outside
        probs[BACKGROUND] += outside
