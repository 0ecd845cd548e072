"""The checkers of notebook 12 (FAQ exercises): each accepts its reference solution, says
"not attempted" for a blank answer, and rejects typical wrong answers with feedback that names
the mistake. The last tests run every reference solution through its checker."""

import functools
import math
import warnings

import keras
import numpy as np
import pytest

from resnet_keras.course.exercises import nb12_faq as nb
from resnet_keras.course.exercises.solutions import nb12_faq as solutions
from resnet_keras.training import LRFinderResult, cosine_schedule, paper_schedule


def status_and_message(verdict):
    return verdict.status, verdict.message


def rejected(verdict, *keywords):
    assert verdict.status == "incorrect", verdict
    for keyword in keywords:
        assert keyword.lower() in verdict.message.lower(), verdict.message
    return verdict


# --- not attempted ----------------------------------------------------------------------------
CHECKERS = [
    nb.check_gradient_ratio,
    nb.check_depth_doubling,
    nb.check_resnet44_cost,
    nb.check_overfitting,
    nb.check_learning_rate,
    nb.check_lr_schedule,
]


@pytest.mark.parametrize("check", CHECKERS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("blank", [None, ...], ids=["None", "Ellipsis"])
def test_a_blank_answer_is_not_attempted(check, blank, capsys):
    verdict = check(blank)
    assert verdict.status == "not attempted"
    assert "not attempted yet" in capsys.readouterr().out
    assert check.title.startswith(("1", "2", "3"))


def test_unchanged_stubs_and_blank_dicts_are_not_attempted():
    assert nb.check_overfitting(lambda regularize: None, quiet=True).status == "not attempted"
    blank = {"prediction": None, "ratio_110": None}
    assert nb.check_depth_doubling(blank, quiet=True).status == "not attempted"
    assert nb.check_resnet44_cost({"params": None, "macs": None}, quiet=True).status == (
        "not attempted"
    )


# --- the article's three questions and 1a ------------------------------------------------------
def test_the_chain_rule_question_names_adding_and_counting_mistakes():
    rejected(nb.chain_rule(10, quiet=True), "multiplies")
    rejected(nb.chain_rule(0.5**19, quiet=True), "19 factors")
    rejected(nb.chain_rule(0.01, quiet=True), "too high")


# --- 1b, 1c: gradients with and without shortcuts ---------------------------------------------
@pytest.fixture(scope="module")
def measured():
    return nb.measure_gradient_ratio(nb.DEPTH, True), nb.measure_gradient_ratio(nb.DEPTH, False)


def test_the_measured_facts_hold(measured):
    resnet, plain = measured
    # With BN, plain-56's gradients grow toward the input; ResNet-56's stay within ~10x.
    assert plain.ratio > 300
    assert 0.1 < resnet.ratio < 10 and resnet.spread < 100
    assert resnet.norms[0][0].startswith("stem_conv") and resnet.norms[-1][0].startswith("logits")


def test_gradient_ratio_accepts_the_measured_number_rounded(measured):
    resnet, _ = measured
    verdict = nb.check_gradient_ratio(float(f"{resnet.ratio:.3g}"), quiet=True)
    assert verdict.status == "correct", verdict


def test_gradient_ratio_rejects_typical_mistakes(measured):
    resnet, plain = measured
    rejected(nb.check_gradient_ratio(1 / resnet.ratio, quiet=True), "last / first")
    rejected(nb.check_gradient_ratio(resnet.spread, quiet=True), "largest norm")
    rejected(nb.check_gradient_ratio(plain.ratio, quiet=True), "plain-56")
    rejected(nb.check_gradient_ratio(resnet.ratio * 1.5, quiet=True), "set_determinism(0)")
    rejected(nb.check_gradient_ratio(list(resnet.norms), quiet=True), "one number")
    rejected(nb.check_gradient_ratio("0.4", quiet=True), "must be a number")


@pytest.fixture(scope="module")
def deep():
    return nb.measure_gradient_ratio(nb.DEEP_DEPTH, True), nb.measure_gradient_ratio(
        nb.DEEP_DEPTH, False
    )


def test_doubling_the_depth_keeps_a_resnets_gradient_on_one_scale(measured, deep):
    (resnet, _), (resnet_110, plain_110) = measured, deep
    # The fact 1c's right prediction ("similar") rests on, with the margin the checker uses.
    assert 0.1 < resnet_110.ratio < 10 and 0.3 < resnet_110.ratio / resnet.ratio < 3
    assert plain_110.ratio > 1e4


def test_depth_doubling_accepts_the_right_prediction_and_number(deep):
    answer = {"prediction": "similar", "ratio_110": float(f"{deep[0].ratio:.3g}")}
    assert nb.check_depth_doubling(answer, quiet=True).status == "correct"


def test_depth_doubling_rejects_typical_mistakes(measured, deep):
    (resnet, _), (resnet_110, plain_110) = measured, deep
    check = nb.check_depth_doubling
    vanish = rejected(check({"prediction": "vanish", "ratio_110": resnet_110.ratio}, quiet=True))
    assert "shortcuts" in vanish.message and f"{resnet_110.ratio:.2g}" in vanish.message
    grow = rejected(check({"prediction": "grow", "ratio_110": resnet_110.ratio}, quiet=True))
    assert "plain-110" in grow.message
    rejected(check({"prediction": "similar", "ratio_110": resnet.ratio}, quiet=True), "ResNet-56")
    rejected(check({"prediction": "similar", "ratio_110": plain_110.ratio}, quiet=True), "plain")
    rejected(check({"prediction": "explode", "ratio_110": resnet_110.ratio}, quiet=True), "one of")
    rejected(check({"prediction": "similar", "ratio_110": None}, quiet=True), "now measure")
    rejected(check({"prediction": None, "ratio_110": 0.6}, quiet=True), "predict first")
    rejected(check("similar", quiet=True), "dict")


# --- 2a: the cost of ResNet-44 ----------------------------------------------------------------
PARAMS, MACS = 658_586, 97_174_144  # ResNet-44, option A
BN_CHANNELS = 1584  # 16 (stem) + 14 x 16 + 14 x 32 + 14 x 64


def test_resnet44_cost_accepts_the_exact_counts():
    assert nb.check_resnet44_cost({"params": PARAMS, "macs": MACS}, quiet=True).status == "correct"
    assert nb.check_resnet44_cost((float(PARAMS), np.int64(MACS)), quiet=True).status == "correct"
    assert nb.check_resnet44_cost(solutions.resnet44_cost(), quiet=True).status == "correct"


@pytest.mark.parametrize(
    "params, macs, keywords",
    [
        (PARAMS - 2 * BN_CHANNELS, MACS, ["forgot BN's gamma and beta"]),
        (PARAMS + 2 * BN_CHANNELS, MACS, ["moving mean and variance", "count_params"]),
        (PARAMS - 650, MACS, ["forgot the dense layer"]),
        (661_338, MACS, ["option B"]),
        (PARAMS - 650 - 2 * BN_CHANNELS, MACS, ["two slips", "gamma", "dense"]),
        (PARAMS, 2 * MACS, ["FLOPs"]),
        (PARAMS, MACS - 640, ["forgot the dense layer"]),
        (PARAMS, MACS + 3 * 2 * 1_179_648, ["strided"]),
        (660_000, MACS, ["rounded"]),
        (PARAMS, 12_345, ["too low"]),
        (PARAMS + 0.5, MACS, ["whole number"]),
    ],
)
def test_resnet44_cost_explains_typical_mistakes(params, macs, keywords):
    rejected(nb.check_resnet44_cost({"params": params, "macs": macs}, quiet=True), *keywords)


def test_resnet44_cost_reports_both_counts_and_does_not_reveal_them():
    verdict = rejected(nb.check_resnet44_cost({"params": 1, "macs": None}, quiet=True))
    assert "Parameters" in verdict.message and "still missing" in verdict.message
    assert f"{PARAMS:,}" not in verdict.message and f"{MACS:,}" not in verdict.message


# --- 2b: overfitting --------------------------------------------------------------------------
def scores(train, val):
    return {"train_accuracy": train, "val_accuracy": val}


def test_overfitting_accepts_a_gap_that_closes_honestly():
    verdict = nb._judge_overfitting(scores(1.0, 0.82), scores(1.0, 0.9))
    assert "18% -> 10%" in verdict


@pytest.mark.parametrize(
    "base, reg, keywords",
    [
        (scores(0.7, 0.6), scores(0.7, 0.65), ["does not overfit yet"]),
        (scores(1.0, 0.98), scores(1.0, 0.99), ["nothing to close"]),
        (scores(1.0, 0.82), scores(1.0, 0.83), ["not enough", "more epochs"]),
        (scores(1.0, 0.82), scores(0.7, 0.7), ["underfitting"]),
        (scores(0.6, 0.95), scores(0.9, 0.9), ["not on other images"]),
    ],
)
def test_overfitting_judges_typical_mistakes(base, reg, keywords):
    with pytest.raises(nb.Incorrect) as problem:
        nb._judge_overfitting(base, reg)
    assert all(word.lower() in str(problem.value).lower() for word in keywords), problem.value


ONE_MODEL = nb.small_resnet(10)


@pytest.mark.parametrize(
    "answer, keywords",
    [
        # Shortcuts around the skill: typed numbers, a function that returns typed numbers,
        # an untrained model, one model returned twice.
        ({"baseline": scores(1.0, 0.8), "regularized": scores(1.0, 0.9)}, ["function"]),
        (lambda regularize: scores(1.0, 0.9 if regularize else 0.8), ["keras.Model", "typed"]),
        (lambda regularize: nb.small_resnet(10), ["does not overfit yet"]),
        (lambda regularize: ONE_MODEL, ["same model"]),
        (lambda regularize: nb.small_resnet(3), ["outputs"]),
    ],
    ids=["typed-dict", "function-returns-numbers", "untrained", "same-model", "wrong-classes"],
)
def test_overfitting_rejects_every_shortcut(answer, keywords):
    rejected(nb.check_overfitting(answer, quiet=True), *keywords)


def test_overfitting_reports_the_learners_errors():
    def broken(regularize):
        raise RuntimeError("shapes do not match")

    verdict = nb.check_overfitting(broken, quiet=True)
    assert verdict.status == "error" and "shapes do not match" in verdict.message


# --- 3a: the learning rate --------------------------------------------------------------------
@pytest.fixture(scope="module")
def finder():
    # A typical range-test curve: flat, falling between 1e-3 and 0.3, then diverging.
    lrs = np.logspace(-4, 1, 51)
    losses = 2.3 - 0.6 * (1 + np.tanh(2 * (np.log10(lrs) + 1.5))) + np.where(lrs > 0.3, 3 * lrs, 0)
    return LRFinderResult(list(lrs), list(losses), list(losses), 0.03, "steepest")


def test_finder_region_brackets_the_falling_part(finder):
    low, high = nb.finder_region(finder)
    assert 1e-3 < low < 0.02 < 0.1 < high < 0.5


def test_learning_rate_accepts_the_best_or_a_choice_within_the_noise(finder):
    scores = {0.003: 0.5, 0.03: 0.8, 0.1: 0.79}
    assert "0.03 is the best" in nb._judge_learning_rate(0.03, scores, nb.finder_region(finder))
    # 0.79 against 0.80: one image of 200 apart, within the noise, so 0.1 is accepted too.
    assert "within the noise" in nb._judge_learning_rate(0.1, scores, nb.finder_region(finder))


def test_learning_rate_rejects_a_choice_the_measurements_do_not_support(finder):
    with pytest.raises(nb.Incorrect, match="0.03 is best"):
        nb._judge_learning_rate(0.1, {0.003: 0.5, 0.03: 0.8, 0.1: 0.7}, nb.finder_region(finder))


@pytest.mark.parametrize(
    "candidates, chosen, keywords",
    [
        ([0.003, 0.03], 0.03, ["at least 3"]),
        ([0.02, 0.03, 0.04], 0.03, ["at least a decade"]),
        ([0.003, 0.03, 0.1], 0.01, ["did not validate"]),
        ([0.03, 0.3, 3.0], 3.0, ["past the minimum"]),
        ([1e-4, 3e-4, 1e-3], 3e-4, ["flat start"]),
    ],
)
def test_learning_rate_rejects_typical_mistakes(finder, candidates, chosen, keywords):
    answer = {"learning_rate": chosen, "candidates": candidates, "train": nb.small_resnet}
    rejected(nb.check_learning_rate({**answer, "finder": finder}, quiet=True), *keywords)


@pytest.mark.parametrize(
    "answer, keywords",
    [
        # Shortcuts around the skill: typed accuracies without a training function, a
        # training function that returns numbers, no range test.
        ({"learning_rate": 0.03, "val_accuracy": {0.003: 0.5, 0.03: 0.8, 0.1: 0.7}}, ["train"]),
        (
            {"learning_rate": 0.03, "candidates": [0.003, 0.03, 0.1], "train": lambda lr: 0.8},
            ["keras.Model", "typed"],
        ),
    ],
    ids=["typed-accuracies", "train-returns-a-number"],
)
def test_learning_rate_rejects_every_shortcut(finder, answer, keywords):
    rejected(nb.check_learning_rate({**answer, "finder": finder}, quiet=True), *keywords)


def test_learning_rate_requires_the_range_test():
    answer = {"learning_rate": 0.03, "candidates": [0.003, 0.03, 0.1], "train": nb.small_resnet}
    rejected(nb.check_learning_rate(answer, quiet=True), "find_learning_rate")


# --- 3b: the schedule -------------------------------------------------------------------------
schedules = keras.optimizers.schedules


@pytest.mark.parametrize(
    "schedule, kind",
    [
        (paper_schedule(1000, 0.05), "paper's step decay"),
        (schedules.PiecewiseConstantDecay([500, 750], [0.05, 0.005, 0.0005]), "paper's step"),
        (schedules.CosineDecay(0.05, decay_steps=1000), "cosine"),
        (cosine_schedule(1000, 0.05, warmup_steps=50), "decaying schedule"),
        (schedules.ExponentialDecay(0.05, decay_steps=100, decay_rate=0.5), "decaying"),
    ],
    ids=["paper_schedule", "PiecewiseConstant", "Cosine", "WarmupCosine", "Exponential"],
)
def test_lr_schedule_accepts_decays_from_the_chosen_lr(schedule, kind):
    verdict = nb.check_lr_schedule(schedule, peak_lr=0.05, total_steps=1000, quiet=True)
    assert verdict.status == "correct", verdict
    assert kind in verdict.message


def test_lr_schedule_accepts_the_solution():
    verdict = nb.check_lr_schedule(solutions.lr_schedule(0.1, 1000), 0.1, 1000, quiet=True)
    assert verdict.status == "correct"


class Rising(schedules.LearningRateSchedule):
    def __call__(self, step):
        return 0.05 * (1 + keras.ops.cast(step, "float32") / 100)

    def get_config(self):
        return {}


@pytest.mark.parametrize(
    "schedule, keywords",
    [
        (0.05, ["constant learning rate"]),
        (schedules.PiecewiseConstantDecay([50, 75], [0.05, 0.005, 0.0005]), ["not epochs"]),
        (schedules.ExponentialDecay(0.05, decay_steps=1000, decay_rate=0.96), ["barely decays"]),
        (paper_schedule(1000), ["paper's 0.1", "peak_lr = 0.05"]),
        (Rising(), ["keeps rising"]),
        (lambda step: 0.05, ["LearningRateSchedule"]),
    ],
    ids=["float", "epoch-boundaries", "weak-exponential", "wrong-start", "rising", "function"],
)
def test_lr_schedule_rejects_typical_mistakes(schedule, keywords):
    verdict = nb.check_lr_schedule(schedule, peak_lr=0.05, total_steps=1000, quiet=True)
    rejected(verdict, *keywords)


def test_lr_schedule_rejects_a_restart():
    restarts = schedules.CosineDecayRestarts(0.05, first_decay_steps=300)
    rejected(nb.check_lr_schedule(restarts, 0.05, 1000, quiet=True), "rises again")


# --- helpers ----------------------------------------------------------------------------------
def test_probe_batch_and_small_resnet():
    images, labels = nb.probe_batch()
    again, _ = nb.probe_batch()
    assert images.shape == (16, 32, 32, 3) and labels.shape == (16,)
    np.testing.assert_array_equal(images, again)
    model = nb.small_resnet(num_classes=7)
    assert model.output_shape == (None, 7)
    with pytest.raises(ValueError, match="image_size"):
        nb.small_resnet(image_size=12)


# --- every reference solution through its checker ---------------------------------------------
def _with_chosen_lr(check, answer, **kwargs):
    return check(answer, peak_lr=0.05, total_steps=1000, **kwargs)


REFERENCE_SOLUTIONS = [
    pytest.param(
        nb.check_gradient_ratio, solutions.gradient_ratio, id="1b", marks=pytest.mark.slow
    ),
    pytest.param(
        nb.check_depth_doubling, solutions.depth_doubling, id="1c", marks=pytest.mark.slow
    ),
    pytest.param(nb.check_resnet44_cost, solutions.resnet44_cost, id="2a"),
    # The checker re-runs the function: two small trainings (about 20 s of CPU).
    pytest.param(
        nb.check_overfitting,
        lambda: solutions.overfitting_experiment,
        id="2b",
        marks=pytest.mark.slow,
    ),
    # An LR range test and three short trainings (about 10 s of CPU).
    pytest.param(
        nb.check_learning_rate, solutions.choose_learning_rate, id="3a", marks=pytest.mark.slow
    ),
    pytest.param(
        functools.partial(_with_chosen_lr, nb.check_lr_schedule),
        lambda: solutions.lr_schedule(0.05, 1000),
        id="3b",
    ),
]


def test_every_checker_has_a_reference_solution_test():
    assert len(REFERENCE_SOLUTIONS) == len(CHECKERS)


@pytest.mark.parametrize("check, solve", REFERENCE_SOLUTIONS)
def test_reference_solution_passes_its_checker(check, solve):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verdict = check(solve(), quiet=True)
    assert verdict.status == "correct", verdict


@pytest.mark.slow
def test_the_reference_gradient_ratio_is_the_checkers_measurement():
    assert math.isclose(
        solutions.gradient_ratio(), nb.measure_gradient_ratio(nb.DEPTH, True).ratio, rel_tol=1e-6
    )
