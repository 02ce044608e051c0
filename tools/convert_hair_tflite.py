"""Convert MediaPipe's hair_segmentation.tflite to checkpoints/hair_net.pt (fp16, torch only).

    python -m tools.convert_hair_tflite ../shared/models/mediapipe_hair_segmentation.tflite \
        --out checkpoints/hair_net.pt

Needs the `tflite` package (flatbuffer reader; pip install tflite==2.18.0) here only; the
shipped loader (models.parsers.hair_net.load_torch_hair_net) needs only torch.

Pairing: the graph's weight tensors are named after the Keras layers (conv2d_N/Kernel,
depthwise_conv2d_N/Kernel, p_re_lu_N/Alpha, conv2d_transpose_N/Kernel and .../Bias), and
HairNet creates its layers in the same order, so family by family the N-th tflite layer is
the N-th torch layer of that kind. Each pair is checked: weight shape, and from the op that
uses it kernel, stride, dilation and padding. Any mismatch stops the conversion.
"""
import argparse
import hashlib
import re
import struct
import sys
from pathlib import Path

import numpy as np
import torch

from models.parsers.hair_net import TIER
from models.parsers.hair_net_torch import HairNet, TfConv2d, TransposeConvBias

SOURCE_COMMIT = "d68f5e416903e3d756ebe07d08c4a3b911741a91"
# Filled in from benchmarks/hair_net_lfw.py (see checkpoints/hair_net.md); plain data only.
MEASURED = {
    "lfw_all_1791_at_512": {"f1": 0.7812, "iou": 0.6409},
    "lfw_val_272_at_512": {"f1": 0.7701, "iou": 0.6261},
    "lfw_all_1791_at_256": {"f1": 0.7676, "iou": 0.6228},
    "note": "whole-dataset pixel hair F1/IoU (benchmarks/hair_net_lfw.py): 250 -> size -> 250, "
            "threshold 0.5, previous-mask channel 0; val = the project's LFW validation persons",
}


class ConversionError(Exception):
    pass


def _family(name: str):
    """('conv2d', 5) for 'conv2d_5/Kernel'; ('conv2d', 0) for 'conv2d/Kernel'."""
    m = re.fullmatch(r"(conv2d_transpose|depthwise_conv2d|conv2d|p_re_lu)(?:_(\d+))?/(Kernel|Bias|Alpha)", name)
    if not m:
        return None
    return m.group(1), int(m.group(2) or 0), m.group(3)


def read_tflite(path):
    """{(family, number): {"Kernel"/"Bias"/"Alpha": float32 array, "op": dict of op settings}}."""
    import tflite  # converter-only dependency

    buf = Path(path).read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    layers = {}

    def tensor(i):
        t = graph.Tensors(i)
        raw = model.Buffers(t.Buffer()).DataAsNumpy()
        if t.Type() != tflite.TensorType.FLOAT32:
            raise ConversionError(f"tensor {t.Name().decode()} is not float32")
        return t.Name().decode(), np.frombuffer(raw.tobytes(), np.float32).reshape(t.ShapeAsNumpy())

    # TfLitePadding (custom ops' raw structs) vs the schema's Padding (built-in ops).
    builtin_padding = {tflite.Padding.SAME: "same", tflite.Padding.VALID: "valid"}
    custom_padding = {1: "same", 2: "valid"}
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        settings = {}
        if builtin == tflite.BuiltinOperator.CONV_2D:
            o = tflite.Conv2DOptions()
        elif builtin == tflite.BuiltinOperator.DEPTHWISE_CONV_2D:
            o = tflite.DepthwiseConv2DOptions()
        elif builtin == tflite.BuiltinOperator.CUSTOM and code.CustomCode() == b"Convolution2DTransposeBias":
            # TfLiteTransposeConvParams {padding, stride_width, stride_height} as raw int32s
            pad, sw, sh = struct.unpack("<3i", op.CustomOptionsAsNumpy().tobytes()[:12])
            settings = {"padding": custom_padding.get(pad), "stride": (sh, sw)}
            o = None
        else:
            continue
        if o is not None:
            table = op.BuiltinOptions()
            o.Init(table.Bytes, table.Pos)
            if o.FusedActivationFunction() != 0:
                raise ConversionError(f"op {k} has a fused activation; HairNet has none")
            if builtin == tflite.BuiltinOperator.DEPTHWISE_CONV_2D and o.DepthMultiplier() != 1:
                raise ConversionError(f"op {k}: depth multiplier {o.DepthMultiplier()}")
            settings = {"padding": builtin_padding[o.Padding()], "stride": (o.StrideH(), o.StrideW()),
                        "dilation": (o.DilationHFactor(), o.DilationWFactor())}
        for i in op.InputsAsNumpy()[1:]:
            name, value = tensor(i)
            fam = _family(name)
            if fam is None:
                raise ConversionError(f"unexpected weight tensor {name}")
            layers.setdefault(fam[:2], {})[fam[2]] = value
            layers[fam[:2]]["op"] = settings
    # PReLU alphas are inputs of PRELU ops; collect every named constant not yet seen.
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        fam = _family(t.Name().decode())
        if fam and fam[0] == "p_re_lu" and model.Buffers(t.Buffer()).DataLength():
            layers.setdefault(fam[:2], {})["Alpha"] = tensor(i)[1]
    return layers


def torch_layers(net: HairNet):
    """HairNet's layers by family, in creation order: the same order as the Keras names."""
    fams = {"conv2d": [], "depthwise_conv2d": [], "p_re_lu": [], "conv2d_transpose": []}
    for name, m in net.named_modules():
        if isinstance(m, TfConv2d):
            fams["depthwise_conv2d" if m.groups > 1 else "conv2d"].append((name, m))
        elif isinstance(m, torch.nn.PReLU):
            fams["p_re_lu"].append((name, m))
        elif isinstance(m, TransposeConvBias):
            fams["conv2d_transpose"].append((name, m))
    return fams


def _expect(cond, msg):
    if not cond:
        raise ConversionError(msg)


def convert(tflite_path) -> dict:
    """The tflite weights as HairNet's float32 state_dict; every shape and setting checked."""
    layers = read_tflite(tflite_path)
    net = HairNet()
    state = {}
    for family, mods in torch_layers(net).items():
        numbers = sorted(n for f, n in layers if f == family)
        _expect(numbers == list(range(len(mods))),
                f"{family}: tflite has {len(numbers)} layers, HairNet {len(mods)}")
        for n, (name, m) in zip(numbers, mods):
            src = layers[(family, n)]
            tag = f"{family}_{n} -> {name}"
            if family == "p_re_lu":
                # alpha [1, 1, C]: one slope per channel, shared over the image
                alpha = src["Alpha"]
                _expect(alpha.shape == (1, 1, m.weight.numel()), f"{tag}: alpha {alpha.shape}")
                state[f"{name}.weight"] = torch.from_numpy(alpha.reshape(-1).copy())
                continue
            kernel, bias, op = src["Kernel"], src["Bias"], src["op"]
            if family == "conv2d_transpose":
                # OHWI -> torch conv_transpose2d (in, out, kh, kw); no kernel flip: MediaPipe's
                # loop adds input[y] * w[ky] to output[y * stride + ky - pad], as torch does
                weight = kernel.transpose(3, 0, 1, 2)
                _expect(op["padding"] == "same" and op["stride"] == (m.stride, m.stride), f"{tag}: {op}")
            else:
                if family == "conv2d":
                    weight = kernel.transpose(0, 3, 1, 2)        # OHWI -> OIHW
                else:
                    weight = kernel.transpose(3, 0, 1, 2)        # 1HWC -> C1HW (multiplier 1)
                _expect(op["stride"] == m.stride and op["dilation"] == m.dilation, f"{tag}: {op} vs {m}")
                # padding only matters for kernels above 1x1
                _expect(m.kernel_size == (1, 1) or op["padding"] == m.tf_padding, f"{tag}: {op['padding']}")
            _expect(tuple(weight.shape) == tuple(m.weight.shape), f"{tag}: weight {weight.shape} vs {tuple(m.weight.shape)}")
            _expect(tuple(bias.shape) == tuple(m.bias.shape), f"{tag}: bias {bias.shape}")
            state[f"{name}.weight"] = torch.from_numpy(np.array(weight, np.float32))
            state[f"{name}.bias"] = torch.from_numpy(bias.copy())
    _expect(set(state) == set(net.state_dict()), "state_dict keys differ")
    net.load_state_dict(state)  # strict: every parameter filled
    return state


def build_checkpoint(tflite_path) -> dict:
    data = Path(tflite_path).read_bytes()
    state = convert(tflite_path)
    return {
        "tier": TIER,
        "config": {
            "input": "N x 4 x H x W float: RGB in [0, 1], then the previous frame's hair mask (0 for stills)",
            "output": "N x 2 x H x W logits: 0 background, 1 hair (softmax)",
            "size_multiple": 32,
            "default_size": 512,
            "classes": ["background", "hair"],
        },
        "state_dict": {k: v.half() for k, v in state.items()},
        "card": {
            "name": "MediaPipe hair segmentation (2019), torch port",
            "source": "mediapipe/models/hair_segmentation.tflite, google/mediapipe",
            "source_commit": SOURCE_COMMIT,
            "source_sha256": hashlib.sha256(data).hexdigest(),
            "licence": "Apache-2.0 (checkpoints/LICENSE-mediapipe-hair.txt); Copyright The MediaPipe Authors",
            "parameters": sum(v.numel() for v in state.values()),
            "measured": MEASURED,
            "details": "checkpoints/hair_net.md",
        },
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tflite")
    ap.add_argument("--out", default="checkpoints/hair_net.pt")
    args = ap.parse_args(argv)
    try:
        blob = build_checkpoint(args.tflite)
    except ConversionError as exc:
        sys.exit(f"conversion failed: {exc}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, args.out)
    print(f"wrote {args.out}: {blob['card']['parameters']:,} parameters, "
          f"{Path(args.out).stat().st_size / 1e6:.2f} MB (fp16)")


if __name__ == "__main__":
    main()
