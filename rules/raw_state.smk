"""The state files that stand for raw folders read in place (rules/common.smk raw_images_input)."""


# One job per such folder. Its param is the folder's state (every file's name, size, time and
# inode; a function of the wildcards only, which Snakemake's params trigger takes): a changed
# image changes it, the job rewrites the state file, and the jobs that read the folder rerun.
# In dvc.yaml the folder is this stage's dependency alone, so `dvc status` walks it once.
rule raw_state:
    input:
        raw=lambda wildcards: RAW_FOLDERS[wildcards.dataset],
        code=code("scripts/write_raw_state.py"),
    output:
        raw_state_file("{dataset}"),
    wildcard_constraints:
        dataset="|".join(RAW_FOLDERS) or "(?!)",  # no raw folder: no job
    params:
        state=lambda wildcards: cached_folder_state(RAW_FOLDERS[wildcards.dataset]),
    conda:
        "../envs/imgdag.yaml"
    log:
        "logs/raw_state_{dataset}.log",
    resources:
        mem_mb=1000,
        runtime=30,
    shell:
        "python scripts/write_raw_state.py {input.raw:q} {output:q} > {log:q} 2>&1"
