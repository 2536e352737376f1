"""imagenet8_alexnet: ImageNet class folders (a folder or tar) -> CNTK map files -> AlexNet from
scratch, reading the map files -> top-1/top-5 metrics."""
import os

IMAGENET8_RAW = config["datasets"]["imagenet8"]["raw"]
# an archive is extracted once into data/imagenet8/images, whose sha256 listing stands for it
# as an input; a folder is read where it is. Map paths are relative to IMAGENET8_IMAGES.
IMAGENET8_IMAGES = IMAGENET8_RAW if os.path.isdir(IMAGENET8_RAW) else "data/imagenet8/images"
IMAGENET8_IMAGES_INPUT = IMAGENET8_RAW if os.path.isdir(IMAGENET8_RAW) else "data/imagenet8/sha256sums.txt"
IMAGENET8_OUT = "results/imagenet8_alexnet"


rule demo_imagenet8:
    input:
        code("scripts/make_demo.py"),
    output:
        "data/demo/imagenet8/imagenet-8.tar",
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/demo_imagenet8.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/make_demo.py imagenet8 data/demo/imagenet8 > {log} 2>&1"


rule imagenet8_extract:
    input:
        archive=IMAGENET8_RAW,
        code=code("scripts/extract_archive.py"),
    output:
        images=directory("data/imagenet8/images"),
        listing="data/imagenet8/sha256sums.txt",
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/imagenet8_extract.log",
    resources:
        mem_mb=1000,
        runtime=60,
    shell:
        "python scripts/extract_archive.py --archive {input.archive} --out {output.images}"
        " --listing {output.listing} > {log} 2>&1"


rule imagenet8_maps:
    input:
        images=IMAGENET8_IMAGES_INPUT,
        code=code("scripts/write_cntk_maps.py"),
    output:
        train_map="data/imagenet8/train_map.txt",
        val_map="data/imagenet8/val_map.txt",
        classes="data/imagenet8/classes.txt",
    params:
        images=IMAGENET8_IMAGES,
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/imagenet8_maps.log",
    resources:
        mem_mb=1000,
        runtime=20,
    shell:
        "python scripts/write_cntk_maps.py --raw {params.images} --out data/imagenet8 > {log} 2>&1"


rule imagenet8_train:
    input:
        IMAGENET8_IMAGES_INPUT,  # the images the maps name
        train_map="data/imagenet8/train_map.txt",
        val_map="data/imagenet8/val_map.txt",
        classes="data/imagenet8/classes.txt",
        code=code("scripts/train.py"),
    output:
        model=f"{IMAGENET8_OUT}/model.pt",
        log_csv=plot(f"{IMAGENET8_OUT}/train_log.csv", x="epoch",
                     y=["train_loss", "val_loss", "train_top1", "val_top1", "val_top5"]),
        curves=f"{IMAGENET8_OUT}/curves.png",
    params:
        train=section("recipes.imagenet8_alexnet.train"),
        images=IMAGENET8_IMAGES,
        checkpoints=f"{IMAGENET8_OUT}/checkpoints",
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/imagenet8_train.log",
    resources:
        mem_mb=16000,
        runtime=720,
        gpu=GPUS_PER_JOB,
    threads: 4  # torch intra-op threads; Snakemake lowers it to --cores when that is smaller
    # checkpoints are not outputs: Snakemake deletes a failed job's outputs, and a killed
    # run must find them to resume
    shell:
        "python scripts/train.py --train-map {input.train_map} --val-map {input.val_map}"
        " --image-root {params.images} --classes {input.classes} --params {params.train:q}"
        " --model-out {output.model} --log-csv {output.log_csv} --curves-png {output.curves}"
        " --checkpoint-dir {params.checkpoints} --threads {threads} > {log} 2>&1"


rule imagenet8_evaluate:
    input:
        IMAGENET8_IMAGES_INPUT,
        val_map="data/imagenet8/val_map.txt",
        model=f"{IMAGENET8_OUT}/model.pt",
        code=code("scripts/evaluate.py"),
    output:
        metrics=metrics(f"{IMAGENET8_OUT}/metrics.json"),
        confusion=f"{IMAGENET8_OUT}/confusion.csv",
    params:
        evaluate=section("recipes.imagenet8_alexnet.evaluate"),
        images=IMAGENET8_IMAGES,
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/imagenet8_evaluate.log",
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=GPUS_PER_JOB,
    threads: 4  # torch intra-op threads; Snakemake lowers it to --cores when that is smaller
    shell:
        "python scripts/evaluate.py --model {input.model} --test-map {input.val_map}"
        " --image-root {params.images} --params {params.evaluate:q} --metrics-out {output.metrics}"
        " --confusion-out {output.confusion} --threads {threads} > {log} 2>&1"
