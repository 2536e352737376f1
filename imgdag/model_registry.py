"""Registered model names and the callable that builds each, as "module:callable".

Light on purpose (no torch): the rules read it. imgdag.models builds a model by importing its
module by name at run time, so a script's imports do not tie it to every model file; a rule
that builds a model lists that model's module as code (rules/common.smk: `code(models=...)`),
and an edit to one model file reruns only the recipes that build it.
"""

# each callable takes num_classes= and the recipe's model_args
BUILDERS = {
    "lenet5": "imgdag.models.lenet:lenet5",
    "alexnet": "torchvision.models:alexnet",  # torchvision's, built without weights
    "resnet18_64px": "imgdag.models.resnet_small:resnet18_64px",
    "caffe_alexnet": "imgdag.models.caffe_alexnet:CaffeAlexNet",
}


def model_builder(name: str) -> tuple[str, str]:
    """(module, callable) that build model `name` (ValueError naming the known ones otherwise)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(BUILDERS)}")
    module, _, builder = BUILDERS[name].partition(":")
    return module, builder


def model_module(name: str) -> str:
    """The module that builds model `name`."""
    return model_builder(name)[0]
