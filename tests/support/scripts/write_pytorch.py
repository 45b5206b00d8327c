"""Write two runs with PyTorch's ``SummaryWriter`` (or tensorboardX's, its origin), as a training loop does.

Usage: write_pytorch.py LOGDIR torch|tensorboardX
LOGDIR/plain logs ``loss`` and ``acc`` for 5 steps; LOGDIR/with_hparams also calls
``add_hparams({"lr": 0.1, "bsize": 32.0}, {"hparam/final_loss": ...}, run_name="hp")``, which
writes an experiment, a session start and end, and the metric into ``with_hparams/hp``
(pytorch#37738: each call makes its own experiment).
"""

import sys

logdir, which = sys.argv[1], sys.argv[2]
if which == "torch":
    from torch.utils.tensorboard import SummaryWriter
else:
    from tensorboardX import SummaryWriter

for run, offset in (("plain", 0.0), ("with_hparams", 0.1)):
    w = SummaryWriter(f"{logdir}/{run}")
    for step in range(5):
        w.add_scalar("loss", 1.0 / (step + 1) + offset, step)
        w.add_scalar("acc", step / 5 - offset, step)
    if run == "with_hparams":
        kwargs = {"run_name": "hp"} if which == "torch" else {"name": "hp"}
        w.add_hparams({"lr": 0.1, "bsize": 32.0}, {"hparam/final_loss": 0.2 + offset}, **kwargs)
    w.close()
