"""Registered model names, the callable that builds each ("module:callable") and the
keywords (a recipe's model_args) it takes.

Light on purpose (no torch): the rules read it. imgdag.models builds a model by importing its
module by name at run time, so a script's imports do not tie it to every model file; a rule
that builds a model lists that model's module as code (rules/common.smk: `code(models=...)`),
and an edit to one model file reruns only the recipes that build it.
"""

# each callable takes num_classes= and the recipe's model_args, the keywords MODEL_ARGS names
BUILDERS = {
    "lenet5": "imgdag.models.lenet:lenet5",
    "alexnet": "torchvision.models:alexnet",  # torchvision's, built without weights
    "resnet18_64px": "imgdag.models.resnet_small:resnet18_64px",
    "caffe_alexnet": "imgdag.models.caffe_alexnet:CaffeAlexNet",
}
# written out, not read from the callables, so that the config check imports no torch
# (tests/test_model_and_params_errors.py checks them against the signatures)
MODEL_ARGS = {
    "lenet5": ("in_channels",),
    "alexnet": ("dropout",),  # torchvision's alexnet passes them to AlexNet
    "resnet18_64px": ("stem",),
    "caffe_alexnet": ("dropout",),
}


def model_builder(name: str) -> tuple[str, str]:
    """(module, callable) that build model `name` (ValueError naming the known ones otherwise)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(BUILDERS)}")
    module, _, builder = BUILDERS[name].partition(":")
    return module, builder


STEMS = ("imagenet", "small")  # resnet18_64px's stems (imgdag.models.resnet_small)
# what a model_args value may be, by keyword: (test, in words); in_channels must also match the
# images (imgdag.trainparams)
ARG_VALUES = {
    "in_channels": (lambda v: v in (1, 3), "1 or 3"),
    "dropout": (lambda v: type(v) in (int, float) and 0 <= v < 1, "a number, 0 <= dropout < 1"),
    "stem": (lambda v: v in STEMS, " or ".join(map(repr, STEMS))),
}


def model_args_problem(name: str, model_args: dict) -> str | None:
    """What is wrong with `model_args` for the registered model `name` (None: nothing)."""
    unknown = sorted(set(model_args) - set(MODEL_ARGS[name]))
    if unknown:
        return (f"unknown key {', '.join(map(repr, unknown))} for {name}; "
                f"allowed: {', '.join(MODEL_ARGS[name])}")
    for key, value in model_args.items():
        test, allowed = ARG_VALUES[key]
        if not test(value):
            return f"{key}: {value!r}, expected {allowed}"
    return None


def model_module(name: str) -> str:
    """The module that builds model `name`."""
    return model_builder(name)[0]
