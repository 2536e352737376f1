"""Build registered models (`build_model(name, num_classes, **kw)`; the names and their modules
are in imgdag.model_registry) and read and write local weight files.

Weights only ever come from local files (`weights=PATH`): a bare state_dict, or a checkpoint
dict whose "model" entry is one (as torchvision's reference scripts and
scripts/convert_caffe_alexnet.py write). Nothing is downloaded.
"""
from importlib import import_module
from pathlib import Path

import torch
from torch import nn

from imgdag.errors import DataError
from imgdag.model_registry import model_builder
from imgdag.weightfiles import load_torch


def read_state_dict(path) -> dict:
    """The state_dict in a local `.pth` file (bare, or a checkpoint's "model" entry)."""
    path = Path(path)
    state = load_torch(path, "expected a PyTorch state_dict file (.pth): fetch the published file again",
                       map_location="cpu")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(path, "expected a state_dict (name -> tensor) or a checkpoint dict with a 'model' state_dict")
    return state


def load_weights(model: nn.Module, path, skip: tuple[str, ...] = ()) -> nn.Module:
    """Load a local weight file into `model` (strict), leaving out keys starting with a `skip`
    prefix (parts the model was built without); DataError names the file on mismatch."""
    state = {k: v for k, v in read_state_dict(path).items() if not k.startswith(skip)}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise DataError(path, f"weights do not fit {type(model).__name__}: {e}") from e
    return model


def build_model(name: str, num_classes: int, weights=None, **kw) -> nn.Module:
    """Build a registered model with `num_classes` outputs; `weights` is an optional local file."""
    module, builder = model_builder(name)
    builder = getattr(import_module(module), builder)
    model = builder(num_classes=num_classes, **kw)
    return load_weights(model, weights) if weights is not None else model


def save_trained_model(path, model: nn.Module, arch: str, classes: list[str], input_spec: dict,
                       params: dict) -> None:
    """The trained-model file evaluation and prediction read: weights plus what rebuilds them.

    input_spec: size [H, W], channels, mean and std (per channel, on a 0..1 scale).
    """
    from imgdag.atomic import atomic_torch_save

    atomic_torch_save({"model": model.state_dict(), "arch": arch, "classes": list(classes),
                       "input": input_spec, "params": params}, path)


def load_trained_model(path, device) -> tuple[nn.Module, dict]:
    """Rebuild a model saved by save_trained_model; returns (model in eval mode, the file dict)."""
    path = Path(path)
    saved = load_torch(path, "expected a trained-model file written by imgdag: delete it to retrain",
                       map_location="cpu")
    try:
        arch, classes = saved["arch"], saved["classes"]
    except (KeyError, TypeError) as e:
        raise DataError(path, "not a trained-model file written by imgdag (no arch and classes): "
                              "delete it to retrain") from e
    model = build_model(arch, len(classes), **saved["params"].get("model_args", {}))
    model.load_state_dict(saved["model"])
    return model.to(device).eval(), saved
