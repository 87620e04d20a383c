# Data: obtain the raw zip (Kaggle API, a local zip or folder, or the offline digits), decode
# it once into uint8 arrays that every training job loads (and fingerprint every image), then
# audit the fingerprints: duplicates, leakage across splits, conflicting labels.


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
        # settings added later ride on this param, each only when set (see fetch_options)
        split=f"--test-fraction {DATASET['test_fraction']} --split-seed {DATASET['split_seed']}"
        + fetch_options(DATASET),
        archive=lambda wildcards, input: (
            f"--archive {shlex.quote(input.archive)}" if input.archive else ""
        ),
        # a local folder: its path, and its digest so that a changed folder is packed again
        folder=(
            f"--{'path' if DATASET['source'] in ('folder', 'parquet') else 'archive'}"
            f" {shlex.quote(local_folder())}"
            if local_folder()
            else ""
        ),
        folder_digest=lambda wildcards: folder_param(),
    shell:
        "python -m hpstudy fetch --source {params.source} --out {output.zip}"
        " --kaggle-dataset {params.kaggle_dataset} {params.split} {params.archive}"
        " {params.folder} > {log} 2>&1"


rule preprocess:
    input:
        zip=RAW_ZIP,
    output:
        manifest=LAYOUT.manifest(VARIANT),
        arrays=LAYOUT.arrays(VARIANT),
        val=LAYOUT.arrays(VARIANT, paths.VAL_FILES) if DATASET["val_fraction"] else [],
        index=LAYOUT.index(VARIANT),
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
        # settings added later ride on this param, each only when set (preprocess_options)
        split=(
            f"--test-fraction {DATASET['test_fraction']}"
            f" --val-fraction {DATASET['val_fraction']} --split-seed {DATASET['split_seed']}"
            + preprocess_options(DATASET)
        ),
        drop_leaks="--drop-leaks" if DATASET["drop_leaks"] else "",
    shell:
        "python -m hpstudy preprocess --archive {input.zip} --out-dir {params.out_dir}"
        " --size {params.size} --name {params.name} {params.split} {params.drop_leaks}"
        " --threads {threads} > {log} 2>&1"


# Beside the manifest, never an input of a training job: a changed threshold retrains nothing.
rule audit:
    input:
        index=LAYOUT.index(VARIANT),
    output:
        LAYOUT.audit(VARIANT),
    log:
        f"{LAYOUT.data}/logs/audit-{VARIANT}.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        near_bits=config["audit"]["near_duplicate_bits"],
    shell:
        "python -m hpstudy audit --data-dir $(dirname {input.index})"
        " --near-duplicate-bits {params.near_bits} --out {output} > {log} 2>&1"


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
