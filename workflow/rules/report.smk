# Results of this config: the tables, the comparison with the post's own runs, the verdict on
# each rule, every study's figures and (optionally) TensorBoard event files. All logic is in
# the package; a rule only wires paths. The tables depend on every run of this config, so a
# changed run rebuilds them and nothing upstream.
from hpstudy.targets import FIGURE_KINDS

TABLES = {
    name: LAYOUT.table(name)
    for name in ("metrics.csv", "summary.csv", "comparison.csv")
}


wildcard_constraints:
    study="|".join(PLAN.studies),
    kind="|".join(FIGURE_KINDS),


rule aggregate:
    input:
        [LAYOUT.run_file(rid, "summary.json") for rid in RUNS],
    output:
        metrics=LAYOUT.table("metrics.csv"),
        summary=report(
            LAYOUT.table("summary.csv"),
            caption="../report/summary.rst",
            category="Tables",
            labels={"table": "summary (one row per study and run)"},
        ),
        summary_json=LAYOUT.table("summary.json"),
        seed_summary=report(
            LAYOUT.table("seed_summary.csv"),
            caption="../report/seed_summary.rst",
            category="Tables",
            labels={"table": "seed summary (mean and spread over seeds)"},
        ),
        headline=LAYOUT.table("headline.json"),
    log:
        LAYOUT.log("report/aggregate"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        # content-addressed: a new path exactly when a study gains, loses or relabels a run
        membership=MEMBERSHIP,
    shell:
        f"{HPSTUDY} aggregate --runs-dir {LAYOUT.runs} --membership {{params.membership}}"
        f" --out-dir {LAYOUT.results} > {{log}} 2>&1"


rule compare:
    input:
        summary=TABLES["summary.csv"],
    output:
        report(
            TABLES["comparison.csv"],
            caption="../report/comparison.rst",
            category="Tables",
            labels={"table": "comparison with the post's own runs"},
        ),
    log:
        LAYOUT.log("report/compare"),
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} compare --summary {{input.summary}} --out {{output}} > {{log}} 2>&1"


rule findings:
    input:
        **TABLES,
    output:
        report(
            LAYOUT.table("findings.md"),
            caption="../report/findings.rst",
            category="Findings",
            labels={"file": "findings.md"},
        ),
    log:
        LAYOUT.log("report/findings"),
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} findings --tables {LAYOUT.results} --out {{output}} > {{log}} 2>&1"


rule figure:
    input:
        **TABLES,
    output:
        png=report(
            LAYOUT.figure("{study}", "{kind}", "png"),
            caption="../report/figure.rst",
            category="{study}",
            subcategory="{kind}",
            labels={"study": "{study}", "figure": "{kind}"},
        ),
        svg=LAYOUT.figure("{study}", "{kind}", "svg"),
    log:
        LAYOUT.log("report/figures/{study}/{kind}"),
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} figures --kind {{wildcards.kind}} --study {{wildcards.study}}"
        f" --tables {LAYOUT.results} --out {{output.png}} > {{log}} 2>&1"


rule tensorboard:
    input:
        LAYOUT.run_file("{run_id}", "summary.json"),
    output:
        directory(f"{LAYOUT.results}/tensorboard/{{run_id}}"),
    log:
        LAYOUT.log("tensorboard/{run_id}"),
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} tensorboard --run-dir $(dirname {{input}}) --out-dir {{output}} > {{log}} 2>&1"
