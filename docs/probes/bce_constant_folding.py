"""Plain-TensorFlow probe: in a graph, TensorFlow's optimizer (grappler constant folding, its
constant push-down) rewrites Keras 2's binary crossentropy term log(1 - p + eps) into
log((1 + eps) - p), with 1 + eps folded in the tensor's dtype. In float32 1 + 1e-7 rounds to
1 + 2**-23, so a probability clipped to 1 - eps (0.99999988) gives log(2**-22) = -15.249 where the
literal expression gives log(2**-23 + 1e-7) = -15.333, and every p near 1 moves by a few percent.
Eager execution evaluates the literal expression. The harness's rule bce_probability_log says
so ("log_plus_epsilon_folded" for keras 2.3.1, whose every path is a TF1 graph, and which never
recovers logits from a Sigmoid op: rule probability_crossentropy).

The expression is tf_keras/src/backend.py:binary_crossentropy's (keras 2.3.1 delegates to it):
  bce = target * log(output + epsilon()); bce += (1 - target) * log(1 - output + epsilon())
Run: .tox/tfkeras221/bin/python docs/probes/bce_constant_folding.py
(seen 2026-12-04 on TensorFlow 2.21.0, p = [1, 0.5, 0.99999928]:
  eager                          [-15.333239  -0.69314694 -14.019764]
  tf.function                    [-15.249238  -0.69314694 -13.996475]
  Session                        [-15.249238  -0.69314694 -13.996475]
  Session, constant_folding off  [-15.333239  -0.69314694 -14.019764]).
No harness code is used."""
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import rewriter_config_pb2

P = np.array([1.0, 0.5, 0.99999928], np.float32)


def term(p):
    return tf.math.log(1.0 - tf.clip_by_value(p, 1e-7, 1 - 1e-7) + 1e-7)


print("tensorflow", tf.__version__)
print("eager                         ", term(tf.constant(P)).numpy())
print("tf.function                   ", tf.function(term, autograph=False)(tf.constant(P)).numpy())
for folding in (True, False):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, P.shape)
        y = term(x)
        config = tf.compat.v1.ConfigProto()
        if not folding:
            config.graph_options.rewrite_options.constant_folding = rewriter_config_pb2.RewriterConfig.OFF
        with tf.compat.v1.Session(graph=graph, config=config) as session:
            print("Session" + ("" if folding else ", constant_folding off"), session.run(y, {x: P}))
