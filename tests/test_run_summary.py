"""`python -m harness run` prints one row per implementation and verdict kind: gradient verdicts
of every weight share a row, so a model with 30 weights does not print 60 rows."""

import pytest

from harness.commands.run import summary_key


@pytest.mark.parametrize("key, row", [
    ("test_on_batch/eager", "test_on_batch/eager"),
    ("gradient/loss", "gradient/loss"),
    ("gradient/*", "gradient/*"),
    ("gradient/hidden/kernel", "gradient/<weight>"),
    ("gradient/rnn/recurrent_kernel/sgd_update", "gradient/<weight>/sgd_update"),
    ("distribution/gradient/hidden/bias", "distribution/gradient/<weight>"),
    ("distribution/gradient/loss", "distribution/gradient/loss"),
    ("distribution/split", "distribution/split"),
    ("distribution/train_on_batch/compiled", "distribution/train_on_batch/compiled"),
])
def test_summary_rows(key, row):
    assert summary_key(key) == row
