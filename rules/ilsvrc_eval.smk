"""ilsvrc_alexnet_eval: ILSVRC2012 val tar + devkit (or Caffe val.txt + synset_words.txt) -> val
table in the model's class order -> 1/5/10-crop top-1/top-5 error of an AlexNet."""
import os

ILSVRC = config["datasets"]["ilsvrc_val"]
ILSVRC_WEIGHTS = config["recipes"]["ilsvrc_alexnet_eval"]["weights"]
# the val tar is extracted once (its sha256 listing stands for the folder); a folder is read in
# place (its state file stands for it)
ILSVRC_IMAGES_INPUT = raw_images_input("ilsvrc_val", ILSVRC["images"], "data/ilsvrc_val/sha256sums.txt")
ILSVRC_IMAGES = images_folder(ILSVRC["images"], "ilsvrc_val_extract")  # a param
# the label files, named as write_ilsvrc_val_table.py's flags (with Caffe's files, a devkit only adds IDs)
ILSVRC_LABELS = {"devkit": ILSVRC["devkit"]} if ILSVRC["labels"] == "devkit" else {
    "caffe_val": ILSVRC["caffe_val"], "synset_words": ILSVRC["synset_words"],
    **({"devkit": ILSVRC["devkit"]} if ILSVRC.get("devkit") else {})}
# a trained imgdag model names its classes (the table follows them); the 1,000-class AlexNets
# use the sorted-WNID order (= synset_words.txt), the table's default
ILSVRC_CLASSES = "data/ilsvrc_alexnet_eval/classes.txt"
ILSVRC_OWN_CLASSES = ILSVRC_WEIGHTS["source"] == "imagenet8_checkpoint"
# the val table's inputs besides the images, and the arguments naming them
ILSVRC_TABLE_INPUTS = {**ILSVRC_LABELS, **({"classes": ILSVRC_CLASSES} if ILSVRC_OWN_CLASSES else {})}
ILSVRC_TABLE_ARGS = "".join(f" --{name.replace('_', '-')} {{input.{name}:q}}" for name in ILSVRC_TABLE_INPUTS)
ILSVRC_MODEL = ("data/ilsvrc_alexnet_eval/caffe_alexnet.pth" if ILSVRC_WEIGHTS["source"] == "caffe_npy"
                else ILSVRC_WEIGHTS["path"])
# the registered model the weights build (imgdag/model_registry.py): its module is the rules' code
ILSVRC_MODEL_NAME = {"imagenet8_checkpoint": recipe_model("imagenet8_alexnet"), "torchvision": "alexnet",
                     "caffe_npy": "caffe_alexnet"}[ILSVRC_WEIGHTS["source"]]
ILSVRC_OUT = "results/ilsvrc_alexnet_eval"


rule demo_ilsvrc_val:
    input:
        code("scripts/make_demo.py", "imgdag/demo/ilsvrc.py"),
    output:
        "data/demo/ilsvrc_val/ILSVRC2012_img_val.tar",
        "data/demo/ilsvrc_val/ILSVRC2012_devkit_t12.tar.gz",
        "data/demo/ilsvrc_val/caffe_ilsvrc12/val.txt",
        "data/demo/ilsvrc_val/caffe_ilsvrc12/synset_words.txt",
    params:
        folder=lambda w, output: os.path.dirname(output[0]),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/demo_ilsvrc_val.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/make_demo.py ilsvrc_val {params.folder:q} > {log:q} 2>&1"


rule ilsvrc_val_extract:
    input:
        archive=ILSVRC["images"],
        code=code("scripts/extract_archive.py"),
    output:
        images=directory("data/ilsvrc_val/images"),
        listing="data/ilsvrc_val/sha256sums.txt",
    params:
        max_gib=section("checks.archive_max_gib"),
        max_ratio=section("checks.archive_max_ratio"),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/ilsvrc_val_extract.log",
    resources:
        mem_mb=1000,
        runtime=60,
    shell:
        "python scripts/extract_archive.py --archive {input.archive:q} --out {output.images:q}"
        " --listing {output.listing:q} --max-gib {params.max_gib:q} --max-ratio {params.max_ratio:q} > {log:q} 2>&1"


rule ilsvrc_alexnet_classes:
    input:
        model=ILSVRC_WEIGHTS["path"],
        code=code("scripts/model_classes.py", models=[ILSVRC_MODEL_NAME]),
    output:
        ILSVRC_CLASSES,
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/ilsvrc_alexnet_classes.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/model_classes.py --model {input.model:q} --out {output:q} > {log:q} 2>&1"


rule ilsvrc_alexnet_val_table:
    input:
        images=ILSVRC_IMAGES_INPUT,
        **ILSVRC_TABLE_INPUTS,
        code=code("scripts/write_ilsvrc_val_table.py"),
    output:
        "data/ilsvrc_alexnet_eval/val.csv",
    params:
        dataset=section("datasets.ilsvrc_val"),  # a change of label source reruns the table
        images=ILSVRC_IMAGES,
        bad_images=section("checks.bad_images"),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/ilsvrc_alexnet_val_table.log",
    resources:
        mem_mb=1000,
        runtime=10,
    threads: 2  # processes checking that the images decode
    shell:
        f"python scripts/write_ilsvrc_val_table.py{ILSVRC_TABLE_ARGS}"
        " --images {params.images:q} --bad-images {params.bad_images:q} --workers {threads}"
        " --out {output:q} > {log:q} 2>&1"


rule ilsvrc_alexnet_caffe_weights:
    input:
        npy=ILSVRC_WEIGHTS["path"],
        code=code("scripts/convert_caffe_alexnet.py"),
    output:
        "data/ilsvrc_alexnet_eval/caffe_alexnet.pth",
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/ilsvrc_alexnet_caffe_weights.log",
    resources:
        mem_mb=4000,
        runtime=20,
    shell:
        "python scripts/convert_caffe_alexnet.py {input.npy:q} {output:q} > {log:q} 2>&1"


rule ilsvrc_alexnet_crops:
    input:
        images=ILSVRC_IMAGES_INPUT,
        table="data/ilsvrc_alexnet_eval/val.csv",
        model=ILSVRC_MODEL,
        code=code("scripts/evaluate_crops.py", models=[ILSVRC_MODEL_NAME]),
    output:
        metrics=report(metrics(f"{ILSVRC_OUT}/metrics.json"), caption="../report/metrics.rst",
                       category="ilsvrc_alexnet_eval"),
        run_info=f"{ILSVRC_OUT}/run_info.json",
        predictions=f"{ILSVRC_OUT}/predictions.csv",
    params:
        torch_threads=section("compute.torch_threads"),  # float sums depend on it
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
        recipe=section("recipes.ilsvrc_alexnet_eval"),
        images=ILSVRC_IMAGES,
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/ilsvrc_alexnet_crops.log",
    resources:
        mem_mb=16000,
        runtime=240,
        gpu=GPUS_PER_JOB,
    threads: 4  # CPU cores in all (torch threads + loader workers); Snakemake lowers it to --cores when smaller
    shell:
        "python scripts/evaluate_crops.py --table {input.table:q} --images {params.images:q}"
        " --model {input.model:q} --params {params.recipe:q} --metrics-out {output.metrics:q}"
        " --run-info-out {output.run_info:q} --predictions-out {output.predictions:q}"
        " --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} > {log:q} 2>&1"
