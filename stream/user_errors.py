"""The one table of errors whose message is meant for the user, for run_live.py and the web page.

Each of these carries one readable line (a bad path, effect, colour, model or checkpoint): the
CLI prints it as `error: ...` and exits 2, the page shows it as a message. Anything else is a bug
and keeps its traceback."""
import sys

from core.errors import InputError


def user_errors() -> tuple:
    """The user-facing exception classes (checkpoint errors only once torch is loaded: importing
    models.parsers.checkpoint imports torch, and nothing can raise them before that)."""
    from effects import EffectSpecError
    from models.parsers.registry import UnknownModel
    errors = [InputError, EffectSpecError, UnknownModel]
    checkpoint = sys.modules.get("models.parsers.checkpoint")
    if checkpoint is not None:
        errors.append(checkpoint.CheckpointError)
    return tuple(errors)


def is_user_error(exc: BaseException) -> bool:
    return isinstance(exc, user_errors())
