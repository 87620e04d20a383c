# Training: one job per distinct run (of the sweep, or added by a checkpoint: common.smk). Its params are the run's identity (hpstudy.training.identity):
# the settings that change its numbers, its seed, the digest of the code that computes them
# and its pretrained weights. Snakemake retrains a run exactly when that identity changes; the
# full settings travel in a file the job reads, so the shell line never changes.
from hpstudy.sweep.run_times import train_priority


rule train:
    input:
        manifest=LAYOUT.manifest("{variant}"),
        weights=pretrained_weights if ANY_PRETRAINED else [],
    output:
        **{
            key: LAYOUT.run_file(RUN, name)
            for key, name in paths.RUN_OUTPUT_NAMES.items()
        },
    log:
        LAYOUT.run_file(RUN, paths.TRAIN_LOG),
    # the longest runs first (hpstudy.sweep.run_times.train_priority)
    priority: lambda wildcards: train_priority(known_run(wildcards).settings)
    conda:
        CONDA_ENV
    threads: config["threads"]["train"]
    resources:
        gpu=1,
        mem_mb=16000,
    params:
        identity=lambda wildcards: known_run(wildcards).identity_json,
        # functions of the input or output: Snakemake records no such param, so these paths
        # (quoted on the shell line) are never part of a run's identity
        settings=lambda wildcards, output: paths.settings_file(run_of(wildcards)),
        data_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
    shell:
        f"{HPSTUDY} train --settings {{params.settings:q}} --data-dir {{params.data_dir:q}}"
        " --out-dir {params.out_dir:q} --threads {threads} --gpus {resources.gpu}"
        " > {log:q} 2>&1"
