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
from imgdag.model_registry import BUILDERS, model_args_problem, model_builder
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
    return _load_state(model, state, path, type(model).__name__)


def _load_state(model: nn.Module, state: dict, path, what: str) -> nn.Module:
    """model.load_state_dict(state); a tensor of another shape, missing or unexpected is a
    DataError naming `path` and the first such tensor (`what`: the model, in words). torch's own
    rules decide what is missing: a BatchNorm's num_batches_tracked, absent from older files
    such as torchvision's ImageNet weights, is not."""
    own = model.state_dict()
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if wrong:
        raise DataError(path, f"weights do not fit {what}: {wrong[0]} is {list(state[wrong[0]].shape)}, "
                              f"the model's is {list(own[wrong[0]].shape)}")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing:
        raise DataError(path, f"weights do not fit {what}: {len(missing)} of the model's tensors are "
                              f"missing, e.g. {missing[0]}")
    if unexpected:
        raise DataError(path, f"weights do not fit {what}: {len(unexpected)} tensors are not the "
                              f"model's, e.g. {unexpected[0]}")
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


TRAINED_MODEL_KEYS = ("model", "arch", "classes", "input", "params")


def _trained_model_problem(saved) -> str | None:
    """What keeps a loaded trained-model file from being rebuilt and used (None: nothing)."""
    if not isinstance(saved, dict):
        return f"expected a dict, found a {type(saved).__name__}"
    missing = [k for k in TRAINED_MODEL_KEYS if k not in saved]
    if missing:
        return f"expected a dict with the keys {', '.join(TRAINED_MODEL_KEYS)}; missing: {', '.join(missing)}"
    arch, classes, spec, params, state = (saved[k] for k in ("arch", "classes", "input", "params", "model"))
    if not isinstance(arch, str) or arch not in BUILDERS:
        return f"unknown model {arch!r}; known: {', '.join(BUILDERS)}"
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        return "classes: expected a list of class names"
    if not isinstance(params, dict) or not isinstance(params.get("model_args", {}), dict):
        return "params: expected a dict (its model_args a dict)"
    if problem := model_args_problem(arch, params.get("model_args", {})):
        return f"params.model_args: {problem}"
    channels = spec.get("channels") if isinstance(spec, dict) else None
    if not (isinstance(channels, int) and _is_list_of(spec.get("size"), 2, int)
            and _is_list_of(spec.get("mean"), channels) and _is_list_of(spec.get("std"), channels)):
        return "input: expected size [H, W], channels, and a mean and std per channel"
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return "model: expected a state_dict (name -> tensor)"
    return None


def _is_list_of(value, count: int, kind=(int, float)) -> bool:
    """Whether `value` is a list of `count` numbers (of `kind`)."""
    return isinstance(value, list) and len(value) == count and all(isinstance(v, kind) for v in value)


def load_trained_model(path, device) -> tuple[nn.Module, dict]:
    """Rebuild a model saved by save_trained_model; returns (model in eval mode, the file dict).
    A file that does not hold what save_trained_model writes, or whose weights do not fit the
    model it describes, is a DataError naming it."""
    path = Path(path)
    saved = load_torch(path, "expected a trained-model file written by imgdag: delete it to retrain",
                       map_location="cpu")
    if problem := _trained_model_problem(saved):
        raise DataError(path, f"not a trained-model file written by imgdag ({problem}): delete it to retrain")
    arch, model_args = saved["arch"], saved["params"].get("model_args", {})
    try:
        model = build_model(arch, len(saved["classes"]), **model_args)
    except (TypeError, ValueError) as e:
        raise DataError(path, f"params.model_args {model_args} do not build {arch}: {e}") from None
    _load_state(model, saved["model"], path, f"the {arch} model the file describes")
    return model.to(device).eval(), saved
