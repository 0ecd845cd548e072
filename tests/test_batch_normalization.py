"""FusedBatchNormalization computes what keras.layers.BatchNormalization computes."""

import keras
import numpy as np
import pytest

from resnet_keras.layers import FusedBatchNormalization


def to_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def _pair(**kwargs):
    shape = (6, 5, 5, 4)
    ours = FusedBatchNormalization(**kwargs)
    reference = keras.layers.BatchNormalization(**kwargs)
    ours.build(shape)
    reference.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in reference.weights]
    weights[-1] = np.abs(weights[-1]) + 0.5  # a moving variance is positive
    reference.set_weights(weights)
    ours.set_weights(weights)
    images = (rng.normal(size=shape) * 3 + 1).astype("float32")
    return ours, reference, images


@pytest.mark.backend
@pytest.mark.parametrize("training", [True, False])
def test_outputs_and_moving_statistics_match_keras(training):
    ours, reference, images = _pair(momentum=0.9, epsilon=1e-5)
    np.testing.assert_allclose(
        to_numpy(ours(images, training=training)),
        to_numpy(reference(images, training=training)),
        atol=1e-5,
    )
    for mine, theirs in zip(ours.weights, reference.weights):
        # The moving variance uses the biased batch variance, as Keras does.
        np.testing.assert_allclose(to_numpy(mine), to_numpy(theirs), rtol=1e-6, atol=1e-7)


@pytest.mark.backend
def test_without_scale_and_center_matches_keras():
    shape = (4, 3, 3, 2)
    images = np.random.default_rng(1).normal(size=shape).astype("float32")
    ours = FusedBatchNormalization(scale=False, center=False)
    reference = keras.layers.BatchNormalization(scale=False, center=False)
    np.testing.assert_allclose(
        to_numpy(ours(images, training=True)),
        to_numpy(reference(images, training=True)),
        atol=1e-5,
    )


def test_gradients_match_keras_on_tensorflow():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the fused kernel is TensorFlow's")
    ours, reference, images = _pair(momentum=0.9, epsilon=1e-5)
    x = tf.constant(images)
    if not tf.config.list_physical_devices("GPU"):
        assert ours._use_fused_kernel(x, None)  # the fused kernel is what is compared here
    weights = np.sin(np.arange(images.size, dtype="float32")).reshape(images.shape)

    def gradients(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * weights)
        return tape.gradient(loss, [x, layer.gamma, layer.beta])

    for mine, theirs in zip(gradients(ours), gradients(reference)):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-5)


def test_unknown_batch_size_inside_a_compiled_function():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function is TensorFlow's")
    ours, reference, images = _pair(momentum=0.5, epsilon=1e-3)
    spec = tf.TensorSpec((None, *images.shape[1:]), tf.float32)
    ours_fn = tf.function(lambda x: ours(x, training=True), input_signature=[spec])
    np.testing.assert_allclose(
        ours_fn(images).numpy(), to_numpy(reference(images, training=True)), atol=1e-5
    )
    np.testing.assert_allclose(
        to_numpy(ours.moving_variance), to_numpy(reference.moving_variance), rtol=1e-6
    )


@pytest.mark.parametrize("fused_inference", [True, False])
def test_fused_inference_chooses_the_inference_kernel(fused_inference):
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow" or tf.config.list_physical_devices("GPU"):
        pytest.skip("the fused kernel is used on TensorFlow CPUs only")
    ours, reference, images = _pair(momentum=0.9, epsilon=1e-5)
    ours.fused_inference = fused_inference

    def op_types(training, trainable=True):
        ours.trainable = trainable
        graph = tf.function(lambda x: ours(x, training=training)).get_concrete_function(
            tf.TensorSpec(images.shape, tf.float32)
        )
        return {op.type for op in graph.graph.get_operations()}

    # Training always fuses; inference (and a frozen layer) only when asked to.
    assert "FusedBatchNormV3" in op_types(training=True)
    assert ("FusedBatchNormV3" in op_types(training=False)) == fused_inference
    assert ("FusedBatchNormV3" in op_types(training=True, trainable=False)) == fused_inference
    ours.trainable = True
    np.testing.assert_allclose(
        to_numpy(ours(images, training=False)),
        to_numpy(reference(images, training=False)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_the_fused_kernel_can_be_turned_off(monkeypatch):
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow" or tf.config.list_physical_devices("GPU"):
        pytest.skip("the fused kernel is used on TensorFlow CPUs only")
    from resnet_keras.layers.batch_normalization import FUSED_KERNEL_VARIABLE

    ours, reference, images = _pair(momentum=0.9, epsilon=1e-5)

    def op_types():
        graph = tf.function(lambda x: ours(x, training=True)).get_concrete_function(
            tf.TensorSpec(images.shape, tf.float32)
        )
        return {op.type for op in graph.graph.get_operations()}

    assert "FusedBatchNormV3" in op_types()
    monkeypatch.setenv(FUSED_KERNEL_VARIABLE, "0")
    assert "FusedBatchNormV3" not in op_types()  # Keras' own ops, the same function
    np.testing.assert_allclose(
        to_numpy(ours(images, training=True)),
        to_numpy(reference(images, training=True)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_fused_inference_must_be_a_bool():
    with pytest.raises(TypeError, match="fused_inference"):
        FusedBatchNormalization(fused_inference="yes")


def test_bottleneck_blocks_keep_keras_ops_in_inference():
    from resnet_keras.layers import BasicBlock, BottleneckBlock

    def flags(block):
        block.build((1, 8, 8, 16))
        return {
            layer.fused_inference
            for layer in block._flatten_layers()
            if isinstance(layer, FusedBatchNormalization)
        }

    assert flags(BasicBlock(16)) == {True}
    assert flags(BottleneckBlock(4)) == {False}


@pytest.mark.backend
def test_config_round_trip_and_keras_isinstance():
    layer = FusedBatchNormalization(momentum=0.9, epsilon=1e-5, name="bn", fused_inference=False)
    restored = FusedBatchNormalization.from_config(layer.get_config())
    assert isinstance(restored, keras.layers.BatchNormalization)
    assert (restored.momentum, restored.epsilon, restored.name) == (0.9, 1e-5, "bn")
    assert restored.fused_inference is False
    serialized = keras.saving.serialize_keras_object(layer)
    assert type(keras.saving.deserialize_keras_object(serialized)) is FusedBatchNormalization
