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
        split=command_options.fetch_split_args(DATASET),
        archive=lambda wildcards, input: (
            f"--archive {shlex.quote(input.archive)}" if input.archive else ""
        ),
        # a local folder: its path (a function of the output, which Snakemake does not
        # record: a folder moved or copied elsewhere fetches nothing) ...
        folder=lambda wildcards, output: command_options.folder_option(DATASET),
        # ... and the local source's content digest: changed bytes fetch again
        content=SOURCE_DIGEST,
    shell:
        f"{HPSTUDY} fetch --source {{params.source:q}} --out {{output.zip:q}}"
        " --kaggle-dataset {params.kaggle_dataset:q} {params.split} {params.archive}"
        " {params.folder} > {log:q} 2>&1"


rule preprocess:
    input:
        # ancient when a fetch rerun cannot change the bytes (common.smk)
        zip=RAW_ZIP_INPUT,
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
        split=command_options.preprocess_split_args(DATASET),
        drop_leaks="--drop-leaks" if DATASET["drop_leaks"] else "",
    shell:
        f"{HPSTUDY} preprocess --archive {{input.zip:q}} --out-dir {{params.out_dir:q}}"
        " --size {params.size:q} --name {params.name:q} {params.split} {params.drop_leaks}"
        " --threads {threads} > {log:q} 2>&1"


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
        # a function of the input: Snakemake records no such param (nothing reruns for it)
        data_dir=lambda wildcards, input: os.path.dirname(input.index),
    shell:
        f"{HPSTUDY} audit --data-dir {{params.data_dir:q}}"
        " --near-duplicate-bits {params.near_bits:q} --out {output:q} > {log:q} 2>&1"


# Opt-in (dataset.pred: true): the unlabelled seg_pred images, which nothing trains on.
rule preprocess_pred:
    input:
        # ancient when a fetch rerun cannot change the bytes (common.smk)
        zip=RAW_ZIP_INPUT,
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
        f"{HPSTUDY} preprocess --pred --archive {{input.zip:q}}"
        " --out-dir {params.out_dir:q} --size {params.size:q} --name {params.name:q}"
        " --threads {threads} > {log:q} 2>&1"


rule fetch_weights:
    output:
        LAYOUT.weights_file("{model}", "{file}"),
    log:
        f"{LAYOUT.resources}/logs/fetch-weights-{{model}}-{{file}}.log",
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} fetch-weights --model {{wildcards.model:q}} --out {{output:q}}"
        " > {log:q} 2>&1"
