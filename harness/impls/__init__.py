"""The implementation registry: which Keras implementations the harness can run. Pure data.

Nothing here imports a framework: a process imports exactly one adapter (DESIGN.md, "One
implementation per process"), chosen by name through this table, after setting `env`.

An adapter module (`Implementation.module`) has this module-level contract:

    versions() -> dict[str, str]   exact installed versions of VERSION_KEYS ("" when absent)
    run(case: Case) -> ImplResult  never raises for a problem with the case: a path the
                                   implementation lacks is status "unsupported" with a reason,
                                   an exception is status "error" with its type and message

`unmet_requirements(impl)` checks `requires` from distribution metadata (no import); the worker
checks it before importing the adapter, so a Keras 2 `keras` is never taken for Keras 3.

Selection is by environment variable only, set before the adapter is imported: `env` of the
entry, plus `HARNESS_IMPL=<name>` which the worker sets for every implementation. A module
serving several implementations (harness.impls.tf_keras serves "tf_keras" and "tf.keras")
reads HARNESS_IMPL at import time, as Keras 3 reads KERAS_BACKEND.

This table is the one record of each implementation: every other per-implementation list reads
it (the reproducer's preamble and install line in harness/report/repro.py, `bench --impl all`)
or is checked against it by tests/test_implementation_record.py (tox.ini's HARNESS_IMPLS of
every environment, the semantics query of harness/reference/semantics.py, the modes recorded).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
from dataclasses import dataclass, field
from typing import Mapping

IMPL_ENV_VAR = "HARNESS_IMPL"

VERSION_KEYS = ("python", "numpy", "tensorflow", "keras", "tf_keras", "jax", "torch", "backend")

# Set for every implementation: TensorFlow's C++ logging goes quiet (it writes to fd 2 anyway).
COMMON_ENV: Mapping[str, str] = {"TF_CPP_MIN_LOG_LEVEL": "3"}


@dataclass(frozen=True)
class Implementation:
    name: str
    module: str  # the adapter module (dotted path), imported only in the implementation's own process
    family: str  # "keras3" | "keras2-eager" | "keras2-graph" | "keras2.3.1" | "distributed"
    env: Mapping[str, str] = field(default_factory=dict)  # set before importing the adapter
    # The import probe: these distributions must be installed, each with a version matching the
    # PEP 440-style specifier ("" = any version); then `probe_import` must import cleanly.
    requires: Mapping[str, str] = field(default_factory=dict)
    probe_import: str = ""
    description: str = ""
    # The modes its paths run in (results' `mode`), unsupported ones included; the adapter's
    # Flavor holds what each mode passes to compile().
    modes: tuple[str, ...] = ()
    # How its semantics are selected (harness/reference/semantics.py IMPLEMENTATION_QUERIES):
    # the rows of `lineage` narrowed by `scope` (backend / mode / strategy), at the release its
    # header's versions[version_key] names, or at `read` (the release read) when it names none.
    lineage: str = ""  # "keras3" | "tf_keras" | "tf.keras" | "keras" (semantics.LINEAGES)
    scope: Mapping[str, str] = field(default_factory=dict)
    version_key: str = ""
    read: str = ""
    # The tox environments that run it, in tox's brace syntax (tox.ini sets HARNESS_IMPLS of each).
    tox_envs: str = ""
    # The standalone reproducer (harness/report/repro.py): the lines that import Keras as this
    # implementation does ("{shims}" stands for harness/impls/keras231_shims.py's source), and
    # what to install, after "Needs only:". "" = no reproducer: replay the case instead.
    repro_preamble: str = ""
    repro_install: str = ""
    bench: bool = False  # one of `python -m harness bench --impl all`

    def semantics_query(self) -> dict[str, str]:
        """The query of harness/reference/semantics.py that gives this implementation's semantics."""
        return {"lineage": self.lineage, **self.scope, "version_key": self.version_key, "read": self.read}

    def environment(self) -> dict[str, str]:
        """All variables to set before importing the adapter."""
        return {**COMMON_ENV, **self.env, IMPL_ENV_VAR: self.name}


# JAX truncates float64 to float32 (with a warning) unless x64 is enabled before jax is
# imported; float64 cases need it. Keras passes explicit dtypes everywhere, so float32 cases
# compute in float32 either way.
_BACKEND_ENV = {"jax": {"JAX_ENABLE_X64": "1"}}


_TF_KERAS_INSTALL = "tensorflow and tf-keras (same minor version)"
_TF_KERAS_PREAMBLE = """\
import os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tf_keras as keras
"""
_TF_KERAS_GRAPH_PREAMBLE = """\
import os
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()  # Keras 2 graph mode: training_v1._prepare_total_loss
import tf_keras as keras
"""


def _keras3(backend: str, extra: str, requires: Mapping[str, str], modes: tuple[str, ...], tox_envs: str,
            bench: bool) -> Implementation:
    return Implementation(
        name=f"keras3-{backend}",
        module="harness.impls.keras3",
        family="keras3",
        env={"KERAS_BACKEND": backend, **_BACKEND_ENV.get(backend, {})},
        requires={"keras": ">=3", **requires},
        probe_import="keras",
        description=f"Keras 3 on the {backend} backend: Trainer.compute_loss -> CompileLoss "
        f"+ _aggregate_additional_loss(self.losses). {extra}",
        modes=modes,
        lineage="keras3", scope={"backend": backend}, version_key="keras", read="3.15.1",
        tox_envs=tox_envs,
        repro_preamble=f"""\
import os
os.environ["KERAS_BACKEND"] = {backend!r}  # must be set before keras is imported
import numpy as np
import keras
""",
        repro_install=f"keras>=3 with the {backend} backend installed",
        bench=bench,
    )


IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl
    for impl in [
        _keras3("tensorflow", "Modes: eager, compiled (tf.function), jit (XLA).", {"tensorflow": ""},
                ("eager", "compiled", "jit"), "keras3{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}-tensorflow, keras3nightly-tensorflow", bench=True),
        _keras3("jax", "Modes: eager, compiled (always jax.jit).", {"jax": ""},
                ("eager", "compiled"), "keras3{0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15}-jax, keras3nightly-jax", bench=True),
        _keras3("torch", "Modes: eager, compiled (no torch.compile; jit unsupported).", {"torch": ""},
                ("eager", "compiled", "jit"), "keras315-torch, keras3nightly-torch", bench=True),
        _keras3("numpy", "Evaluation paths only; the numpy backend cannot train.", {},
                ("eager", "compiled"), "keras315-numpy", bench=False),
        Implementation(
            name="tf_keras",
            module="harness.impls.tf_keras",
            family="keras2-eager",
            env={"TF_USE_LEGACY_KERAS": "1"},
            requires={"tf_keras": "", "tensorflow": ""},
            probe_import="tf_keras",
            description="The tf-keras package (Keras 2): train_step/test_step -> "
            "compile_utils.LossesContainer; modes eager, function (tf.function), jit (XLA).",
            modes=("eager", "function", "jit"),
            lineage="tf_keras", version_key="tf_keras", read="2.21.0",
            tox_envs="tfkeras2{14,15,16,17,18,19,20,21}",
            repro_preamble=_TF_KERAS_PREAMBLE, repro_install=_TF_KERAS_INSTALL,
            bench=True,
        ),
        Implementation(
            name="tf.keras",
            module="harness.impls.tf_keras",
            family="keras2-eager",
            env={},
            requires={"tensorflow": ">=2.12,<2.16"},
            probe_import="tensorflow.keras",
            description="tf.keras bundled with TensorFlow 2.12-2.15 (Keras 2.12-2.15); same adapter as "
            "tf_keras.",
            modes=("eager", "function", "jit"),
            lineage="tf.keras", version_key="keras", read="2.15.0",
            tox_envs="tf21{2,3,4,5}",
            repro_preamble="""\
import numpy as np
import tensorflow as tf
keras = tf.keras  # TensorFlow 2.12-2.15: the bundled Keras 2
""",
            repro_install="tensorflow>=2.12,<2.16",
        ),
        Implementation(
            name="tf_keras-graph",
            module="harness.impls.keras2_graph",
            family="keras2-graph",
            env={"TF_USE_LEGACY_KERAS": "1"},
            requires={"tf_keras": "", "tensorflow": ""},
            probe_import="tf_keras",
            description="tf-keras in TF1 graph mode (disable_eager_execution): "
            "training_v1._prepare_total_loss.",
            modes=("graph",),
            lineage="tf_keras", scope={"mode": "graph"}, version_key="tf_keras", read="2.21.0",
            tox_envs="tfkeras2{14,15,16,17,18,19,20,21}",
            repro_preamble=_TF_KERAS_GRAPH_PREAMBLE, repro_install=_TF_KERAS_INSTALL,
        ),
        Implementation(
            name="tf.keras-graph",
            module="harness.impls.keras2_graph",
            family="keras2-graph",
            env={},
            requires={"tensorflow": ">=2.12,<2.16"},
            probe_import="tensorflow.keras",
            description="tf.keras of TensorFlow 2.12-2.15 in TF1 graph mode: "
            "keras/engine/training_v1._prepare_total_loss.",
            modes=("graph",),
            lineage="tf.keras", scope={"mode": "graph"}, version_key="keras", read="2.15.0",
            tox_envs="tf21{2,3,4,5}",
            repro_preamble="""\
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()  # Keras 2 graph mode: training_v1._prepare_total_loss
keras = tf.keras
""",
            repro_install="tensorflow>=2.12,<2.16",
        ),
        Implementation(
            name="keras2.3.1",
            module="harness.impls.keras231",
            family="keras2.3.1",
            env={},
            requires={"keras": "==2.3.1", "tensorflow": ""},
            probe_import="harness.impls.keras231",
            description="Standalone keras 2.3.1 on TensorFlow in graph mode: "
            "keras/engine/training.py _prepare_total_loss.",
            modes=("graph",),
            lineage="keras", version_key="keras", read="2.3.1",
            tox_envs="keras231",
            repro_preamble="""\
import numpy as np
{shims}
apply()  # sets TF_USE_LEGACY_KERAS=1 and disables eager execution (keras 2.3.1 builds TF1 graphs)
import keras  # standalone keras==2.3.1
apply_after_import(keras)
""",
            repro_install="keras==2.3.1 and tensorflow (+ tf-keras on TF >= 2.16; the shims below restore "
            "removed names)",
        ),
        Implementation(
            name="keras2.2.4",
            module="harness.impls.keras224",
            family="keras2.2.4",
            env={},
            requires={"keras": "==2.2.4", "tensorflow": ""},
            probe_import="harness.impls.keras224",
            description="Standalone keras 2.2.4 on TensorFlow in graph mode (tensorflow aliased to "
            "tf.compat.v1 while keras imports): the total is assembled inline in Model.compile with "
            "keras/engine/training_utils.py weighted_masked_objective.",
            modes=("graph",),
            lineage="keras", version_key="keras", read="2.2.4",
            tox_envs="keras224",
        ),
    ]
}


# Distributed implementations (issue 10; harness/impls/distributed.py): the same Keras under a
# distribution strategy over 2 replicas on this one CPU (TensorFlow: 2 logical CPUs made by the
# adapter at import; JAX: 2 host devices forced by XLA_FLAGS before jax is imported). No
# reproducer: a run needs the strategy set-up of harness/impls/distributed.py.
_DISTRIBUTED_DESCRIPTION = ("Runs under {strategy} over 2 replicas: paths report the loss as the strategy "
                            "reports it (mode {mode} only); distribution: each replica's rows and the loss it "
                            "differentiates; gradients: what the optimizer receives.")
for _impl in (
    Implementation(
        name="tf_keras-mirrored", module="harness.impls.distributed", family="distributed",
        env={"TF_USE_LEGACY_KERAS": "1"}, requires={"tf_keras": "", "tensorflow": ""}, probe_import="tf_keras",
        description="tf_keras (Keras 2) " + _DISTRIBUTED_DESCRIPTION.format(
            strategy="tf.distribute.MirroredStrategy", mode="function"),
        modes=("function",),
        lineage="tf_keras", scope={"strategy": "mirrored"}, version_key="tf_keras", read="2.21.0",
        tox_envs="tfkeras221"),
    Implementation(
        name="keras3-tensorflow-mirrored", module="harness.impls.distributed", family="distributed",
        env={"KERAS_BACKEND": "tensorflow"}, requires={"keras": ">=3", "tensorflow": ""}, probe_import="keras",
        description="Keras 3 on tensorflow " + _DISTRIBUTED_DESCRIPTION.format(
            strategy="tf.distribute.MirroredStrategy", mode="compiled"),
        modes=("compiled",),
        lineage="keras3", scope={"backend": "tensorflow", "strategy": "mirrored"}, version_key="keras",
        read="3.15.1", tox_envs="keras315-tensorflow"),
    Implementation(
        name="keras3-jax-dataparallel", module="harness.impls.distributed", family="distributed",
        env={"KERAS_BACKEND": "jax", "JAX_ENABLE_X64": "1",
             "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
        requires={"keras": ">=3", "jax": ""}, probe_import="keras",
        description="Keras 3 on jax " + _DISTRIBUTED_DESCRIPTION.format(
            strategy="keras.distribution.DataParallel", mode="compiled"),
        modes=("compiled",),
        lineage="keras3", scope={"backend": "jax", "strategy": "dataparallel"}, version_key="keras",
        read="3.15.1", tox_envs="keras315-jax"),
):
    IMPLEMENTATIONS[_impl.name] = _impl


# Test-only implementations (harness/impls/faulty.py, for tests/test_faults.py): no framework,
# faults on request. Listed only when HARNESS_TEST_IMPLS=1, which the tests set for themselves
# and for the workers they start (the worker reads this table in its own process).
TEST_IMPLS_ENV_VAR = "HARNESS_TEST_IMPLS"
if os.environ.get(TEST_IMPLS_ENV_VAR) == "1":
    for _name, _env in (("test-faulty", {}), ("test-steady", {}),
                        ("test-import-error", {"HARNESS_FAULTY_IMPORT": "raise"}),
                        ("test-import-hang", {"HARNESS_FAULTY_IMPORT": "hang"})):
        IMPLEMENTATIONS[_name] = Implementation(
            name=_name, module="harness.impls.faulty", family="test", env=_env,
            description="test-only (harness/impls/faulty.py): the reference's totals, faults on request")


def get(name: str) -> Implementation:
    """The entry for `name`; KeyError lists the known names."""
    try:
        return IMPLEMENTATIONS[name]
    except KeyError:
        raise KeyError(f"unknown implementation {name!r}; known: {', '.join(IMPLEMENTATIONS)}") from None


# --------------------------------------------------------------------------------------
# The requirement check (distribution metadata only: nothing is imported)
# --------------------------------------------------------------------------------------

# Distribution names to try for a requirement key (TensorFlow ships as tensorflow-cpu too).
# A requirement key's distributions, the first installed one counting: a nightly build first (where
# tensorflow pulls in a `keras` release beside keras-nightly, tox.ini reinstalls the nightly's files).
_DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-intel"),
                  "tf_keras": ("tf-keras-nightly", "tf-keras"), "keras": ("keras-nightly", "keras")}


def installed_version(requirement: str) -> str:
    """The installed version of a requirement key ("" when not installed)."""
    for dist in _DISTRIBUTIONS.get(requirement, (requirement,)):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def _release(version: str) -> tuple[int, ...]:
    """(2, 13, 0) from '2.13.0+cpu' or '2.15.0rc1': the leading release numbers only."""
    match = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def _satisfies(version: str, specifier: str) -> bool:
    """A small subset of PEP 440 specifiers: comma-separated ==, !=, >=, <=, >, < clauses."""
    have = _release(version)
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        op, want_text = re.match(r"(==|!=|>=|<=|>|<)\s*(.+)", clause).groups()  # type: ignore[union-attr]
        want = _release(want_text)
        width = max(len(have), len(want))
        a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        ok = {"==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]
        if not ok:
            return False
    return True


def unmet_requirements(impl: Implementation) -> list[str]:
    """Why `impl` cannot run in this Python (empty when every required distribution fits)."""
    problems = []
    for name, specifier in impl.requires.items():
        version = installed_version(name)
        if not version:
            problems.append(f"{name}{specifier} is not installed")
        elif specifier and not _satisfies(version, specifier):
            problems.append(f"{name}{specifier} is needed, {version} is installed")
    return problems
