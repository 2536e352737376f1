"""imgdag: every recipe's conversions, training and evaluation as one DAG.

params.yaml is the one config (DVC reads it too); rules/*.smk hold one stage family each.
"""
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.18")
sys.path.insert(0, workflow.basedir)
from imgdag.config import config_problems, raw_path_problems  # noqa: E402


configfile: "params.yaml"


# a short message naming key, value and what is allowed, before any job starts
problems = config_problems(config, f"{workflow.basedir}/schemas/params.schema.yaml")
if problems:
    raise WorkflowError("the config (params.yaml, --configfile, --config) is not valid:\n  "
                        + "\n  ".join(problems))


include: "rules/common.smk"
include: "rules/mnist.smk"
include: "rules/imagenet8.smk"
include: "rules/ilsvrc_eval.smk"
include: "rules/tiny_imagenet.smk"
include: "rules/dog_breed.smk"


include: "rules/datasets.smk"


# One target rule per recipe (`snakemake --cores N mnist_lenet5`); dvc.yaml gets a stage of the
# same name (`dvc repro mnist_lenet5`, `dvc exp run mnist_lenet5`).
RECIPE_TARGETS = {
    "mnist_lenet5": [f"{MNIST_OUT}/metrics.json", f"{MNIST_OUT}/predictions.csv"],
    "imagenet8_alexnet": [f"{IMAGENET8_OUT}/metrics.json", f"{IMAGENET8_OUT}/confusion.csv"],
    "ilsvrc_alexnet_eval": [f"{ILSVRC_OUT}/metrics.json", f"{ILSVRC_OUT}/predictions.csv"],
    "tiny_imagenet_resnet18": [f"{TINY_OUT}/metrics.json", f"{TINY_OUT}/predictions.csv"],
    "dog_breed_transfer": [f"{DOG_OUT}/metrics.json", f"{DOG_OUT}/submission.csv"],
}


for recipe, files in RECIPE_TARGETS.items():

    rule:
        name:
            recipe
        input:
            files,
            DATASETS_CHECKED,
        localrule: True


if DVC_DESCRIBE:  # what dvc.yaml marks, for scripts/write_dvc_yaml.py (imgdag/dvcgen.py)
    from imgdag.atomic import atomic_open  # noqa: E402

    with atomic_open(DVC_DESCRIBE, "w") as f:
        json.dump({"metrics": sorted(DVC_METRICS), "plots": DVC_PLOTS,
                   "recipes": RECIPE_TARGETS, "datasets": config["datasets"],
                   "datasets_checked": DATASETS_CHECKED}, f)


rule demo:  # every demo dataset (also when params.yaml points a recipe at real data)
    input:
        [r.output for r in DEMO_RULES],
    localrule: True


rule all:
    input:
        [RECIPE_TARGETS[recipe] for recipe in RECIPE_TARGETS],
        DATASETS_CHECKED,
    default_target: True


rule unknown_target:  # a bare word (no slash, no dot) that no rule makes: an error naming the recipes
    input:
        lambda wildcards: not_a_target(wildcards.target, RECIPE_TARGETS),
    output:
        "{target}",
    wildcard_constraints:
        target=r"[^/.]+",
    localrule: True
