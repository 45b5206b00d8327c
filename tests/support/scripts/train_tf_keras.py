"""Train a tiny real tf_keras (Keras 2 API) model with ReduceLROnPlateau before TensorBoard.

Usage: train_tf_keras.py LOGDIR [--epochs N]
ReduceLROnPlateau sets logs["lr"], so tf_keras's TensorBoard writes ``epoch_lr`` into train/.
verbose=1 makes the progress bar request batch hooks, so batch_ summaries are written too.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tf_keras

parser = argparse.ArgumentParser()
parser.add_argument("logdir")
parser.add_argument("--epochs", type=int, default=4)
args = parser.parse_args()

tf_keras.utils.set_random_seed(0)
x = np.random.default_rng(1).normal(size=(64, 4)).astype("float32")
y = (x.sum(axis=1) > 0).astype("float32")
model = tf_keras.Sequential(
    [tf_keras.layers.Dense(3, activation="relu", input_shape=(4,)), tf_keras.layers.Dense(1, activation="sigmoid")]
)
model.compile(optimizer=tf_keras.optimizers.SGD(learning_rate=0.5), loss="binary_crossentropy", metrics=["accuracy"])
callbacks = [
    tf_keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0, factor=0.5, min_delta=10.0),
    tf_keras.callbacks.TensorBoard(args.logdir, histogram_freq=1, update_freq=2),
]
sys.stdout = open(os.devnull, "w")  # verbose=1 for batch hooks, without the progress bar noise
model.fit(x, y, batch_size=16, epochs=args.epochs, validation_split=0.25, callbacks=callbacks, verbose=1)
