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
def refuse(problems):
    if problems:
        raise WorkflowError("the config (params.yaml, --configfile, --config) is not valid:\n  "
                            + "\n  ".join(problems))


refuse(config_problems(config, f"{workflow.basedir}/schemas/params.schema.yaml"))


include: "rules/common.smk"
include: "rules/mnist.smk"
include: "rules/imagenet8.smk"
include: "rules/ilsvrc_eval.smk"
include: "rules/tiny_imagenet.smk"
include: "rules/dog_breed.smk"


DEMO_RULES = [rules.demo_mnist, rules.demo_imagenet8, rules.demo_ilsvrc_val,
              rules.demo_tiny_imagenet, rules.demo_dog_breed]
# a raw path must exist (or be demo data a rule makes), even when the outputs it fed exist; on a
# default storage provider (profiles/kubernetes) paths name storage objects, which Snakemake checks
if workflow.storage_settings.default_storage_provider is None:
    refuse(raw_path_problems(config["datasets"], [f for r in DEMO_RULES for f in r.output]))
DATASETS_CHECKED = "data/datasets.checked"


# Stable content, rewritten when params.yaml's datasets change: DVC's stages that read raw data
# depend on it (imgdag/dvcgen.py), so a raw path that does not exist stops `dvc repro` here, with
# the key named, before DVC looks at the missing file. The check is the Snakefile's own (above);
# the command names the section (`:` takes it and does nothing) so that dvc.yaml lists it.
rule datasets_checked:
    params:
        datasets=section("datasets"),
    output:
        DATASETS_CHECKED,
    log:
        "logs/datasets_checked.log",
    localrule: True
    shell:
        ": {params.datasets:q}; echo 'params.yaml datasets: every raw path exists' > {output} 2> {log}"


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
