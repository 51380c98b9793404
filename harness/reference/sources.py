"""Cited Keras sources in structured form, and the check that each cited file defines what it names.

A source names one function (or class) in one file of one released distribution:

    Source(distribution="keras", version="3.13.2", file="keras/src/layers/layer.py",
           qualname="Layer.__call__", upstream="keras-team/keras#22021")

Its text form (`parse` reads it, `str(source)` writes it) is the general form

    DIST==VERSION: path/in/wheel.py:Qual.name
    DIST==VERSION: path/in/wheel.py:Qual.name | keras-team/keras#22021
    DIST==VERSION: path/in/wheel.py:Qual.name | keras-team/keras@b9be2128fd, keras-team/keras#22021

- DIST is the distribution's name on PyPI (`keras`, `tf-keras`, `tensorflow`), VERSION its exact
  release; the file is a path inside that distribution's wheel (= relative to site-packages).
- The qualified name is `function`, `Class`, `Class.method` (a `def` directly in the class body)
  or deeper (`Outer.Inner.method`); module-level `if`/`try` blocks count as top level.
- After " | ", optionally, the upstream change where it is known: `owner/repo#N` (a PR or issue)
  or `owner/repo@HEX` (a commit, 7-40 hex digits), several separated by ", ".
- tf.keras of TensorFlow 2.6-2.15 is not in TensorFlow's wheel: it is the `keras` distribution
  that TensorFlow requires (TF 2.12.1 -> keras 2.12.0, 2.13.1 -> 2.13.1, 2.14.1 -> 2.14.0,
  2.15.1 -> keras 2.15.0, `keras/src/...` from 2.13). Cite it as `keras==2.15.0: keras/src/...`;
  `tensorflow==V: keras/...` is refused by `parse` (no TensorFlow wheel has a `keras/` folder).

The legacy forms of harness/reference/rules.py (before this module) are read as:

    tf_keras/src/...py:Q              tf-keras==2.21.0
    keras/src/...py:Q                 keras==3.15.1
    keras 2.3.1: keras/...py:Q        keras==2.3.1
    keras 2.2.4: keras/...py:Q        keras==2.2.4
    tf 2.15: keras/src/...py:Q        keras==2.15.0 (TensorFlow 2.15.1's tf.keras, see above)
    tensorflow/...py:Q                tensorflow==2.21.0 (the core and tests environments' TF)

Checking. `defines(source, cache)` reads the file straight from the distribution's wheel, which
`wheel()` downloads once (`python -m pip download --no-deps --only-binary=:all: DIST==VERSION`)
into the cache (`$HARNESS_WHEEL_CACHE`, default ~/.cache/keras-loss-harness/wheels).
`defines_installed(source)` reads the installed copy instead, when the environment has that exact
version: TensorFlow's wheels are hundreds of MB, so sources in `tensorflow` are checked where it
is installed (the tests environment has TF 2.21.0; `python -m harness.reference.sources
--installed`, run by the sweep's tf212-tf215 environments, checks whatever is installed there).
Both return None when the file defines the name, else a message saying what is missing. The file
is parsed with `ast`; nothing here imports a framework.
"""

from __future__ import annotations

import argparse
import ast
import functools
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["Source", "parse", "wheel", "defines", "defines_installed", "installed_version", "cache_dir",
           "cited", "LARGE_WHEELS"]


@dataclass(frozen=True)
class Source:
    distribution: str
    version: str
    file: str
    qualname: str
    upstream: str = ""

    def __str__(self) -> str:
        text = f"{self.distribution}=={self.version}: {self.file}:{self.qualname}"
        return f"{text} | {self.upstream}" if self.upstream else text


# legacy prefix -> (distribution, version, what the file path must start with)
_LEGACY = [
    ("keras 2.3.1: ", "keras", "2.3.1", "keras/"),
    ("keras 2.2.4: ", "keras", "2.2.4", "keras/"),
    ("tf 2.15: ", "keras", "2.15.0", "keras/src/"),
    ("", "tf-keras", "2.21.0", "tf_keras/"),
    ("", "keras", "3.15.1", "keras/src/"),
    ("", "tensorflow", "2.21.0", "tensorflow/"),
]
# distributions whose wheels are too big to download in CI (checked where installed instead)
LARGE_WHEELS = frozenset({"tensorflow", "tensorflow-cpu", "tensorflow-intel", "jax", "jaxlib", "torch"})
# installed under another name with the same files
_ALIASES = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-intel"),
            "tensorflow-cpu": ("tensorflow-cpu", "tensorflow"), "tf-keras": ("tf-keras", "tf_keras")}

_DIST = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_VERSION = r"[0-9][0-9A-Za-z.+!-]*"
_GENERAL = re.compile(rf"(?P<dist>{_DIST})==(?P<version>{_VERSION}): (?P<rest>.*)\Z", re.S)
_LOCATION = re.compile(r"(?P<file>[A-Za-z0-9_][A-Za-z0-9_./-]*\.py):(?P<qual>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\Z")
_UPSTREAM = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(?:#[0-9]+|@[0-9a-f]{7,40})\Z")
_EXPECTED = ("expected 'DIST==VERSION: path/in/wheel.py:Qual.name' (optionally followed by"
             " ' | owner/repo#N' or ' | owner/repo@commit') or a legacy form"
             " ('tf_keras/src/...py:Q', 'keras/src/...py:Q', 'keras 2.3.1: keras/...py:Q',"
             " 'keras 2.2.4: keras/...py:Q', 'tf 2.15: keras/src/...py:Q', 'tensorflow/...py:Q')")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(text: str) -> Source:
    """A Source from its text (the general form or a legacy one: see the module docstring)."""
    if not isinstance(text, str):
        raise ValueError(f"source {text!r}: not a string; {_EXPECTED}")
    body, sep, upstream = text.partition(" | ")
    upstream = upstream.strip()
    if sep:
        refs = [r.strip() for r in upstream.split(",")]
        bad = [r for r in refs if not _UPSTREAM.match(r)]
        if not upstream or bad:
            raise ValueError(f"source {text!r}: upstream reference {', '.join(bad) or repr(upstream)!s} is not "
                             "'owner/repo#N' or 'owner/repo@HEX' (7-40 hex digits)")
        upstream = ", ".join(refs)
    m = _GENERAL.match(body)
    if m:
        dist, version, rest = _norm(m["dist"]), m["version"], m["rest"]
        if dist.startswith("tensorflow") and rest.startswith("keras/"):
            raise ValueError(f"source {text!r}: TensorFlow's wheel has no keras/ folder; tf.keras of "
                             "TF 2.6-2.15 is the `keras` distribution TF requires: cite e.g. "
                             "'keras==2.15.0: keras/src/...' for TF 2.15")
    else:
        for prefix, dist, version, start in _LEGACY:
            if body.startswith(prefix) and body[len(prefix):].startswith(start):
                rest = body[len(prefix):]
                break
        else:
            raise ValueError(f"source {text!r}: unknown distribution; {_EXPECTED}")
    loc = _LOCATION.match(rest)
    if not loc:
        raise ValueError(f"source {text!r}: {rest!r} is not 'path/in/wheel.py:Qual.name'; {_EXPECTED}")
    if loc["file"].startswith("/") or ".." in loc["file"].split("/"):
        raise ValueError(f"source {text!r}: the file must be a relative path inside the wheel")
    return Source(dist, version, loc["file"], loc["qual"], upstream)


def _as_source(source: Source | str) -> Source:
    return source if isinstance(source, Source) else parse(source)


def cache_dir() -> Path:
    """$HARNESS_WHEEL_CACHE, else ~/.cache/keras-loss-harness/wheels."""
    env = os.environ.get("HARNESS_WHEEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "keras-loss-harness" / "wheels"


def _cached(distribution: str, version: str, cache: Path) -> Path | None:
    stem = re.sub(r"[-_.]+", "_", distribution).lower()
    hits = sorted(p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-"))
    return hits[0] if hits else None


def wheel(distribution: str, version: str, cache: Path | None = None) -> Path:
    """The wheel of DIST==VERSION in the cache, downloaded there once with pip if absent.

    pip downloads into a fresh folder inside the cache and the wheel is then renamed into place,
    so two processes never see half a file. Raises RuntimeError (with pip's output) on failure.
    """
    cache = Path(cache) if cache is not None else cache_dir()
    hit = _cached(distribution, version, cache)
    if hit:
        return hit
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               f"{distribution}=={version}", "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not got:
            raise RuntimeError(f"could not download {distribution}=={version}: {' '.join(cmd)} exited "
                               f"{proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        for p in got:
            os.replace(p, cache / p.name)
    hit = _cached(distribution, version, cache)
    if not hit:
        raise RuntimeError(f"pip downloaded {[p.name for p in got]} for {distribution}=={version}, "
                           f"none named like {distribution}-{version}-*.whl")
    return hit


_BLOCKS = tuple(getattr(ast, n) for n in ("If", "Try", "TryStar", "With") if hasattr(ast, n))


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a module or class body, looking inside if/try/with blocks."""
    for node in body:
        if isinstance(node, _BLOCKS):
            yield from _top_level(node.body)
            yield from _top_level(getattr(node, "orelse", []))
            for h in getattr(node, "handlers", []):
                yield from _top_level(h.body)
            yield from _top_level(getattr(node, "finalbody", []))
        else:
            yield node


def _find(text: str, qualname: str, where: str) -> str | None:
    try:
        tree = ast.parse(text)
    except SyntaxError as e:
        return f"{where}: cannot be parsed ({e.msg}, line {e.lineno})"
    body, scope = tree.body, "the module's top level"
    parts = qualname.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef) if last else (ast.ClassDef,)
        found = [n for n in _top_level(body) if isinstance(n, kinds) and n.name == part]
        if not found:
            if not last:
                return f"{where}: no class {part} at {scope}"
            elsewhere = sorted({f"{c.name}" for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                                for n in c.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                                and n.name == part})
            hint = f" (defined in class {', '.join(elsewhere)})" if elsewhere else ""
            return f"{where}: no def {part} in {scope}{hint}"
        body, scope = found[0].body, f"class {'.'.join(parts[:i + 1])}"
    return None


@functools.lru_cache(maxsize=None)
def _wheel_member(path: Path, file: str) -> str | None:
    with zipfile.ZipFile(path) as z:
        try:
            return z.read(file).decode("utf-8")
        except KeyError:
            return None


def defines(source: Source | str, cache: Path | None = None) -> str | None:
    """None if the source's file, read from its distribution's wheel, defines its qualified name;
    else a message naming the source and what is missing. Downloads the wheel once if needed."""
    source = _as_source(source)
    whl = wheel(source.distribution, source.version, cache)
    text = _wheel_member(whl, source.file)
    if text is None:
        return f"{source}: no file {source.file} in {whl.name}"
    return _find(text, source.qualname, f"{source} ({whl.name})")


def installed_version(distribution: str) -> str | None:
    """The installed version of the distribution (or of a name with the same files, e.g.
    tensorflow-cpu for tensorflow), None if none is installed."""
    dist = _installed_dist(distribution)
    return None if dist is None else dist.version


def _installed_dist(distribution: str) -> metadata.Distribution | None:
    for name in _ALIASES.get(_norm(distribution), (distribution,)):
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def defines_installed(source: Source | str) -> str | None:
    """As `defines`, reading the installed file. Raises LookupError unless the environment has
    the source's distribution at exactly its version."""
    source = _as_source(source)
    have = installed_version(source.distribution)
    if have != source.version:
        raise LookupError(f"{source}: {source.distribution} {have or 'is not'} installed"
                          f"{'' if have is None else ', not ' + source.version}")
    dist = _installed_dist(source.distribution)
    path = Path(dist.locate_file(source.file))
    if not path.is_file():
        return f"{source}: no file {path}"
    return _find(path.read_text(encoding="utf-8"), source.qualname, f"{source} ({path})")


def cited() -> Iterator[tuple[str, Source | str]]:
    """(label, source) for every source cited by harness.reference.rules and, when it exists,
    harness.reference.semantics (any module-level list/tuple/dict of rows with `sources`)."""
    import importlib

    from harness.reference import rules

    for rule in rules.RULES.values():
        for alt_name, alt in rule.alternatives.items():
            for src in alt.sources:
                yield f"{rule.name}={alt_name}", src
    try:
        semantics = importlib.import_module("harness.reference.semantics")
    except ModuleNotFoundError as e:
        if e.name != "harness.reference.semantics":
            raise
        return
    seen: set[int] = set()
    for attr, value in sorted(vars(semantics).items()):
        if attr.startswith("_") or not isinstance(value, (list, tuple, dict)):
            continue
        rows = value.values() if isinstance(value, dict) else value
        for i, row in enumerate(rows):
            sources = getattr(row, "sources", None)
            if sources is None or isinstance(sources, str) or id(row) in seen:
                continue
            seen.add(id(row))
            label = f"{attr}[{i}]" + (f"({row.lineage})" if isinstance(getattr(row, "lineage", None), str) else "")
            for src in sources:
                yield f"semantics:{label}", src


def check_installed(items: Iterable[tuple[str, Source | str]], out=sys.stdout) -> tuple[int, int, int]:
    """Check every source whose distribution is installed at its exact version; print each failure.
    Returns (checked, failed, not installed here)."""
    checked = failed = other = 0
    for label, src in items:
        try:
            source = _as_source(src)
        except ValueError as e:
            failed += 1
            print(f"FAIL {label}: {e}", file=out)
            continue
        if installed_version(source.distribution) != source.version:
            other += 1
            continue
        checked += 1
        problem = defines_installed(source)
        if problem:
            failed += 1
            print(f"FAIL {label}: {problem}", file=out)
    return checked, failed, other


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.reference.sources", description=__doc__.split("\n")[0])
    ap.add_argument("--installed", action="store_true", required=True,
                    help="check every cited source whose distribution is installed here at its exact version")
    ap.parse_args(argv)
    checked, failed, other = check_installed(cited())
    print(f"sources: {checked} checked against the installed distributions, {failed} failed, "
          f"{other} cite versions not installed here")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
