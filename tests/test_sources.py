"""harness.reference.sources: citations parsed in every form, malformed ones refused, and the
check that a wheel's file defines the cited name (on tiny wheels built here: no network)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from harness.reference import sources
from harness.reference.sources import Source, parse

MODULE = '''
import os

def top(x):
    return x

class Loss:
    def __call__(self, y):
        return y

    class Inner:
        def deep(self):
            pass

class LossesContainer(Container):
    def __call__(self, y):
        return y

if os.name:
    def conditional():
        pass

    class Guarded:
        def method(self):
            pass
'''


def _wheel(cache: Path, dist="demo-pkg", version="1.2.3", files=None) -> Path:
    """A minimal wheel named as pip names it, in the cache, so `wheel()` finds it without pip."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{dist.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in (files or {"demo/src/losses.py": MODULE}).items():
            z.writestr(name, text)
    return path


@pytest.mark.parametrize("text, want", [
    ("tf_keras/src/losses.py:Loss.__call__", Source("tf-keras", "2.21.0", "tf_keras/src/losses.py", "Loss.__call__")),
    ("keras/src/losses/loss.py:apply_mask", Source("keras", "3.15.1", "keras/src/losses/loss.py", "apply_mask")),
    ("keras 2.3.1: keras/engine/training.py:Model._prepare_total_loss",
     Source("keras", "2.3.1", "keras/engine/training.py", "Model._prepare_total_loss")),
    ("keras 2.2.4: keras/engine/training_utils.py:weighted_masked_objective",
     Source("keras", "2.2.4", "keras/engine/training_utils.py", "weighted_masked_objective")),
    # TF 2.15.1's tf.keras is the keras 2.15.0 distribution it requires, not a file of its wheel
    ("tf 2.15: keras/src/engine/training_v1.py:Model._prepare_total_loss",
     Source("keras", "2.15.0", "keras/src/engine/training_v1.py", "Model._prepare_total_loss")),
    ("tensorflow/python/data/experimental/ops/distribute.py:batch_sizes_for_worker",
     Source("tensorflow", "2.21.0", "tensorflow/python/data/experimental/ops/distribute.py",
            "batch_sizes_for_worker")),
    ("keras==3.13.2: keras/src/layers/layer.py:Layer.__call__",
     Source("keras", "3.13.2", "keras/src/layers/layer.py", "Layer.__call__")),
    ("tf_keras==2.15.1: tf_keras/src/losses.py:Loss.__call__",
     Source("tf-keras", "2.15.1", "tf_keras/src/losses.py", "Loss.__call__")),
    ("keras==3.13.2: keras/src/layers/layer.py:Layer.__call__ | keras-team/keras#22021",
     Source("keras", "3.13.2", "keras/src/layers/layer.py", "Layer.__call__", "keras-team/keras#22021")),
    ("keras==3.13.2: keras/src/layers/layer.py:Layer.__call__ | keras-team/keras@b9be2128fd,keras-team/keras#22021",
     Source("keras", "3.13.2", "keras/src/layers/layer.py", "Layer.__call__",
            "keras-team/keras@b9be2128fd, keras-team/keras#22021")),
    ("keras/src/losses/loss.py:apply_mask | keras-team/keras#1",
     Source("keras", "3.15.1", "keras/src/losses/loss.py", "apply_mask", "keras-team/keras#1")),
])
def test_parse_reads_every_form(text, want):
    assert parse(text) == want
    assert parse(str(want)) == want  # str() writes the general form, which parses back


def test_every_cited_source_parses():
    for label, src in sources.cited():
        if not isinstance(src, Source):
            parse(src)


@pytest.mark.parametrize("text, says", [
    ("", "unknown distribution"),
    ("keras/src/losses/loss.py", "is not 'path/in/wheel.py:Qual.name'"),
    ("keras/src/losses/loss.py:", "is not 'path/in/wheel.py:Qual.name'"),
    ("keras/src/losses/loss:apply_mask", "is not 'path/in/wheel.py:Qual.name'"),
    ("keras/src/losses/loss.py:apply mask", "is not 'path/in/wheel.py:Qual.name'"),
    ("keras 3.15.1: keras/src/losses/loss.py:apply_mask", "unknown distribution"),
    ("keras==3.15.1 keras/src/losses/loss.py:apply_mask", "unknown distribution"),
    ("keras=3.15.1: keras/src/losses/loss.py:apply_mask", "unknown distribution"),
    ("keras==: keras/src/losses/loss.py:apply_mask", "unknown distribution"),
    ("numpy/core.py:mean", "unknown distribution"),
    ("keras==3.15.1: keras/../loss.py:apply_mask", "relative path inside the wheel"),
    ("keras==3.15.1: keras/src/losses/loss.py:apply_mask | ", "upstream reference"),
    ("keras==3.15.1: keras/src/losses/loss.py:apply_mask | PR 22021", "upstream reference PR 22021"),
    ("keras==3.15.1: keras/src/losses/loss.py:apply_mask | keras-team/keras@xyz", "upstream reference"),
    ("tensorflow==2.15.1: keras/src/losses.py:Loss.__call__", "keras==2.15.0"),
    ("tensorflow-cpu==2.15.1: keras/src/losses.py:Loss.__call__", "TensorFlow's wheel has no keras/"),
])
def test_parse_refuses_malformed_text_naming_it(text, says):
    with pytest.raises(ValueError) as e:
        parse(text)
    assert repr(text) in str(e.value) and says in str(e.value)


def test_defines_finds_top_level_and_nested_names(tmp_path):
    _wheel(tmp_path)
    for qual in ["top", "Loss", "Loss.__call__", "Loss.Inner.deep", "LossesContainer.__call__",
                 "conditional", "Guarded.method"]:
        assert sources.defines(f"demo-pkg==1.2.3: demo/src/losses.py:{qual}", tmp_path) is None, qual


def test_defines_refuses_a_missing_function(tmp_path):
    _wheel(tmp_path)
    msg = sources.defines("demo-pkg==1.2.3: demo/src/losses.py:Loss.missing", tmp_path)
    assert msg and "demo/src/losses.py:Loss.missing" in msg and "no def missing in class Loss" in msg
    assert "no def gone in the module's top level" in sources.defines("demo-pkg==1.2.3: demo/src/losses.py:gone",
                                                                      tmp_path)
    assert "no class Nope" in sources.defines("demo-pkg==1.2.3: demo/src/losses.py:Nope.top", tmp_path)


def test_defines_refuses_a_function_of_another_class_or_nested_one(tmp_path):
    _wheel(tmp_path)
    # __call__ exists, in Loss and LossesContainer; Inner.deep is not a method of Loss
    msg = sources.defines("demo-pkg==1.2.3: demo/src/losses.py:Guarded.__call__", tmp_path)
    assert msg and "no def __call__ in class Guarded" in msg and "defined in class Loss, LossesContainer" in msg
    assert sources.defines("demo-pkg==1.2.3: demo/src/losses.py:Loss.deep", tmp_path)
    assert sources.defines("demo-pkg==1.2.3: demo/src/losses.py:deep", tmp_path)  # a method is not top level
    # inherited is not defined: LossesContainer(Container) must be cited where the def is
    assert sources.defines("demo-pkg==1.2.3: demo/src/losses.py:LossesContainer.deep", tmp_path)


def test_defines_refuses_a_missing_file_naming_the_wheel(tmp_path):
    _wheel(tmp_path)
    msg = sources.defines("demo-pkg==1.2.3: demo/src/other.py:top", tmp_path)
    assert msg and "no file demo/src/other.py in demo_pkg-1.2.3-py3-none-any.whl" in msg


def test_wheel_uses_the_cache_and_reports_a_failed_download(tmp_path, monkeypatch):
    whl = _wheel(tmp_path, dist="Keras", version="2.3.1")  # pip names keras 2.x wheels "Keras-..."
    assert sources.wheel("keras", "2.3.1", tmp_path) == whl

    def fake_run(cmd, **kw):
        assert cmd[1:5] == ["-m", "pip", "download", "--no-deps"] and "--only-binary=:all:" in cmd
        assert "demo-pkg==9.9" in cmd
        return type("P", (), {"returncode": 1, "stdout": "", "stderr": "No matching distribution"})()

    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    with pytest.raises(RuntimeError, match="(?s)could not download demo-pkg==9.9.*No matching distribution"):
        sources.wheel("demo-pkg", "9.9", tmp_path)


def test_wheel_downloads_once_into_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        _wheel(Path(cmd[cmd.index("-d") + 1]), version="2.0")
        return type("P", (), {"returncode": 0, "stdout": "", "stderr": ""})()

    monkeypatch.setattr(sources.subprocess, "run", fake_run)
    first = sources.wheel("demo-pkg", "2.0", tmp_path / "cache")
    assert first == tmp_path / "cache" / "demo_pkg-2.0-py3-none-any.whl" and first.is_file()
    assert sources.wheel("demo-pkg", "2.0", tmp_path / "cache") == first
    assert len(calls) == 1
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [first.name]  # no download folder left


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_WHEEL_CACHE", str(tmp_path))
    assert sources.cache_dir() == tmp_path
    monkeypatch.delenv("HARNESS_WHEEL_CACHE")
    assert sources.cache_dir() == Path.home() / ".cache" / "keras-loss-harness" / "wheels"


def test_defines_installed_reads_an_installed_distribution_at_its_version():
    version = sources.installed_version("pytest")  # pytest is installed wherever these tests run
    assert version == pytest.__version__
    assert sources.defines_installed(f"pytest=={version}: _pytest/outcomes.py:OutcomeException.__init__") is None
    assert "no def nothing_here" in sources.defines_installed(f"pytest=={version}: _pytest/outcomes.py:nothing_here")
    with pytest.raises(LookupError, match="not 0.0.1"):
        sources.defines_installed("pytest==0.0.1: _pytest/outcomes.py:OutcomeException.__init__")


def test_check_installed_counts_checked_failed_and_elsewhere():
    version = sources.installed_version("pytest")
    out = io.StringIO()
    items = [("a", f"pytest=={version}: _pytest/outcomes.py:OutcomeException.__init__"),
             ("b", f"pytest=={version}: _pytest/outcomes.py:nothing_here"),
             ("c", "pytest==0.0.1: _pytest/outcomes.py:OutcomeException.__init__"),
             ("d", "not a source")]
    assert sources.check_installed(items, out) == (2, 2, 1)
    assert "FAIL b:" in out.getvalue() and "FAIL d:" in out.getvalue()
