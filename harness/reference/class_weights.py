"""class_weight (fit and train_on_batch only): the sample weights each lineage makes of it.

`weighted(case, path, rules)` returns the case as the train step sees it on `path`: on "fit" and
"train_on_batch" its one output's sample weight is the class weights of its targets (rule
class_weight_lookup), combined with the sample weight the case gives (rule
class_weight_with_sample_weight); on every other path (test_on_batch, evaluate, compute_loss take
no class_weight) the case unchanged. With the notes of the errors the lineage raises instead.

The class of a sample (every lineage): a target of rank 2 with more than one column is one-hot,
its class the argmax of the row; otherwise the value itself (a (batch, 1) column squeezed). Keras
3 and tf-keras round that value (np.round / tf.round: half to even); keras 2.x and training_v1 look
the raw value up (1.0 finds the key 1, 0.7 finds nothing).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from harness.reference import rules as rules_mod
from harness.reference.errors import ErrorSite, Note
from harness.results import TRAIN_PATHS  # the calls that take class_weight=
from harness.spec import Case

rules_mod.check_reads(__file__)  # every rule and alternative named in this module exists

_KERAS3_TRAINERS = tuple(f"keras/src/backend/{b}/trainer.py" for b in ("tensorflow", "jax", "torch"))
_STANDARDIZE_WEIGHTS = ("keras/engine/training_utils.py", "tf_keras/src/engine/training_utils_v1.py",
                        "keras/src/engine/training_utils_v1.py")
_MAP_FN = ("tf_keras/src/engine/data_adapter.py", "keras/src/engine/data_adapter.py")


def classes(target: np.ndarray) -> np.ndarray:
    """The class value of each sample, before any rounding (float64, shape (batch,))."""
    y = np.asarray(target, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1).astype(np.float64)
    return y.reshape(y.shape[0])


def weighted(case: Case, path: str, rules: Mapping[str, str]) -> tuple[Case, list[Note]]:
    """(the case whose one output carries the train step's sample weight, the errors raised)."""
    if case.class_weight is None or path not in TRAIN_PATHS:
        return case, []
    out = case.outputs[0]
    cw = dict(case.class_weight)
    values = classes(out.target)
    notes: list[Note] = []
    if out.sample_weight is not None and rules_mod.chooses(rules, "class_weight_with_sample_weight", "error"):
        notes.append(Note("sample_weight and class_weight both given: ValueError \"You cannot `class_weight` and "
                          "`sample_weight` at the same time\" (keras/src/trainers/data_adapters/array_data_adapter.py:"
                          "ArrayDataAdapter.__init__; train_on_batch: keras/src/backend/*/trainer.py)",
                          ErrorSite(("ValueError",), ("keras/src/trainers/data_adapters/array_data_adapter.py",)
                                    + _KERAS3_TRAINERS, "train_on_batch", own_check=True)))
    if out.sample_weight is not None and rules_mod.chooses(rules, "class_weight_with_sample_weight", "reshape_error"):
        notes.append(Note("sample_weight and class_weight in fit: the dataset's map function reshapes the weights to a "
                          "partially known shape, ValueError 'Cannot convert a partially known TensorShape' "
                          "(tf_keras/src/engine/data_adapter.py:_make_class_weight_map_fn)",
                          ErrorSite(("ValueError",), _MAP_FN, "_class_weights_map_fn")))
    if rules_mod.chooses(rules, "class_weight_lookup", "get_or_one"):
        ids = np.round(values).astype(np.int64)
        per_sample = np.array([float(cw.get(int(i), 1.0)) for i in ids])
    elif rules_mod.chooses(rules, "class_weight_lookup", "contiguous_gather"):
        ids = np.round(values).astype(np.int64)
        if sorted(cw) != list(range(len(cw))):
            notes.append(Note(f"class_weight ids {sorted(cw)}: ValueError 'Expected `class_weight` to be a dict with "
                              "keys from 0 to one less than the number of classes' (tf_keras/src/engine/"
                              "data_adapter.py:_make_class_weight_map_fn)",
                              ErrorSite(("ValueError",), _MAP_FN, "_make_class_weight_map_fn", own_check=True)))
            return case, notes
        outside = sorted({int(i) for i in ids if not 0 <= i < len(cw)})
        if outside:
            # tf.gather on CPU refuses an index outside the weight vector, inside the dataset's map;
            # under MirroredStrategy train_on_batch's distributed iterator reports it as the end of its
            # one-element sequence, OutOfRangeError (observed on tf-keras 2.21, drawn cases
            # 7f4ff8a9cf038e78, 8b667f72f78bfe9f; not read)
            notes.append(Note(f"class ids {outside} beyond the {len(cw)} class weights: InvalidArgumentError from "
                              "tf.gather (tf_keras/src/engine/data_adapter.py:_make_class_weight_map_fn)",
                              ErrorSite(("InvalidArgumentError", "OutOfRangeError"), _MAP_FN, "_class_weights_map_fn")))
            return case, notes
        per_sample = np.array([float(cw[int(i)]) for i in ids])
    else:  # exact_keys
        missing = sorted({float(v) for v in values if v not in cw})
        if missing:
            notes.append(Note(f"classes {missing} not among the class_weight keys: ValueError '`class_weight` must "
                              "contain all classes in the data' (keras/engine/training_utils.py:standardize_weights; "
                              "training_v1: tf_keras/src/engine/training_utils_v1.py)",
                              ErrorSite(("ValueError",), _STANDARDIZE_WEIGHTS, "standardize_weights", own_check=True)))
            return case, notes
        per_sample = np.array([float(cw[v]) for v in values])
    if out.sample_weight is not None:
        if rules_mod.chooses(rules, "class_weight_with_sample_weight", "ignored"):
            return case, notes
        per_sample = np.asarray(out.sample_weight, dtype=np.float64) * per_sample
    form = "single" if case.sample_weight_form == "omitted" else case.sample_weight_form
    return dataclasses.replace(case, outputs=(dataclasses.replace(out, sample_weight=per_sample),),
                               sample_weight_form=form), notes
