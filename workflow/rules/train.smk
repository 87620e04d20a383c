# Training: one job per run of the sweep. The run's settings and a digest of the training code
# are params, so Snakemake's params trigger retrains exactly the runs a change affects.


rule train:
    input:
        manifest=MANIFEST,
        weights=pretrained_weights,
    output:
        summary=run_file("{run_id}", "summary.json"),
        metrics=run_file("{run_id}", "metrics.csv"),
        params=run_file("{run_id}", "params.json"),
        model=run_file("{run_id}", "model.pt"),
    log:
        f"{LOGS}/train/{{run_id}}.log",
    conda:
        CONDA_ENV
    threads: config["threads"]["train"]
    resources:
        gpu=1,
        mem_mb=16000,
    params:
        settings=lambda wildcards: run_params(RUNS[wildcards.run_id]),
        code=TRAINING_CODE,
        data_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        checkpoint_dir=lambda wildcards: f"{CHECKPOINTS}/{wildcards.run_id}",
        weights=lambda wildcards, input: (
            f"--weights {input.weights}" if input.weights else ""
        ),
    shell:
        "python -m hpstudy train --settings {params.settings:q} --data-dir {params.data_dir}"
        " --out-dir {params.out_dir} --checkpoint-dir {params.checkpoint_dir}"
        " --threads {threads} --gpus {resources.gpu} {params.weights} > {log} 2>&1"
