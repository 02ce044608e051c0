"""Keep the notices mediapipe's native code prints (TFLite delegate, feedback tensors) out of
a user's terminal, while Python's own messages and errors still reach stderr."""
import os
import sys


def hide_native_stderr():
    """Point file descriptor 2 at /dev/null and give Python's sys.stderr a copy of the real
    one: native libraries write to fd 2 directly, Python writes through sys.stderr."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr already captured or replaced
        return
    sys.stderr.flush()
    sys.stderr = os.fdopen(os.dup(fd), "w", buffering=1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), fd)
