"""params.yaml checked before any job runs: short messages naming the key, the value and what
is allowed (the Snakefile raises them at parse time, so no data step starts on a bad config).

Besides the JSON schema: `device: cuda` needs CUDA, and a class count the data fixes (MNIST's
ten digits, Tiny ImageNet's wnids.txt when the raw data is there, imagenet-8's class folders in
train/ of a raw folder, zip or tar) must match `num_classes`; and a train section must fit its
model and the images its recipe fixes (imgdag.trainparams: model_args, normalize, augment and
crop sizes, the optimizer's settings). Only what is cheap to read counts: a compressed tar's
member list means inflating all of it, so its classes are checked when its map files are
written. A wnids.txt that cannot be read (not UTF-8, damaged, a zip member past
imgdag.extract's caps) is a problem naming it. Every raw path a rule reads must exist, or be
made by a rule (the demo data); `raw_path_problems` needs the rules' outputs, so the Snakefile
calls it after its includes.
"""
import difflib
import tarfile
import zipfile
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from imgdag.errors import DataError
from imgdag.trainparams import train_params_problems

MAX_PROBLEMS = 5


def _where(path) -> str:
    return ".".join(map(str, path)) or "(top level)"


def _describe(error) -> str:
    """One line for one schema error: key, value, what is allowed."""
    where, value = _where(error.absolute_path), error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(allowed))
        hints = [f"'{k}' (did you mean '{m[0]}'?)" if (m := difflib.get_close_matches(k, allowed, 1))
                 else f"'{k}'" for k in unknown]
        return f"{where}: unknown key {', '.join(hints)}; allowed: {', '.join(allowed)}"
    if error.validator == "required":
        return f"{where}: {error.message.split(' is a required')[0]} is missing"
    if error.validator == "enum":
        return f"{_where(error.absolute_path)}: {value!r} is not allowed; allowed: " + \
            ", ".join(map(str, error.validator_value))
    if error.validator == "type" and isinstance(value, str) and "e" in value.lower() and _is_float(value):
        mantissa, _, exponent = value.lower().partition("e")
        return (f"{where}: {value!r} is text, not a number: YAML reads a number in exponent form "
                f"only with a dot, so write {float(mantissa):.1f}e{exponent}")
    if error.validator in ("if", "then", "else", "anyOf", "oneOf", "allOf") and error.context:
        return _describe(min(error.context, key=lambda e: len(e.absolute_path)))
    return f"{where}: {error.message}"


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def schema_problems(config: dict, schema_path) -> list[str]:
    """Each schema violation of `config` as one line (at most MAX_PROBLEMS)."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(config),
                    key=lambda e: list(map(str, e.absolute_path)))
    lines = [_describe(e) for e in errors]
    if len(lines) > MAX_PROBLEMS:
        lines = lines[:MAX_PROBLEMS] + [f"... and {len(lines) - MAX_PROBLEMS} more"]
    return lines


def _cuda_keys(value, path=()) -> list[str]:
    """Dotted keys of every `device` setting that asks for CUDA."""
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in _cuda_keys(v, (*path, key))]
    if path and path[-1] == "device" and str(value).startswith("cuda"):
        return [_where(path)]
    return []


def _tiny_class_count(raw: Path) -> int | None:
    """Lines of tiny-imagenet-200's wnids.txt (a zip or its folder), None when absent; a file
    that cannot be read (not UTF-8, damaged, a zip member past the archive caps) is a DataError
    naming it."""
    from imgdag.layouts.tree import ZipTree
    from imgdag.textfiles import read_text

    if raw.is_dir():
        wnids = next(raw.rglob("wnids.txt"), None)
        return len(read_text(wnids).split()) if wnids else None
    if zipfile.is_zipfile(raw):
        with ZipTree(raw) as tree:
            name = next((n for n in tree.names() if n.endswith("wnids.txt")), None)
            return len(tree.read_text(name).split()) if name else None
    return None


def _uncompressed_tar(path: Path) -> bool:
    try:
        with tarfile.open(path, "r:"):  # only an uncompressed tar opens so
            return True
    except (tarfile.TarError, OSError):
        return False


def _imagenet_class_count(raw: Path) -> int | None:
    """Class folders directly in the shallowest train/ of an ImageNet folder (train/ at the top
    or one folder down), zip or uncompressed tar (member headers only), as
    imgdag.layouts.imagenet_folders reads them; None for a compressed tar, when the path is
    absent or when there is no train/ (the maps step names those problems)."""
    if raw.is_dir():
        train = next((p for p in (raw / "train", *sorted(raw.glob("*/train"))) if p.is_dir()), None)
        return sum(p.is_dir() for p in train.iterdir()) if train else None
    if raw.is_file() and (zipfile.is_zipfile(raw) or _uncompressed_tar(raw)):
        from imgdag.layouts.imagenet_folders import EXPECTED
        from imgdag.layouts.tree import open_tree

        try:
            with open_tree(raw) as tree:
                return len(tree.subfolders(tree.find_root("train", EXPECTED) + "train/"))
        except DataError:
            return None
    return None


def _recipe_images(recipe: str, section: dict) -> tuple[int, int | None, str]:
    """(channels, side or None when not fixed, in words) of the images a recipe trains on."""
    if recipe == "mnist_lenet5":
        if section["rec"].get("pass_through"):
            return 1, 28, "MNIST digits (28x28 grayscale)"
        side = section["rec"].get("resize") or 28
        return 3, side, f"MNIST digits packed without rec.pass_through ({side}x{side} RGB)"
    if recipe == "tiny_imagenet_resnet18":
        return 3, 64, "Tiny ImageNet images (64x64 RGB)"
    return 3, None, "its images (decoded as RGB)"  # imagenet8: cropped to crop.size instead


def _train_problems(recipe: str, section: dict) -> list[str]:
    """A recipe's train section against its model and the images it fixes (imgdag.trainparams)."""
    return [f"recipes.{recipe}.train.{problem}"
            for problem in train_params_problems(section["train"], *_recipe_images(recipe, section))]


def semantic_problems(config: dict) -> list[str]:
    """What the schema cannot see: CUDA asked for on a machine without it, class counts, train
    sections that do not fit their model or images."""
    problems = []
    cuda = _cuda_keys(config)
    if cuda:
        import torch

        if not torch.cuda.is_available():
            problems += [f"{key}: 'cuda' asked for, but this machine has no CUDA device; "
                         "use auto or cpu" for key in cuda]
    recipes = config["recipes"]
    checks = [("mnist_lenet5", lambda: 10, "MNIST has 10 digit classes")]
    tiny_raw = Path(config["datasets"]["tiny_imagenet"]["raw"])
    checks.append(("tiny_imagenet_resnet18", lambda: _tiny_class_count(tiny_raw),
                   f"wnids.txt in {tiny_raw} lists that many"))
    imagenet8_raw = Path(config["datasets"]["imagenet8"]["raw"])
    checks.append(("imagenet8_alexnet", lambda: _imagenet_class_count(imagenet8_raw),
                   f"{imagenet8_raw} has that many class folders in train/"))
    for recipe, count, why in checks:
        train = recipes.get(recipe, {}).get("train", {})
        if recipe not in recipes or "num_classes" not in train:
            continue
        try:
            expected = count()
        except DataError as e:
            problems.append(f"recipes.{recipe}.train.num_classes: cannot be checked ({e})")
            continue
        if expected is not None and train["num_classes"] != expected:
            problems.append(f"recipes.{recipe}.train.num_classes: {train['num_classes']}, "
                            f"expected {expected} ({why})")
    for recipe in ("mnist_lenet5", "imagenet8_alexnet", "tiny_imagenet_resnet18"):
        if recipe in recipes:
            problems += _train_problems(recipe, recipes[recipe])
    return problems


def raw_paths(datasets: dict) -> dict[str, str]:
    """The raw paths the rules read, by dotted params.yaml key (the ILSVRC label files its
    `labels` source names)."""
    ilsvrc = datasets["ilsvrc_val"]
    labels = ["devkit"] if ilsvrc["labels"] == "devkit" else ["caffe_val", "synset_words", "devkit"]
    paths = {"mnist.raw_dir": datasets["mnist"]["raw_dir"], "imagenet8.raw": datasets["imagenet8"]["raw"],
             "ilsvrc_val.images": ilsvrc["images"], "tiny_imagenet.raw": datasets["tiny_imagenet"]["raw"],
             "dog_breed.raw": datasets["dog_breed"]["raw"]}
    paths |= {f"ilsvrc_val.{key}": ilsvrc[key] for key in labels if ilsvrc.get(key)}
    return {f"datasets.{key}": path for key, path in paths.items()}


def raw_path_problems(datasets: dict, made) -> list[str]:
    """A line for each raw path that does not exist and is not (a folder of) a file in `made`
    (the outputs of the rules that make the demo data)."""
    made = [str(Path(f)) for f in made]
    return [f"{key}: {path} does not exist" for key, path in raw_paths(datasets).items()
            if not Path(path).exists() and not any(
                f == str(Path(path)) or f.startswith(str(Path(path)) + "/") for f in made)]


def config_problems(config: dict, schema_path) -> list[str]:
    """Schema problems, or (when the schema holds) the semantic ones."""
    return schema_problems(config, schema_path) or semantic_problems(config)
