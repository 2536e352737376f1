"""imgdag: every recipe's conversions, training and evaluation as one DAG.

params.yaml is the one config (DVC reads it too); rules/*.smk hold one stage family each.
"""
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.18")
sys.path.insert(0, workflow.basedir)
from imgdag.config import config_problems, raw_path_problems  # noqa: E402
from imgdag.smoke import link_sources, read_from_project, smoke_dir, subset_problem  # noqa: E402


configfile: "params.yaml"


# `--config subset=N`: a smoke run, N images per class, in smoke/subset-N (imgdag/smoke.py);
# not a params.yaml key, so DVC's stages and the full run's params do not see it
SUBSET = config.pop("subset", None)
# a short message naming key, value and what is allowed, before any job starts
problems = ([subset_problem(SUBSET)] if SUBSET is not None and subset_problem(SUBSET) else []) + \
    config_problems(config, f"{workflow.basedir}/schemas/params.schema.yaml")
if problems:
    raise WorkflowError("the config (params.yaml, --configfile, --config) is not valid:\n  "
                        + "\n  ".join(problems))
if SUBSET is not None:
    read_from_project(config, Path.cwd())
    link_sources(Path.cwd() / smoke_dir(SUBSET), Path.cwd())

    workdir: smoke_dir(SUBSET)


include: "rules/common.smk"
include: "rules/storage.smk"
include: "rules/mnist.smk"
include: "rules/imagenet8.smk"
include: "rules/ilsvrc_eval.smk"
include: "rules/tiny_imagenet.smk"
include: "rules/dog_breed.smk"
include: "rules/raw_state.smk"  # after the recipes: they name their raw folders


include: "rules/datasets.smk"


# One target rule per recipe (`snakemake --cores N mnist_lenet5`); dvc.yaml gets a stage of the
# same name (`dvc repro mnist_lenet5`, `dvc exp run mnist_lenet5`). A recipe's targets are every
# output of its result jobs (model, logs, plots, metrics), so a deleted plot or training log is
# rebuilt by Snakemake as by DVC (whose stages rerun when any of their outputs is missing).
# The targets are the rules' output objects, not their text: with a default storage provider
# (profiles/kubernetes) an output's text is its local copy under .snakemake/storage, and only
# the object keeps its place in the storage.
RESULT_RULES = {
    "mnist_lenet5": [rules.mnist_train, rules.mnist_evaluate, rules.mnist_predict],
    "imagenet8_alexnet": [rules.imagenet8_train, rules.imagenet8_evaluate],
    "ilsvrc_alexnet_eval": [rules.ilsvrc_alexnet_crops],
    "tiny_imagenet_resnet18": [rules.tiny_train, rules.tiny_evaluate, rules.tiny_predict],
    "dog_breed_transfer": [rules.dog_head],
}
RECIPE_TARGETS = {recipe: [f for rule in result_rules for f in rule.output]
                  for recipe, result_rules in RESULT_RULES.items()}


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

    # each rule's params.yaml keys: its section() params, used by its command or not (a key a
    # rule reads only to rerun, such as imagenet8_train's data format); a param that is a
    # function of the wildcards names its key in the job's command
    rule_params = {rule.name: sorted({p.key for p in rule.params if isinstance(p, ParamSection)})
                   for rule in workflow.rules}
    with atomic_open(DVC_DESCRIBE, "w") as f:
        json.dump({"metrics": sorted(DVC_METRICS), "plots": DVC_PLOTS, "params": rule_params,
                   "recipes": {recipe: list(map(str, files))
                               for recipe, files in RECIPE_TARGETS.items()},
                   "datasets": config["datasets"],
                   "raw_states": sorted(raw_state_file(dataset) for dataset in RAW_FOLDERS),
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
