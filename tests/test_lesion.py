"""Block deletion at test time (Veit et al. 2016): listing, deleting, sharing, lesion studies."""

import keras
import numpy as np
import pytest

import resnet_keras as rk
from resnet_keras.lesion import Block, LesionStudy, delete_blocks, lesion_study, residual_blocks

CIFAR20_BLOCKS = [f"stage{stage}_block{index}" for stage in (1, 2, 3) for index in (1, 2, 3)]
# The blocks of a CIFAR ResNet-14 that keep their input's shape.
DELETABLE14 = ["stage1_block1", "stage1_block2", "stage2_block2", "stage3_block2"]


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def small_resnet20(**kwargs):
    return rk.CifarResNet(20, num_classes=10, input_shape=(8, 8, 3), **kwargs)


def images(count=6):
    return np.random.default_rng(0).normal(size=(count, 8, 8, 3)).astype("float32")


def skipping(model, name, x):
    """The model's layers run one after the other (a CIFAR net is a chain), `name` left out."""
    for layer in model.layers[1:]:
        if layer.name != name:
            x = layer(x, training=False)
    return to_numpy(x)


@pytest.mark.backend
def test_residual_blocks_of_resnet20_in_order_with_the_downsampling_ones_not_deletable():
    blocks = residual_blocks(small_resnet20())
    assert [block.name for block in blocks] == CIFAR20_BLOCKS
    assert all(isinstance(block, Block) for block in blocks)
    not_deletable = [block.name for block in blocks if not block.deletable]
    assert not_deletable == ["stage2_block1", "stage3_block1"]
    assert sum(block.deletable for block in blocks) == 7
    # The plain twin has the same blocks, deletable alike.
    assert residual_blocks(small_resnet20(residual=False)) == blocks


@pytest.mark.backend
def test_a_block_that_widens_without_striding_is_not_deletable():
    # The first bottleneck block keeps the resolution but widens 16 -> 64 channels.
    model = rk.CifarResNet(29, block="bottleneck", shortcut="B", input_shape=(8, 8, 3))
    blocks = residual_blocks(model)
    assert blocks[0] == Block("stage1_block1", False)
    assert [block.name for block in blocks if not block.deletable] == [
        "stage1_block1",
        "stage2_block1",
        "stage3_block1",
    ]


@pytest.mark.backend
def test_resnet50_blocks_keep_their_first_block_of_each_stage():
    blocks = residual_blocks(rk.ResNet50(weights=None, input_shape=(64, 64, 3)))
    assert len(blocks) == 16
    assert [block.name for block in blocks if not block.deletable] == [
        f"conv{stage}_block1" for stage in (2, 3, 4, 5)
    ]


@pytest.mark.backend
def test_deleting_nothing_gives_the_same_outputs_with_the_same_layers():
    model = small_resnet20()
    x = images()
    copy = delete_blocks(model, [])
    assert copy is not model
    np.testing.assert_array_equal(to_numpy(copy(x, training=False)), to_numpy(model(x)))
    assert [layer.name for layer in copy.layers] == [layer.name for layer in model.layers]
    assert all(a is b for a, b in zip(copy.layers[1:], model.layers[1:]))


@pytest.mark.backend
@pytest.mark.parametrize(
    "options", [{}, {"residual": False}, {"preactivation": True}], ids=["v1", "plain", "v2"]
)
def test_deleting_a_block_feeds_its_input_to_the_next_layer(options):
    model = small_resnet20(**options)
    x = images()
    lesioned = delete_blocks(model, "stage1_block2")
    assert type(lesioned.get_layer("stage1_block2")) is keras.layers.Identity
    assert [block.name for block in residual_blocks(lesioned)] == [
        name for name in CIFAR20_BLOCKS if name != "stage1_block2"
    ]
    np.testing.assert_allclose(
        to_numpy(lesioned(x, training=False)),
        skipping(model, "stage1_block2", x),
        rtol=1e-5,
        atol=1e-6,
    )
    # Two blocks at once, one per stage.
    both = delete_blocks(model, ["stage1_block2", "stage3_block3"])
    assert sum(type(layer) is keras.layers.Identity for layer in both.layers) == 2


@pytest.mark.backend
def test_deleting_a_residual_block_equals_zeroing_its_branch():
    # With the last BN's gamma and beta at 0 the branch gives 0, so the post-activation
    # block computes relu(0 + x) = x for its non-negative input: the deleted block.
    model = small_resnet20()
    x = images()
    lesioned = delete_blocks(model, ["stage1_block2"])
    deleted = to_numpy(lesioned(x, training=False))
    assert np.abs(deleted - to_numpy(model(x, training=False))).max() > 1e-4  # it matters
    last_bn = model.get_layer("stage1_block2").branch_bns[-1]
    last_bn.gamma.assign(np.zeros(last_bn.gamma.shape, "float32"))
    last_bn.beta.assign(np.zeros(last_bn.beta.shape, "float32"))
    np.testing.assert_allclose(to_numpy(model(x, training=False)), deleted, rtol=1e-5, atol=1e-6)
    # The lesioned model never reads the deleted block's weights.
    np.testing.assert_array_equal(to_numpy(lesioned(x, training=False)), deleted)


@pytest.mark.backend
def test_the_lesioned_model_shares_the_weights_and_leaves_the_original_as_it_was():
    model = small_resnet20()
    x = images()
    before = to_numpy(model(x, training=False))
    layers_before = [(layer.name, type(layer)) for layer in model.layers]
    lesioned = delete_blocks(model, ["stage2_block2"])

    original_weights = {id(weight) for weight in model.weights}
    assert all(id(weight) in original_weights for weight in lesioned.weights)
    assert len(lesioned.weights) == len(model.weights) - len(
        model.get_layer("stage2_block2").weights
    )
    assert lesioned.get_layer("stem_conv") is model.get_layer("stem_conv")

    # The original is unchanged: same layers, same outputs.
    assert [(layer.name, type(layer)) for layer in model.layers] == layers_before
    np.testing.assert_array_equal(to_numpy(model(x, training=False)), before)

    # A change to the original's weights shows in the lesioned model.
    lesioned_before = to_numpy(lesioned(x, training=False))
    bias = model.get_layer("logits").bias
    bias.assign(to_numpy(bias) + 1.0)
    np.testing.assert_allclose(
        to_numpy(lesioned(x, training=False)), lesioned_before + 1.0, rtol=1e-5, atol=1e-5
    )


@pytest.mark.backend
def test_lesion_study_on_an_untrained_model():
    model = rk.CifarResNet(14, input_shape=(8, 8, 3))
    x = images(10)
    labels = np.argmax(to_numpy(model(x, training=False)), axis=-1)  # the model is right
    study = lesion_study(model, x, labels, batch_size=4)
    assert isinstance(study, LesionStudy)
    assert study.intact == 1.0
    assert list(study.deleted) == [
        "stage1_block1",
        "stage1_block2",
        "stage2_block2",
        "stage3_block2",
    ]
    assert all(0.0 <= accuracy <= 1.0 for accuracy in study.deleted.values())
    assert study.drops == {name: 1.0 - accuracy for name, accuracy in study.deleted.items()}
    one = lesion_study(model, x, labels, names=["stage2_block2"])
    assert one.deleted == {"stage2_block2": study.deleted["stage2_block2"]}


@pytest.mark.backend
@pytest.mark.parametrize(
    "names, match",
    [
        (["stage9_block1"], r"`names` .*'stage1_block1'.*'stage9_block1', which is not a block"),
        (["stem_conv"], r"`names` .*'stem_conv', which is not a block"),
        ("stage2_block1", r"`names` .*'stage3_block3'.*'stage2_block1', which changes the shape"),
        (["stage1_block1", "stage3_block1"], r"`names` .*'stage3_block1', which changes"),
    ],
)
def test_delete_blocks_rejects_names_it_cannot_delete(names, match):
    with pytest.raises(ValueError, match=match):
        delete_blocks(small_resnet20(), names)


@pytest.mark.backend
def test_bad_arguments_name_the_argument():
    model = small_resnet20()
    with pytest.raises(TypeError, match=r"`model` must be a keras.Model; received BasicBlock"):
        delete_blocks(rk.BasicBlock(16), ["stage1_block1"])
    with pytest.raises(TypeError, match=r"`model` must be a keras.Model; received str"):
        residual_blocks("resnet20")
    with pytest.raises(TypeError, match=r"`model` must be a keras.Model"):
        lesion_study(None, images(), np.zeros(6))
    with pytest.raises(TypeError, match=r"`names` must be a block name or a list"):
        delete_blocks(model, 3)
    with pytest.raises(TypeError, match=r"`names` must hold block names \(str\)"):
        delete_blocks(model, [1])
    with pytest.raises(ValueError, match=r"`images` must be .* \(6, 8, 8, 3\) and \(5,\)"):
        lesion_study(model, images(), np.zeros(5))
    with pytest.raises(ValueError, match=r"`batch_size` must be"):
        lesion_study(model, images(), np.zeros(6), batch_size=0)
    with pytest.raises(ValueError, match=r"`names` .*'stage2_block1', which changes"):
        lesion_study(model, images(), np.zeros(6), names=["stage2_block1"])


def test_trained_residual_net_survives_a_deleted_block_the_plain_net_does_not():
    """Veit et al. 2016, Fig. 3, in small: ResNet-14 and Plain-14 on 8x8 digits."""
    from resnet_keras import data
    from resnet_keras.course.budgets import shrink

    loaded = data.load("digits", batch_size=64, train_size=512, validation_size=0, augment=False)
    train = shrink(loaded.train, 8)
    batches = list(shrink(loaded.test, 8).as_numpy_iterator())
    test_images = np.concatenate([batch[0] for batch in batches])
    test_labels = np.concatenate([batch[1] for batch in batches])
    assert test_images.shape == (360, 8, 8, 3)

    studies = {}
    for residual in (True, False):
        rk.set_determinism(0)
        model = rk.CifarResNet(14, residual=residual, input_shape=(8, 8, 3))
        rk.fit(model, train, epochs=5, learning_rate=0.02, verbose=0)
        studies[residual] = lesion_study(model, test_images, test_labels)
    residual, plain = studies[True], studies[False]
    # Measured (TensorFlow, CPU): intact 0.928 residual, 0.894 plain; accuracy drops
    #   residual: stage1_block1 0.444, stage1_block2 0.114, stage2_block2 0.008, stage3_block2 0.078
    #   plain:    stage1_block1 0.772, stage1_block2 0.761, stage2_block2 0.803, stage3_block2 0.864
    # (a deleted plain layer leaves chance, 0.1). The first block after the stem matters
    # most to the short-trained ResNet; the others cost it little.
    assert residual.intact > 0.8 and plain.intact > 0.7
    assert (
        list(residual.deleted)
        == list(plain.deleted)
        == [
            "stage1_block1",
            "stage1_block2",
            "stage2_block2",
            "stage3_block2",
        ]
    )
    assert all(drop > 0.5 for drop in plain.drops.values()), plain.drops
    for name in ("stage2_block2", "stage3_block2"):
        assert residual.drops[name] < 0.25, residual.drops
        assert plain.drops[name] - residual.drops[name] > 0.4, (residual.drops, plain.drops)
    assert np.mean(list(residual.drops.values())) < 0.5 * np.mean(list(plain.drops.values()))


@pytest.mark.backend
def test_the_gradients_of_all_paths_add_up_to_the_whole_gradient():
    # Backpropagation is linear in the paths: over all 2^3 ways through ResNet-8's three
    # blocks, the path gradients sum to the intact network's gradient at the first block.
    import itertools

    from resnet_keras.lesion import _input_gradient, _path_gradient

    rk.set_determinism(0)
    model = rk.CifarResNet(8, num_classes=10, input_shape=(8, 8, 3))
    images = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype("float32")
    labels = keras.ops.convert_to_tensor(np.array([0, 1, 2, 3]))
    blocks = [model.get_layer(name) for name in ("stage1_block1", "stage2_block1", "stage3_block1")]
    stem = keras.Model(model.inputs[0], blocks[0].input)
    head = keras.Model(blocks[-1].output, model.outputs[0])
    start = keras.ops.convert_to_numpy(stem(images, training=False))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def whole(features):
        for block in blocks:
            features = block(features, training=False)
        return loss(labels, head(features, training=False))

    subsets = [set(c) for k in range(4) for c in itertools.combinations(range(3), k)]
    paths = [_path_gradient(blocks, head, labels, start, chosen) for chosen in subsets]
    total = _input_gradient(whole, start)
    assert len(paths) == 8 and np.abs(total).max() > 0
    np.testing.assert_allclose(np.sum(paths, axis=0), total, rtol=1e-4, atol=1e-6)
    # And no single path is the whole gradient.
    assert all(not np.allclose(path, total, atol=1e-6) for path in paths)


@pytest.mark.backend
def test_path_gradients_reports_per_length_and_refuses_bad_input():
    from resnet_keras.lesion import path_gradients

    rk.set_determinism(0)
    model = rk.CifarResNet(8, num_classes=10, input_shape=(8, 8, 3))
    images = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype("float32")
    measured = path_gradients(model, images, np.arange(4), samples=2)
    assert measured.blocks == 3 and measured.lengths == [0, 1, 2, 3]
    assert all(norm > 0 for norm in measured.norms)
    assert measured.totals[1] == pytest.approx(3 * measured.norms[1])  # C(3, 1) paths
    with pytest.raises(ValueError, match="`lengths`"):
        path_gradients(model, images, np.arange(4), lengths=[4])
    with pytest.raises(ValueError, match="`model`"):
        path_gradients(
            rk.CifarResNet(8, residual=False, input_shape=(8, 8, 3)), images, np.arange(4)
        )
    with pytest.raises(ValueError, match="`samples`"):
        path_gradients(model, images, np.arange(4), samples=0)
