"""Write one event of every summary kind and every non-summary event with real TensorFlow.

Usage: write_all_kinds.py LOGDIR
LOGDIR/tf2 gets TF2 summaries (scalar with steps going back, histogram, image, audio, text, a raw
tensor, hparams); LOGDIR/tf1 gets a TF1 FileWriter's graph, session log, simple_value, histo,
image and run metadata.
"""

import sys

import numpy as np
import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

logdir = sys.argv[1]
with tf.summary.create_file_writer(logdir + "/tf2").as_default():
    for step in (0, 1, 2, 1, 1):
        tf.summary.scalar("s", 0.5, step=step)
    tf.summary.histogram("h", [1.0, 2.0], step=0)
    tf.summary.image("img", np.zeros((1, 2, 2, 3), "float32"), step=0)
    tf.summary.audio("aud", np.zeros((1, 8, 1), "float32"), 8000, step=0)
    tf.summary.text("txt", "hello", step=0)
    tf.summary.write("raw", tf.constant([1, 2]), step=0)
    hp.hparams({"lr": 0.1})
tf1 = tf.compat.v1
with tf.Graph().as_default() as g:
    tf.constant(1.0, name="c")
    fw = tf1.summary.FileWriter(logdir + "/tf1", graph=g)
    fw.add_session_log(tf1.SessionLog(status=tf1.SessionLog.START), 0)
    fw.add_summary(tf1.Summary(value=[tf1.Summary.Value(tag="x", simple_value=1.0)]), 0)
    histo = tf1.HistogramProto(min=0.0, max=1.0, num=1.0)
    fw.add_summary(tf1.Summary(value=[tf1.Summary.Value(tag="hist", histo=histo)]), 0)
    image = tf1.Summary.Image(height=1, width=1, colorspace=1, encoded_image_string=b"x")
    fw.add_summary(tf1.Summary(value=[tf1.Summary.Value(tag="im", image=image)]), 0)
    fw.add_run_metadata(tf1.RunMetadata(), "step1", 1)
    fw.close()
