# Results: the tables, per-study figures, the comparison with the seed post's runs, the verdict
# on each rule, and (optionally) TensorBoard event files. All logic is in the package; a rule
# only wires paths. Tables and figures depend on every run, so a changed run rebuilds them and
# nothing upstream.
from functools import partial

from hpstudy.figures import results_targets

FIGURES = f"{RESULTS}/figures"

# The final outputs of this stage, for `rule all`: tables, comparison, findings, every study's
# figures, TensorBoard folders when enabled. (A partial, not a def: rule files hold no functions.)
report_targets = partial(
    results_targets, RESULTS, RUNS, config.get("tensorboard", False)
)


wildcard_constraints:
    study="|".join(map(re.escape, STUDIES)) if STUDIES else "[a-z][a-z0-9_]*",


rule aggregate:
    input:
        params=[run_file(run_id, "params.json") for run_id in RUNS],
        metrics=[run_file(run_id, "metrics.csv") for run_id in RUNS],
        summaries=[run_file(run_id, "summary.json") for run_id in RUNS],
    output:
        metrics=f"{RESULTS}/metrics.csv",
        summary=report(
            f"{RESULTS}/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "summary (one row per run)"},
        ),
        summary_json=f"{RESULTS}/summary.json",
        seed_summary=report(
            f"{RESULTS}/seed_summary.csv",
            caption="../report/seed_summary.rst",
            category="Tables",
            labels={"table": "seed summary (mean and std over seeds)"},
        ),
    log:
        f"{LOGS}/report/aggregate.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        run_ids=" ".join(RUNS),
    shell:
        f"{HPSTUDY} aggregate --runs-dir {RESULTS}/runs --run-ids {{params.run_ids}}"
        " --out-dir $(dirname {output.metrics}) > {log} 2>&1"


rule compare:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        report(
            f"{RESULTS}/comparison.csv",
            caption="../report/comparison.rst",
            category="Tables",
            labels={"table": "comparison with the seed post's runs"},
        ),
    log:
        f"{LOGS}/report/compare.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} compare --summary {{input.summary}} --out {{output}} > {{log}} 2>&1"


rule findings:
    input:
        summary=f"{RESULTS}/summary.csv",
        metrics=f"{RESULTS}/metrics.csv",
        comparison=f"{RESULTS}/comparison.csv",
    output:
        report(
            f"{RESULTS}/findings.md",
            caption="../report/findings.rst",
            category="Findings",
            labels={"file": "findings.md"},
        ),
    log:
        f"{LOGS}/report/findings.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} findings --summary {{input.summary}} --metrics {{input.metrics}}"
        " --comparison {input.comparison} --out {output} > {log} 2>&1"


rule dvc_metrics:
    input:
        f"{RESULTS}/summary.json",
    output:
        f"{RESULTS}/dvc_metrics.json",
    log:
        f"{LOGS}/report/dvc_metrics.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} dvc-metrics --summary {{input}} --out {{output}} > {{log}} 2>&1"


rule figure_curves:
    input:
        metrics=f"{RESULTS}/metrics.csv",
    output:
        png=report(
            f"{FIGURES}/{{study}}/curves.png",
            caption="../report/curves.rst",
            category="{study}",
            subcategory="training curves",
            labels={"study": "{study}", "figure": "loss and accuracy per epoch"},
        ),
        svg=f"{FIGURES}/{{study}}/curves.svg",
    log:
        f"{LOGS}/report/figures/{{study}}/curves.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} figures --kind curves --study {{wildcards.study}}"
        " --metrics {input.metrics} --out {output.png} > {log} 2>&1"


rule figure_accuracy:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        png=report(
            f"{FIGURES}/{{study}}/accuracy.png",
            caption="../report/accuracy.rst",
            category="{study}",
            subcategory="accuracy",
            labels={"study": "{study}", "figure": "test accuracy vs value"},
        ),
        svg=f"{FIGURES}/{{study}}/accuracy.svg",
    log:
        f"{LOGS}/report/figures/{{study}}/accuracy.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} figures --kind accuracy --study {{wildcards.study}}"
        " --summary {input.summary} --out {output.png} > {log} 2>&1"


rule figure_epoch_time:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        png=report(
            f"{FIGURES}/{{study}}/epoch_time.png",
            caption="../report/epoch_time.rst",
            category="{study}",
            subcategory="cost",
            labels={"study": "{study}", "figure": "epoch time vs value"},
        ),
        svg=f"{FIGURES}/{{study}}/epoch_time.svg",
    log:
        f"{LOGS}/report/figures/{{study}}/epoch_time.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} figures --kind epoch_time --study {{wildcards.study}}"
        " --summary {input.summary} --out {output.png} > {log} 2>&1"


rule figure_cost:
    input:
        summary=f"{RESULTS}/summary.csv",
    output:
        png=report(
            f"{FIGURES}/{{study}}/cost.png",
            caption="../report/cost.rst",
            category="{study}",
            subcategory="cost",
            labels={"study": "{study}", "figure": "parameters and memory vs value"},
        ),
        svg=f"{FIGURES}/{{study}}/cost.svg",
    log:
        f"{LOGS}/report/figures/{{study}}/cost.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} figures --kind cost --study {{wildcards.study}}"
        " --summary {input.summary} --out {output.png} > {log} 2>&1"


rule figure_seed:
    input:
        metrics=f"{RESULTS}/metrics.csv",
    output:
        png=report(
            f"{FIGURES}/{{study}}/seed.png",
            caption="../report/seed.rst",
            category="{study}",
            subcategory="seed post",
            labels={"study": "{study}", "figure": "ours beside the seed post's runs"},
        ),
        svg=f"{FIGURES}/{{study}}/seed.svg",
    log:
        f"{LOGS}/report/figures/{{study}}/seed.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} figures --kind seed --study {{wildcards.study}}"
        " --metrics {input.metrics} --out {output.png} > {log} 2>&1"


rule tensorboard:
    input:
        params=run_file("{run_id}", "params.json"),
        metrics=run_file("{run_id}", "metrics.csv"),
        summary=run_file("{run_id}", "summary.json"),
    output:
        directory(f"{RESULTS}/tensorboard/{{run_id}}"),
    log:
        f"{LOGS}/tensorboard/{{run_id}}.log",
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} tensorboard --run-dir $(dirname {{input.summary}})"
        " --out-dir {output} > {log} 2>&1"
