"""mnist_lenet5: MNIST idx -> PNG files + .lst -> RecordIO -> uint8 cache -> LeNet-5 -> metrics."""
import os

MNIST_RAW = config["datasets"]["mnist"]["raw_dir"]
MNIST_FILES = {
    "train": ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"],
    "test": ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"],
}
MNIST_OUT = "results/mnist_lenet5"

wildcard_constraints:
    split="train|test",


rule demo_mnist:
    input:
        code("scripts/make_demo.py", "imgdag/demo/mnist.py"),
    output:
        [f"data/demo/mnist/{name}" for names in MNIST_FILES.values() for name in names],
    params:
        folder=lambda w, output: os.path.dirname(output[0]),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/demo_mnist.log",
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/make_demo.py mnist {params.folder:q} > {log:q} 2>&1"


rule mnist_pngs:
    input:
        raw=lambda w: [f"{MNIST_RAW}/{name}" for name in MNIST_FILES[w.split]],
        code=code("scripts/mnist_to_pngs.py"),
    params:
        raw=lambda w, input: os.path.dirname(input.raw[0]),
    output:
        images=directory("data/mnist/images/{split}"),
        lst="data/mnist/{split}.lst",
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/mnist_pngs_{split}.log",
    resources:
        mem_mb=1000,
        runtime=20,
    shell:
        "python scripts/mnist_to_pngs.py --raw {params.raw:q} --split {wildcards.split}"
        " --out-dir {output.images:q} --lst {output.lst:q} > {log:q} 2>&1"


rule mnist_rec:
    input:
        lst="data/mnist/{split}.lst",  # the PNGs it lists come with it
        code=code("scripts/make_rec.py"),
    output:
        rec="data/mnist/{split}.rec",
        idx="data/mnist/{split}.idx",
    params:
        pack=section("recipes.mnist_lenet5.rec"),
        flags=cli_flags("recipes.mnist_lenet5.rec"),
        bad_images=section("checks.bad_images"),
        images=os.path.dirname(rules.mnist_pngs.output.images),  # the .lst paths are under it
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/mnist_rec_{split}.log",
    resources:
        mem_mb=2000,
        runtime=30,
    threads: 2
    shell:
        "python scripts/make_rec.py {input.lst:q} {params.images:q} {params.flags}"
        " --rec {output.rec:q} --idx {output.idx:q} --num-workers {threads} --bad-images {params.bad_images:q}"
        " > {log:q} 2>&1"


rule mnist_array:
    input:
        rec="data/mnist/{split}.rec",
        idx="data/mnist/{split}.idx",
        code=code("scripts/rec_to_array.py"),
    output:
        images="data/mnist/cache/{split}.images.npy",
        labels="data/mnist/cache/{split}.labels.npy",
    params:
        cache=lambda w, output: cache_stem(output.images),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/mnist_array_{split}.log",
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "python scripts/rec_to_array.py --rec {input.rec:q} --idx {input.idx:q}"
        " --out {params.cache:q} > {log:q} 2>&1"


rule mnist_train:
    input:
        train_images="data/mnist/cache/train.images.npy",
        train_labels="data/mnist/cache/train.labels.npy",
        val_images="data/mnist/cache/test.images.npy",
        val_labels="data/mnist/cache/test.labels.npy",
        code=code("scripts/train.py", models=[recipe_model("mnist_lenet5")]),
    output:
        model=f"{MNIST_OUT}/model.pt",
        log_csv=plot(f"{MNIST_OUT}/train_log.csv", x="epoch",
                     y=["train_loss", "val_loss", "train_top1", "val_top1"]),
        curves=report(f"{MNIST_OUT}/curves.png", caption="../report/curves.rst",
                      category="mnist_lenet5"),
    params:
        train=section("recipes.mnist_lenet5.train"),
        train_cache=lambda w, input: cache_stem(input.train_images),
        val_cache=lambda w, input: cache_stem(input.val_images),
        checkpoints=lambda w, output: os.path.join(os.path.dirname(output.model), "checkpoints"),
        torch_threads=section("compute.torch_threads"),  # a rule param: a new count reruns training
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
    conda:
        "../envs/imgdag.yaml"
    log:
        job="logs/mnist_train.log",
        times=f"{MNIST_OUT}/train_times.csv",  # seconds per epoch: wall-clock, versioned by neither git nor DVC
    resources:
        mem_mb=6000,
        runtime=120,
        gpu=GPUS_PER_JOB * TRAIN_PROCESSES,  # one per process
        nodes=DISTRIBUTED["nnodes"],
    threads: cache_train_threads()  # torch's threads (no loader workers)
    # checkpoints are not outputs: Snakemake deletes a failed job's outputs, and a killed
    # run must find them to resume
    # one line per epoch on the terminal (and in the log); no progress bars
    shell:
        f"TQDM_DISABLE=1 {train_launcher()} scripts/train.py --train-cache {{params.train_cache:q}}"
        " --val-cache {params.val_cache:q} --params {params.train:q}"
        " --model-out {output.model:q} --log-csv {output.log_csv:q} --times-csv {log.times:q} --curves-png {output.curves:q}"
        " --checkpoint-dir {params.checkpoints:q} --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} 2>&1 | tee {log.job:q}"


rule mnist_evaluate:
    input:
        test_images="data/mnist/cache/test.images.npy",
        test_labels="data/mnist/cache/test.labels.npy",
        model=f"{MNIST_OUT}/model.pt",
        code=code("scripts/evaluate.py", models=[recipe_model("mnist_lenet5")]),
    output:
        metrics=report(metrics(f"{MNIST_OUT}/metrics.json"), caption="../report/metrics.rst",
                       category="mnist_lenet5"),
        per_class=report(f"{MNIST_OUT}/per_class_accuracy.json",
                         caption="../report/per_class.rst", category="mnist_lenet5"),
        confusion=report(f"{MNIST_OUT}/confusion.csv", caption="../report/confusion.rst",
                         category="mnist_lenet5"),
        classified=plot(f"{MNIST_OUT}/classified.csv", x="actual", y="predicted",
                        template="confusion"),
    params:
        torch_threads=section("compute.torch_threads"),  # float sums depend on it
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
        evaluate=section("recipes.mnist_lenet5.evaluate"),
        test_cache=lambda w, input: cache_stem(input.test_images),
    conda:
        "../envs/imgdag.yaml"
    log:
        job="logs/mnist_evaluate.log",
        latency=f"{MNIST_OUT}/latency.json",  # forward timings and device: wall-clock, versioned by neither git nor DVC
    resources:
        mem_mb=4000,
        runtime=20,
        gpu=GPUS_PER_JOB,
    threads: 4  # CPU cores in all (torch threads + loader workers); Snakemake lowers it to --cores when smaller
    shell:
        "python scripts/evaluate.py --model {input.model:q} --test-cache {params.test_cache:q}"
        " --params {params.evaluate:q} --split test --metrics-out {output.metrics:q}"
        " --confusion-out {output.confusion:q}"
        " --per-class-out {output.per_class:q} --latency-out {log.latency:q}"
        " --classified-out {output.classified:q} --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} > {log.job:q} 2>&1"


rule mnist_predict:
    input:
        lst="data/mnist/test.lst",  # stands for the test PNG folder
        model=f"{MNIST_OUT}/model.pt",
        code=code("scripts/predict.py", models=[recipe_model("mnist_lenet5")]),
    output:
        f"{MNIST_OUT}/predictions.csv",
    params:
        torch_threads=section("compute.torch_threads"),  # float sums depend on it
        cpu_isa=section("compute.cpu_isa"),  # the kernels' vector ISA: results depend on it
        images=str(rules.mnist_pngs.output.images).format(split="test"),  # the folder test.lst lists
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/mnist_predict.log",
    resources:
        mem_mb=4000,
        runtime=20,
        gpu=GPUS_PER_JOB,
    threads: cache_train_threads()  # torch's threads (images decode in the main process)
    shell:
        "python scripts/predict.py --model {input.model:q} --images {params.images:q}"
        " --out {output:q} --threads {threads}"
        " --torch-threads {params.torch_threads:q} --cpu-isa {params.cpu_isa:q} > {log:q} 2>&1"
