"""dog_breed_transfer: Kaggle dog-breed files -> train/valid/train_valid/test class folders ->
frozen features once per backbone -> head on the concatenated features -> Kaggle submission."""
import os

DOG_RAW = config["datasets"]["dog_breed"]["raw"]
DOG_RAW_FILES = ["train.zip", "test.zip", "labels.csv", "sample_submission.csv"]
DOG_LISTS = {name: f"data/dog_breed/lists/{name}.lst"
             for name in ["train", "valid", "train_valid", "test"]}
DOG_OUT = "results/dog_breed_transfer"
# feature set name -> (index in recipes.dog_breed_transfer.backbones, the entry)
DOG_BACKBONES = {f"{b['name']}-{b['size']}px": (i, b)
                 for i, b in enumerate(config["recipes"]["dog_breed_transfer"]["backbones"])}
if len(DOG_BACKBONES) != len(config["recipes"]["dog_breed_transfer"]["backbones"]):
    raise ValueError("recipes.dog_breed_transfer.backbones: a name and size appear twice")

rule demo_dog_breed:
    input:
        code("scripts/make_demo.py", "imgdag/demo/dog_breed.py"),
    output:
        [f"data/demo/dog_breed/{name}" for name in DOG_RAW_FILES],
    params:
        folder=lambda w, output: os.path.dirname(output[0]),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/demo_dog_breed.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/make_demo.py dog_breed {params.folder:q} > {log:q} 2>&1"


rule dog_reorg:
    input:
        raw=[f"{DOG_RAW}/{name}" for name in DOG_RAW_FILES],
        code=code("scripts/reorg_dog_breed.py"),
    output:
        folders=directory("data/dog_breed/folders"),
        lists=list(DOG_LISTS.values()),  # stand for the folders downstream
        classes="data/dog_breed/lists/classes.txt",
    params:
        raw=lambda w, input: os.path.dirname(input.raw[0]),
        lists=lambda w, output: os.path.dirname(output.classes),
        valid_ratio=section("recipes.dog_breed_transfer.valid_ratio"),
        empty_classes=section("checks.empty_classes"),
        bad_images=section("checks.bad_images"),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/dog_reorg.log",
    resources:
        mem_mb=2000,
        runtime=30,
    threads: 2  # processes checking that the images decode
    shell:
        "python scripts/reorg_dog_breed.py --raw {params.raw:q} --out {output.folders:q}"
        " --valid-ratio {params.valid_ratio:q} --lists-dir {params.lists:q}"
        " --empty-classes {params.empty_classes:q} --bad-images {params.bad_images:q} --workers {threads}"
        " > {log:q} 2>&1"


rule dog_features:
    input:
        lists=[DOG_LISTS["train_valid"], DOG_LISTS["test"]],
        # the weight file is a dependency when it exists; without it the backbone is random
        weights=lambda w: [f for f in [DOG_BACKBONES[w.backbone][1]["weights"]]
                           if os.path.isfile(f)],
        code=code("scripts/extract_features.py"),
    output:
        "data/dog_breed/features/{backbone}.pt",
    wildcard_constraints:
        backbone="[^/]+",
    params:
        torch_threads=section("compute.torch_threads"),  # float sums depend on it
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
        backbone=lambda w: section(
            f"recipes.dog_breed_transfer.backbones.{DOG_BACKBONES[w.backbone][0]}"),
        features=section("recipes.dog_breed_transfer.features"),
        folders=rules.dog_reorg.output.folders,  # the lists' paths are under it
        cache=lambda w, output: os.path.join(os.path.dirname(output[0]), "cache"),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/dog_features_{backbone}.log",
    resources:
        mem_mb=16000,
        runtime=240,
        gpu=GPUS_PER_JOB,
    threads: 4  # CPU cores in all (torch threads + loader workers); Snakemake lowers it to --cores when smaller
    # the cache (by backbone, weight file hash, size and image list) is not an output: it
    # outlives reruns, so features are computed once however often this job reruns
    shell:
        "python scripts/extract_features.py --backbone {params.backbone:q}"
        " --params {params.features:q} --root {params.folders:q} --lists {input.lists:q}"
        " --cache-dir {params.cache:q} --out {output:q} --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} > {log:q} 2>&1"


rule dog_head:
    input:
        features=expand("data/dog_breed/features/{backbone}.pt", backbone=DOG_BACKBONES),
        **DOG_LISTS,
        classes="data/dog_breed/lists/classes.txt",
        sample_submission=f"{DOG_RAW}/sample_submission.csv",
        code=code("scripts/train_transfer_head.py"),
    output:
        metrics=report(metrics(f"{DOG_OUT}/metrics.json"), caption="../report/metrics.rst",
                       category="dog_breed_transfer"),
        log_csv=plot(f"{DOG_OUT}/train_log.csv", x="epoch",
                     y=["train_loss", "val_loss", "train_top1", "val_top1"]),
        curves=report(f"{DOG_OUT}/curves.png", caption="../report/curves.rst",
                      category="dog_breed_transfer"),
        run_info=f"{DOG_OUT}/run_info.json",
        retrain_log=f"{DOG_OUT}/train_valid_log.csv",
        submission=f"{DOG_OUT}/submission.csv",
    params:
        head=section("recipes.dog_breed_transfer.head"),
        checkpoints=lambda w, output: os.path.join(os.path.dirname(output.metrics), "checkpoints"),
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/dog_head.log",
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=GPUS_PER_JOB,
    threads: 1  # a small MLP on cached features: more CPU threads only add synchronisation
    # one line per epoch on the terminal (and in the log); no progress bars
    shell:
        "TQDM_DISABLE=1 python scripts/train_transfer_head.py --features {input.features:q}"
        " --train {input.train:q} --valid {input.valid:q} --train-valid {input.train_valid:q}"
        " --test {input.test:q} --classes {input.classes:q}"
        " --sample-submission {input.sample_submission:q} --params {params.head:q}"
        " --metrics-out {output.metrics:q} --run-info-out {output.run_info:q}"
        " --log-csv {output.log_csv:q}"
        " --curves-png {output.curves:q} --retrain-log-csv {output.retrain_log:q}"
        " --submission-out {output.submission:q} --checkpoint-dir {params.checkpoints:q}"
        " --threads {threads} --cpu-isa {params.cpu_isa:q} 2>&1 | tee {log:q}"
