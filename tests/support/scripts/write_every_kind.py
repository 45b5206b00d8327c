"""Write every kind of summary with one writer, as its users do, for the reader's tests.

Usage: write_every_kind.py LOGDIR tf2|tf1|tensorboardX|torch

* tf2: ``tf.summary`` scalars, histograms (and an empty one), two images per step, two audio
  clips per step with labels, text, a raw tensor, and an hparams experiment with two sessions
  (``hp.hparams_config`` in LOGDIR/tf2_hp, ``hp.hparams`` + a metric in each session run);
  LOGDIR.table/tf2_table holds a text table (a rank-2 string tensor, which tbparse cannot read).
* tf1: a TF1 graph's merged summaries through ``FileWriter``: scalar, histogram, images,
  audio, text in one event per step, plus the graph and a session log.
* tensorboardX / torch: ``SummaryWriter``'s add_scalar, add_scalars (runs of their own),
  add_histogram, add_image, add_images, add_audio, add_text, add_pr_curve, add_hparams and
  add_embedding (projector files).
"""

import sys

import numpy as np

logdir, writer = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)

if writer == "tf2":
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    with tf.summary.create_file_writer(f"{logdir}/tf2").as_default():
        for step in range(3):
            tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
            tf.summary.histogram("weights", rng.normal(size=100), step=step, buckets=7)
            tf.summary.histogram("empty", np.zeros(0), step=step)
            tf.summary.image("img", rng.uniform(size=(2, 4, 5, 3)), step=step, max_outputs=2)
            tf.summary.audio(
                "aud", rng.uniform(-1, 1, size=(2, 800, 1)).astype("float32"), 8000, step=step, max_outputs=2
            )
            tf.summary.text("note", f"step {step}: ünïcödé", step=step)
            tf.summary.write("raw", tf.constant([step, 2, 3]), step=step)
    with tf.summary.create_file_writer(f"{logdir}.table/tf2_table").as_default():
        tf.summary.text("table", [["a", "b"], ["c", "d"]], step=0)
    lr = hp.HParam("lr", hp.RealInterval(0.001, 0.1))
    units = hp.HParam("units", hp.Discrete([8, 16]))
    optimizer = hp.HParam("optimizer", hp.Discrete(["adam", "sgd"]))
    with tf.summary.create_file_writer(f"{logdir}/tf2_hp").as_default():
        hp.hparams_config(hparams=[lr, units, optimizer], metrics=[hp.Metric("accuracy")])
    for i, (rate, n, opt) in enumerate(((0.01, 8, "adam"), (0.1, 16, "sgd"))):
        with tf.summary.create_file_writer(f"{logdir}/tf2_hp/run-{i}").as_default():
            hp.hparams({lr: rate, units: n, optimizer: opt})
            for step in range(2):
                tf.summary.scalar("accuracy", 0.5 + i / 10 + step / 100, step=step)
elif writer == "tf1":
    import tensorflow as tf

    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph:
        x = tf1.placeholder(tf.float32, [None])
        images = tf1.placeholder(tf.float32, [None, 4, 5, 3])
        sound = tf1.placeholder(tf.float32, [None, 800])
        tf1.summary.scalar("loss", tf.reduce_mean(x))
        tf1.summary.histogram("weights", x)
        tf1.summary.image("img", images, max_outputs=2)
        tf1.summary.audio("aud", sound, 8000, max_outputs=2)
        tf1.summary.text("note", tf.constant("hello"))
        merged = tf1.summary.merge_all()
        with tf1.Session(graph=graph) as session:
            fw = tf1.summary.FileWriter(f"{logdir}/tf1", graph)
            fw.add_session_log(tf1.SessionLog(status=tf1.SessionLog.START), 0)
            for step in range(3):
                feed = {
                    x: rng.normal(size=50),
                    images: rng.uniform(size=(2, 4, 5, 3)),
                    sound: rng.uniform(-1, 1, size=(2, 800)),
                }
                fw.add_summary(session.run(merged, feed), step)
            fw.close()
else:
    if writer == "torch":
        from torch.utils.tensorboard import SummaryWriter
    else:
        from tensorboardX import SummaryWriter

    try:
        import soundfile  # noqa: F401

        has_soundfile = True
    except ImportError:
        has_soundfile = False
    w = SummaryWriter(f"{logdir}/{writer}")
    for step in range(3):
        w.add_scalar("loss", 1.0 / (step + 1), step)
        w.add_scalars("pair", {"a": step, "b": 2.0 * step}, step)
        w.add_histogram("weights", rng.normal(size=100), step)
        w.add_image("img", rng.uniform(size=(3, 4, 5)), step)
        w.add_images("imgs", rng.uniform(size=(2, 3, 4, 5)), step)
        if writer == "torch" or has_soundfile:  # tensorboardX encodes audio with soundfile
            w.add_audio("aud", rng.uniform(-1, 1, size=800), step, sample_rate=8000)
        w.add_text("note", f"step {step}: ünïcödé", step)
        w.add_pr_curve("pr", rng.integers(0, 2, size=20), rng.uniform(size=20), step)
    kwargs = {"run_name": "hp"} if writer == "torch" else {"name": "hp"}
    w.add_hparams({"lr": 0.1, "bsize": 32, "opt": "adam"}, {"hparam/acc": 0.9}, **kwargs)
    w.add_embedding(rng.uniform(size=(10, 4)), metadata=[str(i) for i in range(10)], global_step=0)
    w.close()
