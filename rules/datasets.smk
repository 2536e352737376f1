"""The raw paths of params.yaml's datasets exist, checked before any job (both doors)."""


DEMO_RULES = [rules.demo_mnist, rules.demo_imagenet8, rules.demo_ilsvrc_val,
              rules.demo_tiny_imagenet, rules.demo_dog_breed]
# a raw path must exist (or be demo data a rule makes), even when the outputs it fed exist; on a
# default storage provider (profiles/kubernetes) paths name storage objects, which Snakemake checks
if workflow.storage_settings.default_storage_provider is None:
    problems = raw_path_problems(config["datasets"], [f for r in DEMO_RULES for f in r.output])
    if problems:
        raise WorkflowError("the config (params.yaml, --configfile, --config) is not valid:\n  "
                            + "\n  ".join(problems))
DATASETS_CHECKED = "data/datasets.checked"


# Stable content, rewritten when params.yaml's datasets change: DVC's stages that read raw data
# depend on it (imgdag/dvcgen.py), so a raw path that does not exist stops `dvc repro` here, with
# the key named, before DVC looks at the missing file. The check is the Snakefile's own (above);
# the command only writes the marker (dvc.yaml lists the section from the rule's params).
rule datasets_checked:
    params:
        datasets=section("datasets"),
    output:
        DATASETS_CHECKED,
    log:
        "logs/datasets_checked.log",
    localrule: True
    conda:
        "../envs/imgdag.yaml"
    resources:
        mem_mb=100,
        runtime=1,
    shell:
        "echo 'params.yaml datasets: every raw path exists' > {output:q} 2> {log:q}"
