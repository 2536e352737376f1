"""imagenet8_alexnet: ImageNet class folders (a folder or tar) -> CNTK map files -> (RecordIO
.rec + .idx packed from them, with data.format rec) -> AlexNet from scratch -> top-1/top-5."""
import os

IMAGENET8_RAW = config["datasets"]["imagenet8"]["raw"]
# an archive is extracted once into data/imagenet8/images, whose sha256 listing stands for it
# as an input; a folder is read where it is, its state file standing for it. Map paths are
# relative to the images folder.
IMAGENET8_IMAGES_INPUT = raw_images_input("imagenet8", IMAGENET8_RAW, "data/imagenet8/sha256sums.txt")
IMAGENET8_IMAGES = images_folder(IMAGENET8_RAW, "imagenet8_extract")  # a param
IMAGENET8_OUT = "results/imagenet8_alexnet"
IMAGENET8_FORMAT = config["recipes"]["imagenet8_alexnet"]["data"]["format"]


# the data of imagenet8_train and imagenet8_evaluate, by data.format: each rule's inputs, params
# and the script arguments naming them (each split's .rec, or its map file and the image folder)
if IMAGENET8_FORMAT == "rec":
    IMAGENET8_DATA = {rule: {f"{s}_{ext}": f"data/imagenet8/{s}.{ext}" for s in splits for ext in ("rec", "idx")}
                      for rule, splits in (("train", ("train", "val")), ("evaluate", ("val",)))}
    IMAGENET8_DATA_PARAMS = {}
    IMAGENET8_DATA_ARGS = {"train": " --train-rec {input.train_rec:q} --val-rec {input.val_rec:q}",
                           "evaluate": " --test-rec {input.val_rec:q}"}
else:
    IMAGENET8_DATA = {rule: {**{f"{s}_map": f"data/imagenet8/{s}_map.txt" for s in splits},
                             "images": IMAGENET8_IMAGES_INPUT}
                      for rule, splits in (("train", ("train", "val")), ("evaluate", ("val",)))}
    IMAGENET8_DATA_PARAMS = {"images": IMAGENET8_IMAGES}
    IMAGENET8_DATA_ARGS = {
        "train": " --train-map {input.train_map:q} --val-map {input.val_map:q} --image-root {params.images:q}",
        "evaluate": " --test-map {input.val_map:q} --image-root {params.images:q}"}


rule demo_imagenet8:
    input:
        code("scripts/make_demo.py", "imgdag/demo/imagenet.py"),
    output:
        "data/demo/imagenet8/imagenet-8.tar",
    params:
        folder=lambda w, output: os.path.dirname(output[0]),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/demo_imagenet8.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/make_demo.py imagenet8 {params.folder:q} > {log:q} 2>&1"


rule imagenet8_extract:
    input:
        archive=IMAGENET8_RAW,
        code=code("scripts/extract_archive.py"),
    output:
        images=directory("data/imagenet8/images"),
        listing="data/imagenet8/sha256sums.txt",
    params:
        max_gib=section("checks.archive_max_gib"),
        max_ratio=section("checks.archive_max_ratio"),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/imagenet8_extract.log",
    resources:
        mem_mb=1000,
        runtime=60,
    shell:
        "python scripts/extract_archive.py --archive {input.archive:q} --out {output.images:q}"
        " --listing {output.listing:q} --max-gib {params.max_gib:q} --max-ratio {params.max_ratio:q} > {log:q} 2>&1"


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
        out=lambda w, output: os.path.dirname(output.classes),
        empty_classes=section("checks.empty_classes"),
        bad_images=section("checks.bad_images"),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/imagenet8_maps.log",
    resources:
        mem_mb=1000,
        runtime=20,
    threads: 2  # processes checking that the images decode
    shell:
        "python scripts/write_cntk_maps.py --raw {params.images:q} --out {params.out:q}"
        " --empty-classes {params.empty_classes:q} --bad-images {params.bad_images:q} --workers {threads}"
        " > {log:q} 2>&1"


rule imagenet8_rec:
    input:
        images=IMAGENET8_IMAGES_INPUT,  # the images the map names
        map="data/imagenet8/{split}_map.txt",
        lst_code=code("scripts/make_lst.py"),
        rec_code=code("scripts/make_rec.py"),
    output:
        lst="data/imagenet8/{split}.lst",
        rec="data/imagenet8/{split}.rec",
        idx="data/imagenet8/{split}.idx",
    wildcard_constraints:
        split="train|val",
    params:
        pack=section("recipes.imagenet8_alexnet.data.rec"),
        flags=cli_flags("recipes.imagenet8_alexnet.data.rec"),
        images=IMAGENET8_IMAGES,
        prefix=lambda w, output: output.lst.removesuffix(".lst"),  # make_lst.py writes PREFIX.lst
        bad_images=section("checks.bad_images"),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/imagenet8_rec_{split}.log",
    resources:
        mem_mb=1000,  # packing streams: bounded whatever the dataset's size
        runtime=240,
    threads: 2
    shell:
        "(python scripts/make_lst.py {params.prefix:q} --from-map {input.map:q}"
        " && python scripts/make_rec.py {output.lst:q} {params.images:q} {params.flags}"
        " --rec {output.rec:q} --idx {output.idx:q} --num-workers {threads} --bad-images {params.bad_images:q}"
        " --images-checked)"  # the map writer checked them (checks.bad_images)
        " > {log:q} 2>&1"


rule imagenet8_train:
    input:
        **IMAGENET8_DATA["train"],
        classes="data/imagenet8/classes.txt",
        code=code("scripts/train.py", models=[recipe_model("imagenet8_alexnet")]),
    output:
        model=f"{IMAGENET8_OUT}/model.pt",
        log_csv=plot(f"{IMAGENET8_OUT}/train_log.csv", x="epoch",
                     y=["train_loss", "val_loss", "train_top1", "val_top1", "val_top5"]),
        curves=report(f"{IMAGENET8_OUT}/curves.png", caption="../report/curves.rst",
                      category="imagenet8_alexnet"),
    params:
        train=section("recipes.imagenet8_alexnet.train"),
        data=section("recipes.imagenet8_alexnet.data.format"),  # the inputs follow it: a change reruns
        **IMAGENET8_DATA_PARAMS,
        checkpoints=lambda w, output: os.path.join(os.path.dirname(output.model), "checkpoints"),
        torch_threads=section("compute.torch_threads"),  # a rule param: a new count reruns training
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
    conda:
        "../envs/imgdag.yaml"
    log:
        job="logs/imagenet8_train.log",
        times=f"{IMAGENET8_OUT}/train_times.csv",  # seconds per epoch: wall-clock, versioned by neither git nor DVC
    resources:
        mem_mb=16000,
        runtime=720,
        gpu=GPUS_PER_JOB,
    threads: 4  # CPU cores in all (torch threads + loader workers); Snakemake lowers it to --cores when smaller
    # checkpoints are not outputs: Snakemake deletes a failed job's outputs, and a killed
    # run must find them to resume
    # one line per epoch on the terminal (and in the log); no progress bars
    shell:
        f"TQDM_DISABLE=1 python scripts/train.py{IMAGENET8_DATA_ARGS['train']}"
        " --classes {input.classes:q} --params {params.train:q}"
        " --model-out {output.model:q} --log-csv {output.log_csv:q} --times-csv {log.times:q} --curves-png {output.curves:q}"
        " --checkpoint-dir {params.checkpoints:q} --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} 2>&1 | tee {log.job:q}"


rule imagenet8_evaluate:
    input:
        **IMAGENET8_DATA["evaluate"],
        model=f"{IMAGENET8_OUT}/model.pt",
        code=code("scripts/evaluate.py", models=[recipe_model("imagenet8_alexnet")]),
    output:
        metrics=report(metrics(f"{IMAGENET8_OUT}/metrics.json"), caption="../report/metrics.rst",
                       category="imagenet8_alexnet"),
        per_class=report(f"{IMAGENET8_OUT}/per_class_accuracy.json",
                         caption="../report/per_class.rst", category="imagenet8_alexnet"),
        confusion=report(f"{IMAGENET8_OUT}/confusion.csv", caption="../report/confusion.rst",
                         category="imagenet8_alexnet"),
        classified=plot(f"{IMAGENET8_OUT}/classified.csv", x="actual", y="predicted",
                        template="confusion"),
    params:
        torch_threads=section("compute.torch_threads"),  # float sums depend on it
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
        evaluate=section("recipes.imagenet8_alexnet.evaluate"),
        data=section("recipes.imagenet8_alexnet.data.format"),  # the inputs follow it: a change reruns
        **IMAGENET8_DATA_PARAMS,
    conda:
        "../envs/imgdag.yaml"
    log:
        job="logs/imagenet8_evaluate.log",
        latency=f"{IMAGENET8_OUT}/latency.json",  # forward timings and device: wall-clock, versioned by neither git nor DVC
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=GPUS_PER_JOB,
    threads: 4  # CPU cores in all (torch threads + loader workers); Snakemake lowers it to --cores when smaller
    shell:
        f"python scripts/evaluate.py --model {{input.model:q}}{IMAGENET8_DATA_ARGS['evaluate']}"
        " --params {params.evaluate:q} --split val --metrics-out {output.metrics:q}"
        " --confusion-out {output.confusion:q}"
        " --per-class-out {output.per_class:q} --latency-out {log.latency:q}"
        " --classified-out {output.classified:q} --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} > {log.job:q} 2>&1"
