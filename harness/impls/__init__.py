"""The implementation registry: which Keras implementations the harness can run. Pure data.

Nothing here imports a framework: a process imports exactly one adapter (DESIGN.md, "One
implementation per process"), chosen by name through this table, after setting `env`.

An adapter module (`Implementation.module`) has this module-level contract:

    versions() -> dict[str, str]   exact installed versions of VERSION_KEYS ("" when absent)
    run(case: Case) -> ImplResult  never raises for a problem with the case: a path the
                                   implementation lacks is status "unsupported" with a reason,
                                   an exception is status "error" with its type and message

Selection is by environment variable only, set before the adapter is imported: `env` of the
entry, plus `HARNESS_IMPL=<name>` which the worker sets for every implementation. A module
serving several implementations (harness.impls.tf_keras serves "tf_keras" and "tf.keras")
reads HARNESS_IMPL at import time, as Keras 3 reads KERAS_BACKEND.
"""

from __future__ import annotations

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
    family: str  # "keras3" | "keras2-eager" | "keras2-graph" | "keras2.3.1"
    env: Mapping[str, str] = field(default_factory=dict)  # set before importing the adapter
    # The import probe: these distributions must be installed, each with a version matching the
    # PEP 440-style specifier ("" = any version); then `probe_import` must import cleanly.
    requires: Mapping[str, str] = field(default_factory=dict)
    probe_import: str = ""
    description: str = ""

    def environment(self) -> dict[str, str]:
        """All variables to set before importing the adapter."""
        return {**COMMON_ENV, **self.env, IMPL_ENV_VAR: self.name}


def _keras3(backend: str, extra: str, requires: Mapping[str, str]) -> Implementation:
    return Implementation(
        name=f"keras3-{backend}",
        module="harness.impls.keras3",
        family="keras3",
        env={"KERAS_BACKEND": backend},
        requires={"keras": ">=3", **requires},
        probe_import="keras",
        description=f"Keras 3 on the {backend} backend: Trainer.compute_loss -> CompileLoss "
        f"+ _aggregate_additional_loss(self.losses). {extra}",
    )


IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.name: impl
    for impl in [
        _keras3("tensorflow", "Modes: eager, compiled (tf.function), jit (XLA).", {"tensorflow": ""}),
        _keras3("jax", "Modes: eager, compiled (always jax.jit).", {"jax": ""}),
        _keras3("torch", "Modes: eager, compiled (no torch.compile; jit unsupported).", {"torch": ""}),
        _keras3("numpy", "Evaluation paths only; the numpy backend cannot train.", {}),
        Implementation(
            name="tf_keras",
            module="harness.impls.tf_keras",
            family="keras2-eager",
            env={"TF_USE_LEGACY_KERAS": "1"},
            requires={"tf_keras": "", "tensorflow": ""},
            probe_import="tf_keras",
            description="The tf-keras package (Keras 2): train_step/test_step -> "
            "compile_utils.LossesContainer; modes eager, function (tf.function), jit (XLA).",
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
        ),
    ]
}


def get(name: str) -> Implementation:
    """The entry for `name`; KeyError lists the known names."""
    try:
        return IMPLEMENTATIONS[name]
    except KeyError:
        raise KeyError(f"unknown implementation {name!r}; known: {', '.join(IMPLEMENTATIONS)}") from None
