"""Each notebook's experiment sizes per profile, and the image shrinking they use.

A notebook's setup cell stays short: it asks `notebook_budget("04", profile, dataset)` for its
sizes instead of pasting a table, and the tables live here, side by side, where a change to
one profile's time budget is one line. Why each size is what it is: the comment above it.

Examples:

>>> from resnet_keras.course import get_profile
>>> notebook_budget("02", get_profile("ci"))["train_size"]
256
"""

from __future__ import annotations

from resnet_keras import _validation


def _notebook_01(profile, dataset):
    # Section 5 trains a plain net and the seed article's model on the digits (train_size None:
    # all 1,437); the seed model's runs are shorter, they only show that it trains.
    return {
        "ci": dict(image_size=16, train_size=512, epochs=4, batch_size=64,
                   seed_train_size=256, seed_epochs=2),
        "cpu": dict(image_size=32, train_size=None, epochs=5, batch_size=64,
                    seed_train_size=1024, seed_epochs=2),
        "gpu": dict(image_size=32, train_size=None, epochs=10, batch_size=128,
                    seed_train_size=None, seed_epochs=5),
    }[profile.name]  # fmt: skip


def _notebook_02(profile, dataset):
    # Section 7's plain-against-residual race on the digits (train_size None: all 1,437).
    return {
        "ci": dict(image_size=16, train_size=256, epochs=4, batch_size=32),
        "cpu": dict(image_size=32, train_size=1024, epochs=4, batch_size=32),
        "gpu": dict(image_size=32, train_size=None, epochs=5, batch_size=128),
    }[profile.name]  # fmt: skip


def _notebook_04(profile, dataset):
    # The main run of section 5. The digits have 1,437 training images in all: hold out 200
    # and give them more epochs. In ci, CIFAR-10 gets the profile's 2,000 images (6 epochs =
    # 192 steps), the digits 1,024 of theirs.
    digits = dataset == "digits"
    held_out = 200 if digits else profile.validation_size
    return {
        "ci": dict(depth=8, image_size=16, train_size=1024 if digits else profile.train_size,
                   validation_size=200, epochs=6, batch_size=64),
        "cpu": dict(depth=20, image_size=32, train_size=profile.train_size,
                    validation_size=held_out, epochs=20 if digits else profile.epochs,
                    batch_size=profile.batch_size),
        "gpu": dict(depth=20, image_size=32, train_size=profile.train_size,
                    validation_size=held_out, epochs=30 if digits else 15,
                    batch_size=profile.batch_size),
    }[profile.name]  # fmt: skip


def _notebook_07(profile, dataset):
    # Section 1's race: four networks from three seeds each on the digits (train_size None:
    # all 1,437), with the paper's recipe at a learning rate of 0.02 (on a run this short, 0.1
    # without a warm-up leaves ResNet-56 far behind; the paper warms ResNet-110 up at 0.01 for
    # the same reason). In ci, 8x8 thumbnails (the digits' own resolution): a 56-layer step
    # costs about what it costs at 16x16 here, and six epochs are 96 steps.
    race = {
        "ci": dict(image_size=8, train_size=1024, epochs=6, batch_size=64),
        "cpu": dict(image_size=16, train_size=None, epochs=10, batch_size=64),
        "gpu": dict(image_size=32, train_size=None, epochs=20, batch_size=64),
    }[profile.name]  # fmt: skip
    # Section 2's deep seed network and its residual twin: the same budget in every profile,
    # because the claim is "fails on the budget where its twin trains" (a plain stack this deep
    # may creep off chance after many more epochs). Adam at 1e-4: at the article's 1e-3 the
    # un-normalised residual stack overshoots in its first steps (section 2 shows why).
    seed = dict(image_size=8, train_size=1024, epochs=6, batch_size=64, learning_rate=1e-4)
    return {"race": {**race, "learning_rate": 0.02}, "seed": seed, "seeds": (0, 1, 2)}


def _notebook_08(profile, dataset):
    # Sections 1 and 2 look at notebook 07's runs again (its budget): ResNet-20 and plain-20
    # from three seeds for the deletions, plain-56 and ResNet-56 (seed 0) for the landscape.
    # Section 3 looks inside a ResNet-20 trained on larger thumbnails, so that its last stage
    # still has 4x4 maps for Grad-CAM in ci.
    inside = {
        "ci": dict(image_size=16, train_size=1024, epochs=6, batch_size=64),
        "cpu": dict(image_size=32, train_size=None, epochs=10, batch_size=64),
        "gpu": dict(image_size=32, train_size=None, epochs=20, batch_size=64),
    }[profile.name]  # fmt: skip
    return {
        "race": _notebook_07(profile, dataset)["race"],
        "inside": {**inside, "learning_rate": 0.02},
        "seeds": (0, 1, 2),
        # Points per axis of the landscape: a 1-D slice and a 2-D grid (as Li et al.'s figures).
        "slice_points": {"ci": 21, "cpu": 41, "gpu": 51}[profile.name],
        "grid_points": {"ci": 9, "cpu": 21, "gpu": 31}[profile.name],
    }


def _notebook_09(profile, dataset):
    # The digits in every profile (as 07 and 08): the source is digits 0-4 (721 training
    # images), the target digits 5-9 with 5 labels per class (25 images). Batches of 2: the
    # few labels give 13 steps an epoch, and the small batches are the setting where the
    # BatchNormalization question matters (Wu and He 2018). Measured in ci (16x16, seeds 0-2):
    # fine-tuning 78-86 % against scratch 61-68 %. In ci, 16x16 thumbnails.
    side = {"ci": 16, "cpu": 32, "gpu": 32}[profile.name]
    source = dict(epochs=8, batch_size=64, learning_rate=0.05)
    return {
        "image_size": side,
        "per_class": 5,
        "epochs": 10,
        "batch_size": 2,
        "learning_rate": 0.005,
        "source": source,
        "seeds": (0, 1, 2),
    }


def _notebook_10(profile, dataset):
    # The race of five CIFAR-layout networks, three seeds each, on the digits: one budget for
    # all (the same steps, recipe and images). In ci 512 images of 16x16 for 6 epochs (48
    # steps); in cpu all 1,437 at 32x32 (138 steps). A learning rate of 0.05: rk.fit's recipe
    # divides it by 10 at half and three quarters of the run.
    race = {
        "ci": dict(image_size=16, train_size=512, epochs=6, batch_size=64),
        "cpu": dict(image_size=32, train_size=None, epochs=6, batch_size=64),
        "gpu": dict(image_size=32, train_size=None, epochs=20, batch_size=64),
    }[profile.name]  # fmt: skip
    # Part 2's recipe ladder: five rungs from three seeds (15 runs), so a smaller network than
    # the race's in ci: ResNet-8 on 8x8 thumbnails (the digits' own resolution, as notebook
    # 07), 48 steps. Measured in ci: the paper's recipe 87-93 %, every other rung 92-97 %.
    recipe = {
        "ci": dict(depth=8, image_size=8, train_size=512, epochs=6, batch_size=64),
        "cpu": dict(depth=20, image_size=16, train_size=None, epochs=6, batch_size=64),
        "gpu": dict(depth=20, image_size=32, train_size=None, epochs=30, batch_size=128),
    }[profile.name]  # fmt: skip
    return {
        "race": {**race, "learning_rate": 0.05},
        "recipe": {**recipe, "learning_rate": 0.05},
        "seeds": (0, 1, 2),
    }


def _notebook_11(profile, dataset):
    # Section 2: the same ResNet-8 from one seed on one device and on two (logical CPU
    # devices), 8 steps of global batches of 128 (64 per device). A small learning rate: float
    # rounding grows with every step, and less at a small one, so the measured gap between
    # rounding and per-replica statistics is wide (lr 0.005: 20x; 0.02: 8x).
    side = {"ci": 16, "cpu": 32, "gpu": 32}[profile.name]
    devices = dict(
        image_size=side, depth=8, train_size=512, epochs=2, batch_size=128, learning_rate=0.005
    )
    # Section 3's linear scaling rule: batches of 32 against 128, from three seeds, the same
    # epochs. In ci, 8x8 thumbnails (the digits' own resolution), as notebook 07. Every run is
    # on the CPU, in worker processes (scaling_runs.use_cpu_devices hides GPUs), so the gpu
    # profile gets the cpu profile's sizes.
    batches = {
        "ci": dict(image_size=8, depth=8, train_size=1024, epochs=8),
        "cpu": dict(image_size=16, depth=8, train_size=None, epochs=8),
        "gpu": dict(image_size=16, depth=8, train_size=None, epochs=8),
    }[profile.name]  # fmt: skip
    return {"devices": devices, "batches": batches, "small_batch": 32, "large_batch": 128,
            "base_learning_rate": 0.1, "base_batch": 256, "warmup_epochs": 0.5,
            "seeds": (0, 1, 2)}  # fmt: skip


_BUDGETS = {
    "01": _notebook_01,
    "02": _notebook_02,
    "04": _notebook_04,
    "07": _notebook_07,
    "08": _notebook_08,
    "09": _notebook_09,
    "10": _notebook_10,
    "11": _notebook_11,
}


def notebook_budget(notebook, profile, dataset=None):
    """The experiment sizes of one notebook under `profile`, as a dict.

    Args:
        notebook: the notebook's number, e.g. `"04"`.
        profile: a `resnet_keras.course.Profile`.
        dataset: the name the loader resolved (`info.name`); notebooks whose sizes depend on
            it ("04") read it, the others ignore it.
    """
    _validation.check_choice("notebook", notebook, tuple(_BUDGETS))
    return dict(_BUDGETS[notebook](profile, dataset))


def shrink(dataset, size):
    """Average-pools the 32x32 images of an (images, labels) dataset down to `size` x `size`.

    The ci profile trains on 16x16 images: four times fewer pixels, the same network. A
    training split keeps its epoch counter, so its order stays a function of (seed, epoch).

    Examples:

    >>> import tensorflow as tf
    >>> images = tf.data.Dataset.from_tensors((tf.ones((2, 32, 32, 3)), tf.zeros((2,))))
    >>> next(iter(shrink(images, 16)))[0].shape
    TensorShape([2, 16, 16, 3])
    """
    import tensorflow as tf

    size = _validation.check_choice("size", size, (8, 16, 32))
    if size == 32:
        return dataset
    from resnet_keras.data import epochs

    factor = 32 // size
    shrunk = dataset.map(
        lambda images, labels: (tf.nn.avg_pool2d(images, factor, factor, "VALID"), labels)
    )
    # A training split's order is a function of its epoch counter (resnet_keras.data.epochs):
    # the shrunk split keeps it, so `rk.fit` pins the same epochs as on the original.
    return epochs.attach(shrunk, epochs.epoch_counters(dataset))
