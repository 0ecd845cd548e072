"""The tf.data input pipeline against ResNet-20 training, alternating in one TensorFlow worker.

`digits` (`resnet_keras.data.load("digits", augment=True).train`), `cifar-synthetic`
(random uint8 CIFAR-shaped images through `make_split` with CIFAR-10's crop and flip) and
`train` (`resnet20`'s `keras-tensorflow`). Each pipeline is pulled alone, with the whole
machine. Goal (issue 22): at least 10x the training rate, i.e. under a tenth of the CPU.
"""

from __future__ import annotations

from benchmarks import _harness as h

FULL = dict(batch=128, depth=20, pipeline_steps=40, train_steps=3, repeats=7, warmup=2)
FULL["examples"] = 5000
QUICK = dict(batch=8, depth=8, pipeline_steps=4, train_steps=1, repeats=2, warmup=1, examples=256)
SOURCES = ("digits", "cifar-synthetic")
GOAL = 10.0


def run(quick=False, threads=None, log=print, **overrides):
    """Images/s of both pipelines and of ResNet training, alternating.

    Returns:
        A `Result`; `ratios[source]` is the median per round of pipeline images/s over
        training images/s; `numbers` holds the medians (`{source}_images_per_s`,
        `train_images_per_s`).
    """
    settings = h.merge_settings(QUICK if quick else FULL, overrides)
    threads, batch = threads or h.default_threads(), settings["batch"]
    pipeline = dict(kind="pipeline", batch=batch, num_examples=settings["examples"])
    pipeline["warmup_tasks"] = {"iterate": settings["pipeline_steps"]}
    contenders = [dict(pipeline, id=source, source=source) for source in SOURCES]
    warmup = {"train": settings["train_steps"]}
    contenders += [dict(id="train", kind="keras_cifar", depth=settings["depth"], batch=batch)]
    contenders[-1]["warmup_tasks"] = warmup
    workers = h.library_workers("pipeline", contenders, threads, settings["warmup"], log)
    try:
        runners = {
            source: h.runner(workers, source, "iterate", settings["pipeline_steps"])
            for source in SOURCES
        }
        runners["train"] = h.runner(workers, "train", "train", settings["train_steps"])
        samples = h.alternate(runners, settings["repeats"], log=log)
    finally:
        h.close_workers(workers)

    train = samples["train"]
    numbers, ratios, rows = {"train_images_per_s": train.median}, {}, []
    for source in SOURCES:
        ratios[source] = h.paired_ratio(samples[source], train)
        numbers[f"{source}_images_per_s"] = samples[source].median
        goal = "yes" if ratios[source] >= GOAL else "no"
        rows.append(
            [f"`{source}`", h.fmt_spread(samples[source]), f"**{h.fmt(ratios[source])}x**", goal]
        )
    rows.append(
        [f"ResNet-{settings['depth']} training (`keras-tensorflow`)", h.fmt_spread(train), "1x", ""]
    )
    intro = (
        f"Batch {batch}, augmentation on (pad 4, random crop; flip for the CIFAR-shaped data), "
        f"{threads} TensorFlow threads, {settings['repeats']} alternating rounds of "
        f"{settings['pipeline_steps']} pipeline batches / {settings['train_steps']} training "
        f"steps{' (QUICK MODE: not representative)' if quick else ''}."
    )
    header = ["source", "images/s median (min-max)", "over training (median per round)"]
    table = h.markdown_table(header + [f"goal >= {GOAL:g}x"], rows)
    return h.Result(
        name="pipeline",
        title="Input pipeline against ResNet-20 training",
        markdown=intro + "\n\n" + table,
        numbers=numbers,
        ratios=ratios,
    )
