# Data: obtain the raw Kaggle-layout zip (Kaggle API, a local copy, or the offline digits),
# then decode it once into uint8 arrays that every training job loads.


# Internet-bound: runs on the machine snakemake was started on (cluster login node).
localrules:
    fetch_data,
    fetch_weights,


rule fetch_data:
    input:
        archive=archive_input,
    output:
        zip=RAW_ZIP,
        meta=RAW_META,
    log:
        f"{LAYOUT.data}/logs/fetch-{DATASET['name']}.log",
    conda:
        CONDA_ENV
    params:
        source=DATASET["source"],
        kaggle_dataset=DATASET["kaggle_dataset"],
        split=f"--test-fraction {DATASET['test_fraction']} --split-seed {DATASET['split_seed']}",
        archive=lambda wildcards, input: (
            f"--archive {shlex.quote(input.archive)}" if input.archive else ""
        ),
    shell:
        "python -m hpstudy fetch --source {params.source} --out {output.zip}"
        " --kaggle-dataset {params.kaggle_dataset} {params.split} {params.archive} > {log} 2>&1"


rule preprocess:
    input:
        zip=RAW_ZIP,
    output:
        manifest=LAYOUT.manifest(VARIANT),
        arrays=LAYOUT.arrays(VARIANT),
    log:
        f"{LAYOUT.data}/logs/preprocess-{VARIANT}.log",
    conda:
        CONDA_ENV
    threads: config["threads"]["preprocess"]
    resources:
        mem_mb=8000,
    params:
        size=DATASET["image_size"],
        name=DATASET["name"],
        out_dir=lambda wildcards, output: os.path.dirname(output.manifest),
    shell:
        "python -m hpstudy preprocess --archive {input.zip} --out-dir {params.out_dir}"
        " --size {params.size} --name {params.name} --threads {threads} > {log} 2>&1"


# Opt-in (dataset.pred: true): the unlabelled seg_pred images, which nothing trains on.
rule preprocess_pred:
    input:
        zip=RAW_ZIP,
    output:
        LAYOUT.arrays(VARIANT, paths.PRED_FILES),
    log:
        f"{LAYOUT.data}/logs/preprocess-pred-{VARIANT}.log",
    conda:
        CONDA_ENV
    threads: config["threads"]["preprocess"]
    resources:
        mem_mb=8000,
    params:
        size=DATASET["image_size"],
        name=DATASET["name"],
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m hpstudy preprocess --pred --archive {input.zip} --out-dir {params.out_dir}"
        " --size {params.size} --name {params.name} --threads {threads} > {log} 2>&1"


rule fetch_weights:
    output:
        LAYOUT.weights_file("{model}", "{file}"),
    log:
        f"{LAYOUT.resources}/logs/fetch-weights-{{model}}-{{file}}.log",
    conda:
        CONDA_ENV
    shell:
        "python -m hpstudy fetch-weights --model {wildcards.model} --out {output} > {log} 2>&1"
