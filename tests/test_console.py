"""The training progress shown on the console: a bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import io

from rich.console import Console

from gnnrec.flows.console import TrainingProgress


def test_without_a_terminal_each_epoch_is_one_plain_line_with_loss_elapsed_and_time_left():
    out = io.StringIO()
    with TrainingProgress("lightgcn holdout", 4, Console(file=out, force_terminal=False, width=200)) as progress:
        progress.advance(1, 0.5, None)
        progress.advance(2, 0.25, 0.1234, epochs=3)  # the trainer may shorten its plan (a smaller data set)
    lines = out.getvalue().splitlines()
    assert [line.split(" elapsed")[0] for line in lines] == [
        "lightgcn holdout: epoch 1/4 loss 0.50000",
        "lightgcn holdout: epoch 2/3 loss 0.25000 recall@20 0.1234",
    ]
    assert all(" left ~" in line for line in lines)


def test_on_a_terminal_a_progress_bar_shows_the_epoch_count_and_loss():
    out = io.StringIO()
    with TrainingProgress("mf final", 5, Console(file=out, force_terminal=True, width=120)) as progress:
        progress.advance(5, 0.125)
    shown = out.getvalue()
    assert "mf final" in shown and "5/5" in shown and "loss 0.12500" in shown
