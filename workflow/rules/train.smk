# Training: one job per distinct run. Its params are the run's identity (hpstudy.identity):
# the settings that change its numbers, its seed, the digest of the code that computes them
# and its pretrained weights. Snakemake retrains a run exactly when that identity changes; the
# full settings travel in a file the job reads, so the shell line never changes.


rule train:
    input:
        manifest=lambda wildcards: LAYOUT.manifest(wildcards.run_id.split("/")[0]),
        weights=pretrained_weights,
    output:
        summary=LAYOUT.run_file("{run_id}", "summary.json"),
        metrics=LAYOUT.run_file("{run_id}", "metrics.csv"),
        params=LAYOUT.run_file("{run_id}", "params.json"),
        model=LAYOUT.run_file("{run_id}", "model.pt"),
        predictions=LAYOUT.run_file("{run_id}", paths.PREDICTIONS),
    log:
        LAYOUT.run_file("{run_id}", paths.TRAIN_LOG),
    conda:
        CONDA_ENV
    threads: config["threads"]["train"]
    resources:
        gpu=1,
        mem_mb=16000,
    params:
        identity=lambda wildcards: RUNS[wildcards.run_id].identity_json,
    shell:
        f"python -m hpstudy train --settings {paths.SETTINGS_ROOT}/{{wildcards.run_id}}.json"
        " --data-dir $(dirname {input.manifest}) --out-dir $(dirname {output.summary})"
        " --threads {threads} --gpus {resources.gpu} > {log} 2>&1"
