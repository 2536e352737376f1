"""tiny_imagenet_resnet18: tiny-imagenet-200.zip -> index tables -> uint8 caches -> ResNet-18 ->
val top-1/top-5 metrics and test predictions."""
import os

TINY_RAW = config["datasets"]["tiny_imagenet"]["raw"]
# the jobs read a zip as their input (with a storage provider, its local copy), a folder in
# place as a param (its state file their input)
TINY_RAW_INPUT = raw_images_input("tiny_imagenet", TINY_RAW, TINY_RAW)
TINY_RAW_PARAMS = {"raw": TINY_RAW} if os.path.isdir(TINY_RAW) else {}
TINY_RAW_ARG = "{params.raw:q}" if TINY_RAW_PARAMS else "{input.raw:q}"
TINY_OUT = "results/tiny_imagenet_resnet18"


rule demo_tiny_imagenet:
    input:
        code("scripts/make_demo.py", "imgdag/demo/tiny_imagenet.py"),
    output:
        "data/demo/tiny_imagenet/tiny-imagenet-200.zip",
    params:
        folder=lambda w, output: os.path.dirname(output[0]),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/demo_tiny_imagenet.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/make_demo.py tiny_imagenet {params.folder:q} > {log:q} 2>&1"


rule tiny_index:
    input:
        raw=TINY_RAW_INPUT,
        code=code("scripts/write_tiny_index.py"),
    output:
        "data/tiny_imagenet/index/train.csv",
        "data/tiny_imagenet/index/val.csv",
        "data/tiny_imagenet/index/test.csv",
        classes="data/tiny_imagenet/index/classes.txt",
    params:
        out=lambda w, output: os.path.dirname(output.classes),
        empty_classes=section("checks.empty_classes"),
        **TINY_RAW_PARAMS,
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/tiny_index.log",
    resources:
        mem_mb=2000,
        runtime=30,
    threads: 1  # reads the layout; the cache step's decode checks the images
    shell:
        f"python scripts/write_tiny_index.py --raw {TINY_RAW_ARG}" " --out {params.out:q}"
        " --empty-classes {params.empty_classes:q} > {log:q} 2>&1"


rule tiny_array:
    input:
        raw=TINY_RAW_INPUT,
        index="data/tiny_imagenet/index/{split}.csv",
        code=code("scripts/tiny_to_array.py"),
    output:
        images="data/tiny_imagenet/cache/{split}.images.npy",
        labels="data/tiny_imagenet/cache/{split}.labels.npy",
        index="data/tiny_imagenet/cache/{split}.index.csv",
    wildcard_constraints:
        split="train|val|test",
    params:
        cache=lambda w, output: cache_stem(output.images),
        bad_images=section("checks.bad_images"),
        empty_classes=section("checks.empty_classes"),
        **TINY_RAW_PARAMS,
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/tiny_array_{split}.log",
    resources:
        mem_mb=4000,
        runtime=60,
    threads: 2  # processes decoding (and so checking) the images
    shell:
        f"python scripts/tiny_to_array.py --raw {TINY_RAW_ARG}" " --index {input.index:q}"
        " --out {params.cache:q} --bad-images {params.bad_images:q}"
        " --empty-classes {params.empty_classes:q} --workers {threads} > {log:q} 2>&1"


rule tiny_train:
    input:
        train_images="data/tiny_imagenet/cache/train.images.npy",
        train_labels="data/tiny_imagenet/cache/train.labels.npy",
        val_images="data/tiny_imagenet/cache/val.images.npy",
        val_labels="data/tiny_imagenet/cache/val.labels.npy",
        classes="data/tiny_imagenet/index/classes.txt",
        code=code("scripts/train.py", models=[recipe_model("tiny_imagenet_resnet18")]),
    output:
        model=f"{TINY_OUT}/model.pt",
        log_csv=plot(f"{TINY_OUT}/train_log.csv", x="epoch",
                     y=["train_loss", "val_loss", "train_top1", "val_top1", "val_top5"]),
        curves=report(f"{TINY_OUT}/curves.png", caption="../report/curves.rst",
                      category="tiny_imagenet_resnet18"),
    params:
        train=section("recipes.tiny_imagenet_resnet18.train"),
        train_cache=lambda w, input: cache_stem(input.train_images),
        val_cache=lambda w, input: cache_stem(input.val_images),
        checkpoints=lambda w, output: os.path.join(os.path.dirname(output.model), "checkpoints"),
        torch_threads=section("compute.torch_threads"),  # a rule param: a new count reruns training
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
    conda:
        "../envs/imgdag.yaml"
    log:
        job="logs/tiny_train.log",
        times=f"{TINY_OUT}/train_times.csv",  # seconds per epoch: wall-clock, versioned by neither git nor DVC
    resources:
        mem_mb=12000,
        runtime=720,
        gpu=GPUS_PER_JOB * TRAIN_PROCESSES,  # one per process
        nodes=DISTRIBUTED["nnodes"],
    threads: cache_train_threads()  # torch's threads (no loader workers)
    # checkpoints are not outputs: Snakemake deletes a failed job's outputs, and a killed
    # run must find them to resume
    # one line per epoch on the terminal (and in the log); no progress bars
    shell:
        f"TQDM_DISABLE=1 {train_launcher()} scripts/train.py --train-cache {{params.train_cache:q}}"
        " --val-cache {params.val_cache:q} --classes {input.classes:q}"
        " --params {params.train:q} --model-out {output.model:q} --log-csv {output.log_csv:q}"
        " --times-csv {log.times:q} --curves-png {output.curves:q} --checkpoint-dir {params.checkpoints:q}"
        " --threads {threads} --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} 2>&1 | tee {log.job:q}"


rule tiny_evaluate:
    input:
        test_images="data/tiny_imagenet/cache/val.images.npy",
        test_labels="data/tiny_imagenet/cache/val.labels.npy",
        model=f"{TINY_OUT}/model.pt",
        code=code("scripts/evaluate.py", models=[recipe_model("tiny_imagenet_resnet18")]),
    output:
        metrics=report(metrics(f"{TINY_OUT}/metrics.json"), caption="../report/metrics.rst",
                       category="tiny_imagenet_resnet18"),
        per_class=report(f"{TINY_OUT}/per_class_accuracy.json",
                         caption="../report/per_class.rst", category="tiny_imagenet_resnet18"),
        confusion=report(f"{TINY_OUT}/confusion.csv", caption="../report/confusion.rst",
                         category="tiny_imagenet_resnet18"),
        classified=plot(f"{TINY_OUT}/classified.csv", x="actual", y="predicted",
                        template="confusion"),
    params:
        torch_threads=section("compute.torch_threads"),  # float sums depend on it
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
        evaluate=section("recipes.tiny_imagenet_resnet18.evaluate"),
        test_cache=lambda w, input: cache_stem(input.test_images),
    conda:
        "../envs/imgdag.yaml"
    log:
        job="logs/tiny_evaluate.log",
        latency=f"{TINY_OUT}/latency.json",  # forward timings and device: wall-clock, versioned by neither git nor DVC
    resources:
        mem_mb=8000,
        runtime=30,
        gpu=GPUS_PER_JOB,
    threads: 4  # CPU cores in all (torch threads + loader workers); Snakemake lowers it to --cores when smaller
    shell:
        "python scripts/evaluate.py --model {input.model:q}"
        " --test-cache {params.test_cache:q} --params {params.evaluate:q}"
        " --split val --metrics-out {output.metrics:q} --confusion-out {output.confusion:q}"
        " --per-class-out {output.per_class:q} --latency-out {log.latency:q}"
        " --classified-out {output.classified:q}"
        " --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} > {log.job:q} 2>&1"


rule tiny_predict:
    input:
        images="data/tiny_imagenet/cache/test.images.npy",
        labels="data/tiny_imagenet/cache/test.labels.npy",
        names="data/tiny_imagenet/cache/test.index.csv",
        model=f"{TINY_OUT}/model.pt",
        code=code("scripts/predict.py", models=[recipe_model("tiny_imagenet_resnet18")]),
    output:
        f"{TINY_OUT}/predictions.csv",
    params:
        torch_threads=section("compute.torch_threads"),  # float sums depend on it
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
        cache=lambda w, input: cache_stem(input.images),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/tiny_predict.log",
    resources:
        mem_mb=8000,
        runtime=30,
        gpu=GPUS_PER_JOB,
    threads: cache_train_threads()  # torch's threads (images decode in the main process)
    shell:
        "python scripts/predict.py --model {input.model:q} --cache {params.cache:q}"
        " --names {input.names:q} --out {output:q} --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} > {log:q} 2>&1"
