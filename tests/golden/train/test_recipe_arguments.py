"""The bench scripts' shared recipe options map onto TrainSettings field by field."""
import argparse

import pytest

from binaryvit.errors import ConfigError
from binaryvit.golden.train.recipe_arguments import (add_recipe_arguments, describe_recipe,
                                                    recipe_settings)
from binaryvit.golden.train.training import TrainSettings


def parse(argv):
    parser = argparse.ArgumentParser()
    add_recipe_arguments(parser)
    return parser.parse_args(argv)


def test_no_options_give_the_default_recipe():
    assert recipe_settings(parse([])) == TrainSettings()


def test_each_option_sets_its_field_and_fixed_fields_override():
    args = parse(["--epochs", "7", "--teacher-epochs", "3", "--batch-size", "16", "--lr", "1e-3",
                  "--student-lr", "5e-3", "--warmup-epochs", "1", "--max-shift", "2",
                  "--student-max-shift", "1", "--ema-decay", "0", "--student-init", "teacher",
                  "--temperature", "2", "--label-weight", "0.25"])
    settings = recipe_settings(args, seed=4, epochs=2, progress=False)
    assert settings == TrainSettings(epochs=2, teacher_epochs=3, batch_size=16, lr=1e-3,
                                     student_lr=5e-3, warmup_epochs=1, max_shift=2,
                                     student_max_shift=1, ema_decay=0.0, student_init="teacher",
                                     temperature=2.0, label_weight=0.25, seed=4, progress=False)
    assert describe_recipe(settings) == (
        "teacher 3 + student 2 epochs, batch 16, lr 0.001 (student 0.005), warm-up 1, "
        "shifts ±2 (student ±1), EMA 0, student init teacher, KD temperature 2, "
        "label weight 0.25")


def test_a_bad_value_is_refused_by_the_settings():
    with pytest.raises(ConfigError, match="warmup_epochs must be >= 0"):
        recipe_settings(parse(["--warmup-epochs", "-1"]))
