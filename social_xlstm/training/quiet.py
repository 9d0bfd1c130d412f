"""Lightning output that a user of this CLI cannot act on, kept out of the terminal.

Lightning advertises its cloud logger and lists absent accelerators at every fit, and its pytree
helper trips a deprecation
that torch raises about Lightning's own code: both would print on every ``train``, between the
messages that matter, as would its warning that a resumed run's checkpoint folder is not empty.
Everything else Lightning says still shows.
"""

from __future__ import annotations

import logging
import warnings

# The cloud-logger advert, and the accelerator census printed at every fit ("TPU available: False")
# three times per `train`: the training budget and epoch lines say what matters.
# And why a fit stopped, which the CLI's own line says with the best validation error (progress.EndOfFit).
_NOISE = ("💡 Tip:", "GPU available:", "TPU available:", "HPU available:", "`Trainer.fit` stopped: `max_epochs=")


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_NOISE)


_NO_ADVERTS = _NoAdverts()


def quiet_lightning() -> None:
    """Install both filters (idempotent: the same filter object is never added twice)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NO_ADVERTS)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"lightning\.pytorch\.utilities\._pytree")
    # A run resumed from its last.ckpt writes into its own checkpoint folder: that it is not empty
    # is the point (run_directory decides what may be resumed, and refuses the rest).
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
