"""imgdag: every recipe's conversions, training and evaluation as one DAG.

params.yaml is the one config (DVC reads it too); rules/*.smk hold one stage family each.
"""
from snakemake.utils import min_version, validate

min_version("9.18")


configfile: "params.yaml"


validate(config, "schemas/params.schema.yaml")


include: "rules/common.smk"
include: "rules/mnist.smk"
include: "rules/imagenet8.smk"
include: "rules/ilsvrc_eval.smk"
include: "rules/tiny_imagenet.smk"
include: "rules/dog_breed.smk"


rule all:
    input:
        "results/mnist_lenet5/metrics.json",
        "results/mnist_lenet5/predictions.csv",
        "results/imagenet8_alexnet/metrics.json",
        "results/imagenet8_alexnet/confusion.csv",
        "results/ilsvrc_alexnet_eval/metrics.json",
        "results/ilsvrc_alexnet_eval/predictions.csv",
        "results/tiny_imagenet_resnet18/metrics.json",
        "results/tiny_imagenet_resnet18/predictions.csv",
        "results/dog_breed_transfer/metrics.json",
        "results/dog_breed_transfer/submission.csv",
    default_target: True
