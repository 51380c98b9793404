"""Where, and as what, an implementation raises when a profile says it does (a predicted error).

The reference writes each predicted error as a Breakdown note (aggregate, distributed): a text for
people, and, since issue 15 item 4, an `ErrorSite` for harness.compare.predicts_error: the
exception types the implementation raises there (one per backend where they differ) and the
Keras file(s) whose code raises (plus the function where known). A note is a `Note`, a str that
carries its site, so the notes stay lists of strings (JSON, the report) and every place that
prefixes them ("batch 0: ...") keeps the site with `prefixed`.

The types were read off real runs (tests/data/results/*.jsonl; /tmp runs of the corpus's error
cases under Keras 3.15.1 with TF 2.21, JAX 0.10, torch 2.13, and tf_keras 2.21):

    a broadcast of incompatible shapes   TF eager InvalidArgumentError, TF traced (compiled,
                                         jit) ValueError, JAX ValueError (jnp) or TypeError
                                         (lax), torch RuntimeError, NumPy ValueError
    an object array / dict as a tensor   TF ValueError (eager) or TypeError (traced), JAX
                                         TypeError, torch ValueError ('Invalid dtype'),
                                         NumPy TypeError
    Keras' own checks                    the type Keras raises (ValueError, KeyError, ...)
"""

from __future__ import annotations

from dataclasses import dataclass

# The exception type names of one kind of failure, over every backend (see the module docstring).
BROADCAST = ("ValueError", "InvalidArgumentError", "TypeError", "RuntimeError")
CONVERSION = ("ValueError", "TypeError")
DTYPE = ("TypeError", "ValueError", "InvalidArgumentError")


@dataclass(frozen=True)
class ErrorSite:
    types: tuple[str, ...]  # exception class names (type(exc).__name__) the implementation raises
    files: tuple[str, ...]  # Keras files (as harness.results.KERAS_FILE finds them) whose code raises
    function: str | None = None  # for people; the matcher does not compare it (lines move between releases)
    # Keras's own check (a `raise` in one of `files`): the innermost frame must be there. Without it a
    # framework frame whose message names no Keras file is accepted (the Keras line unknown).
    own_check: bool = False

    def to_json(self) -> dict:
        return {"types": list(self.types), "files": list(self.files), "function": self.function,
                **({"own_check": True} if self.own_check else {})}


class Note(str):
    """A predicted error's note: its text, and `site` (None for a note that predicts no error)."""

    site: ErrorSite | None

    def __new__(cls, text: str, site: ErrorSite | None = None) -> "Note":
        obj = super().__new__(cls, text)
        obj.site = site
        return obj

    def __reduce__(self):  # pickles with its site (workers, caches)
        return (Note, (str(self), self.site))


def prefixed(prefix: str, note: str, suffix: str = "", extra_files: tuple[str, ...] = (),
             extra_types: tuple[str, ...] = ()) -> str:
    """`prefix + note + suffix`, keeping the note's site (widened by extra files and types)."""
    site = getattr(note, "site", None)
    if site is not None and (extra_files or extra_types):
        site = ErrorSite(tuple(dict.fromkeys(site.types + extra_types)),
                         tuple(dict.fromkeys(site.files + extra_files)), site.function, site.own_check)
    return Note(f"{prefix}{note}{suffix}", site)


def site_of(note: str) -> ErrorSite | None:
    return getattr(note, "site", None)
