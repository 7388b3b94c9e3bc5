"""Fine-tune a model on one language with one of six methods, and merge the result.

Methods (``METHODS`` in ``methods.py``, one entry each): ``neurons`` (the language's LAPE neurons, our
sparse tuner), ``random`` (as many random neurons), ``ffn`` (all FFN weights), ``full``, ``lora`` and
``ia3`` (peft). All see the same packed windows, steps and validation.

A run directory ``RUN`` (the ``--out`` of ``langneurons train``) holds:

- ``run.json``: every setting, the method, model id, base fingerprint, language, neuron-set path, hash and
  counts, trainable parameters (count and %), data sizes, versions; after training a ``result`` section
  (best step, best and final validation loss).
- ``adapter/``: the best checkpoint (by validation loss), in the method's own format:
  neurons/random: the neuron tuner's ``save_pretrained``; lora/ia3: peft's ``save_pretrained``;
  ffn: ``ffn.safetensors`` with only the FFN weights (the base supplies the rest);
  full: a complete HF model directory (``save_pretrained`` + tokenizer).
- ``log_history.json``: the Trainer's log dicts (``{"step", "loss"}``, ``{"step", "eval_loss"}``, ...).
- ``curves.csv``: ``step,train_loss,eval_loss`` (empty where a step logged only one of them).
- ``checkpoints/checkpoint-N/``: Trainer checkpoints for resuming (last and best only):
  ``trainable.safetensors`` (the trained tensors), optimizer, scheduler, RNG and ``trainer_state.json``.
  With TensorBoard installed its event files go to ``checkpoints/runs/``.
- ``DONE``: written last, atomically; a run without it is unfinished and re-running resumes it.

``load_trained(RUN)`` (from ``langneurons.adapters``) returns the adapted model of any method;
``merge(RUN, out=DIR)`` writes a plain HF model directory. Modules: ``settings`` (every setting, presets,
checks), ``run`` (the command), ``methods``, ``data``, ``trainer`` / ``checkpoint`` / ``hf_private`` (the HF
Trainer), ``rundir`` and ``runinfo`` (the run directory and its ``run.json``), ``merge``.
"""

from ..adapters import load_adapted, load_trained
from .merge import merge
from .methods import METHODS, Method
from .run import run_training, train
from .settings import PRESETS, TrainSettings, default_lr

__all__ = [
    "METHODS",
    "PRESETS",
    "Method",
    "TrainSettings",
    "default_lr",
    "load_adapted",
    "load_trained",
    "merge",
    "run_training",
    "train",
]
