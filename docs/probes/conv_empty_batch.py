"""TensorFlow's convolution on an empty batch returns the input's channels, not the filters'.

Found by the harness: tf_keras-mirrored on case 3754fe3322dd577f (a Conv1D, a batch of one sample
on two replicas, so replica 1 runs an empty batch) fails with "Must provide as many biases as the
last dimension of the input tensor: [4] vs. [0,4,2]" at the Conv1D's BiasAdd. Run with TensorFlow
installed (seen with 2.21.0):

    python docs/probes/conv_empty_batch.py

prints (0, 4, 2) for both empty-batch convolutions and (1, 4, 4) for the non-empty one.
"""
import tensorflow as tf

empty, kernel = tf.zeros((0, 4, 2)), tf.zeros((2, 2, 4))  # 2 input channels -> 4 filters
print("tf.nn.conv1d, empty batch", tf.nn.conv1d(empty, kernel, 1, "SAME").shape)
print("tf.nn.convolution, empty batch", tf.nn.convolution(empty, kernel, padding="SAME").shape)
print("tf.nn.convolution, one sample", tf.nn.convolution(tf.zeros((1, 4, 2)), kernel, padding="SAME").shape)
print("tensorflow", tf.__version__)
