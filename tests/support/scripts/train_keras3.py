"""Train a tiny real Keras 3 model (TensorFlow backend) and write its TensorBoard log.

Usage: train_keras3.py LOGDIR [--epochs N] [--update-freq F] [--csv FILE] [--no-histograms] [--write-images]
"""

import argparse
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("logdir")
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--update-freq", default="2")
parser.add_argument("--batches", type=int, default=4)
parser.add_argument("--csv", default=None)
parser.add_argument("--no-histograms", action="store_true")
parser.add_argument("--write-images", action="store_true", help="TensorBoard(write_images=True): weights as images")
parser.add_argument("--constant-lr", action="store_true")
parser.add_argument(
    "--lr-logger", default=None, help="every= for tbrewrite's LearningRateLogger; writes LOGDIR/learning_rate.csv"
)
args = parser.parse_args()

keras.utils.set_random_seed(0)
x = np.random.default_rng(0).normal(size=(16 * args.batches + 16, 4)).astype("float32")
y = (x.sum(axis=1) > 0).astype("float32")
x, x_val, y, y_val = x[:-16], x[-16:], y[:-16], y[-16:]  # args.batches batches of 16 per epoch
model = keras.Sequential(
    [keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1, activation="sigmoid")]
)
lr = 0.05 if args.constant_lr else keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=2, decay_rate=0.9)
model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="binary_crossentropy", metrics=["accuracy"])
update_freq = args.update_freq if args.update_freq == "epoch" else int(args.update_freq)
callbacks = []
if args.lr_logger:
    from tbrewrite.keras import LearningRateLogger

    every = int(args.lr_logger) if args.lr_logger.isdigit() else args.lr_logger
    os.makedirs(args.logdir, exist_ok=True)
    callbacks.append(LearningRateLogger(os.path.join(args.logdir, "learning_rate.csv"), every=every))
callbacks += [
    keras.callbacks.TensorBoard(
        args.logdir,
        histogram_freq=0 if args.no_histograms else 1,
        update_freq=update_freq,
        write_images=args.write_images,
    )
]
if args.csv:
    callbacks.append(keras.callbacks.CSVLogger(args.csv))
model.fit(x, y, batch_size=16, epochs=args.epochs, validation_data=(x_val, y_val), callbacks=callbacks, verbose=0)
