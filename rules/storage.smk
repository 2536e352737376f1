"""With a default storage provider (profiles/kubernetes: pods share no file system), every input
is a storage object, the code files the rules list too. One local job per code file copies it
from the checkout into the storage, so a code change reruns the jobs that list the file, as
without a storage. (The jobs run the workflow's sources that Snakemake deploys in each pod.)"""


if workflow.storage_settings.default_storage_provider is not None:

    rule code_to_storage:
        input:
            local("{code}"),
        output:
            "{code}",
        wildcard_constraints:
            code=r"(?:imgdag|scripts)/[\w/]+\.py",
        log:
            "logs/code_to_storage/{code}.log",
        localrule: True
        resources:
            mem_mb=100,
            runtime=1,
        shell:
            "cp {input:q} {output:q} 2> {log:q}"
