"""The training budget chosen from the data when the config says auto."""

import pytest
from omegaconf import OmegaConf

from social_xlstm.errors import InputError
from social_xlstm.training.budget import batches_per_epoch, resolve_budget
from social_xlstm.training.config import compose_config


def trainer(**values):
    return OmegaConf.create(
        {"max_epochs": "auto", "early_stopping_patience": "auto", "limit_train_batches": None, **values}
    )


def test_auto_aims_at_3000_updates_and_a_tenth_of_them_of_patience():
    t = trainer()
    note = resolve_budget(t, train_windows=1_400, batch_size=8)  # Los-loop: 175 updates an epoch
    assert (t.max_epochs, t.early_stopping_patience) == (18, 5)  # ceil(3000 / 175); ceil(300 / 175) < 5
    assert "18 epochs of 175 batches (3,150 updates)" in note


def test_small_data_gets_many_short_epochs_and_more_patience():
    t = trainer()
    resolve_budget(t, train_windows=500, batch_size=32)  # a month of hourly counts: 15 updates an epoch
    assert (t.max_epochs, t.early_stopping_patience) == (200, 20)


def test_big_data_still_trains_ten_epochs_and_numbers_are_kept():
    t = trainer(early_stopping_patience=7)
    resolve_budget(t, train_windows=1_000_000, batch_size=32)
    assert (t.max_epochs, t.early_stopping_patience) == (10, 7)
    fixed = trainer(max_epochs=4, early_stopping_patience=2)
    assert resolve_budget(fixed, train_windows=100, batch_size=8) is None and fixed.max_epochs == 4


def test_patience_longer_than_the_epochs_set_is_said_to_leave_them_all():
    """`trainer.max_epochs=2` printed "early stopping after 28 epochs" and nothing else."""
    t = trainer(max_epochs=2)
    note = resolve_budget(t, train_windows=380, batch_size=32)  # 11 updates an epoch
    assert t.early_stopping_patience == 28
    assert note == (
        "training budget: 2 epochs of 11 batches (22 updates), as set, all of them (early stopping's patience, "
        "auto, from 380 training windows, is 28 epochs); the epoch with the best validation error is kept"
    )
    assert resolve_budget(trainer(max_epochs=50), train_windows=380, batch_size=32) == (
        "training budget: 50 epochs of 11 batches (550 updates), as set; early stopping after 28 epochs without "
        "a better validation error (auto, from 380 training windows)"
    )
    both = resolve_budget(trainer(), train_windows=32, batch_size=32)  # both auto: 300 and 300
    assert both.startswith("training budget (auto, from 32 training windows): 300 epochs of 1 batch (300 updates)")
    assert "set" not in both and "early stopping" not in both  # a patience of 300 for 300 epochs
    one = resolve_budget(trainer(max_epochs=1), train_windows=32, batch_size=32)
    assert one.startswith("training budget: 1 epoch of 1 batch (1 update), as set")  # "1 epochs" read as a slip


def test_limit_train_batches_caps_an_epoch_as_lightning_does():
    assert batches_per_epoch(10_000, 32, 100) == 100
    assert batches_per_epoch(10_000, 32, 0.5) == 156
    assert batches_per_epoch(10, 32, None) == 1


@pytest.mark.parametrize("value", ["abc", 0, -3, 2.5, True])
def test_anything_but_a_positive_whole_number_or_auto_is_refused(value):
    with pytest.raises(InputError, match="trainer.max_epochs: expected a positive whole number or 'auto'"):
        compose_config([f"trainer.max_epochs={value}"])
