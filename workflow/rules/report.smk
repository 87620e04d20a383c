# Results of this config: the tables, the post's own runs beside ours, the verdict on each
# rule, every study's figures and (optionally) TensorBoard event files. All logic is in the
# package; a rule only wires paths. The tables depend on every run of this config, so a
# changed run rebuilds them and nothing upstream.
from hpstudy.report.figure_registry import STUDY, caption_file
from hpstudy.rule_targets import OVERVIEW_KINDS, study_figures


wildcard_constraints:
    overview="|".join(OVERVIEW_KINDS),


rule aggregate:
    input:
        run_summaries(RUNS),
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
        f"{HPSTUDY} aggregate --runs-dir {shlex.quote(LAYOUT.runs)}"
        f" --membership {{params.membership:q}} --out-dir {shlex.quote(LAYOUT.results)}"
        " > {log:q} 2>&1"


# the grid's tables that selection, cost and budget read (none for a config of searches only)
GRID_TABLES = (
    [rules.aggregate.output.summary, rules.aggregate.output.metrics] if GRID else []
)


rule compare:
    input:
        summary=rules.aggregate.output.summary,
        metrics=rules.aggregate.output.metrics,
    output:
        table=report(
            LAYOUT.table("comparison.csv"),
            caption="../report/comparison.rst",
            category="Tables",
            labels={"table": "the post's own runs beside ours"},
        ),
        counts=LAYOUT.table("comparison.json"),
    log:
        LAYOUT.log("report/compare"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        assumed=config["comparison"]["assumed_weight_decay"],
        within=config["comparison"]["reproduced_within"],
    shell:
        f"{HPSTUDY} compare --tables {shlex.quote(LAYOUT.results)}"
        " --assumed-weight-decay {params.assumed:q} --reproduced-within {params.within:q}"
        " > {log:q} 2>&1"


# the tables the findings and the figures read
TABLES = {
    "metrics": rules.aggregate.output.metrics,
    "summary": rules.aggregate.output.summary,
    "comparison": rules.compare.output.table,
}


rule findings:
    input:
        **TABLES,
        selected=selection_targets(LAYOUT, config),
        audit=LAYOUT.audit(VARIANT),
        manifest=LAYOUT.manifest(VARIANT),
        looks=LAST_LOOK,
    output:
        findings=report(
            LAYOUT.table("findings.md"),
            caption="../report/findings.rst",
            category="Findings",
            labels={"file": "findings.md"},
        ),
        counts=LAYOUT.table("findings.json"),
    log:
        LAYOUT.log("report/findings"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        margin=config["findings"]["margin"],
        selected=(f" --best {shlex.quote(BEST)}" if SELECTION else "")
        + (f" --final {shlex.quote(FINAL_TABLE)}" if FINAL else ""),
        looks=f" --looks {shlex.quote(LAST_LOOK[0])}" if LAST_LOOK else "",
    shell:
        f"{HPSTUDY} findings --tables {shlex.quote(LAYOUT.results)}"
        f" --runs-dir {shlex.quote(LAYOUT.runs)}"
        " --margin {params.margin:q}{params.selected} --audit {input.audit:q}"
        " --manifest {input.manifest:q}{params.looks} --out {output.findings:q} > {log:q} 2>&1"


rule cost:
    input:
        grid=GRID_TABLES,
        searches=search_tables(LAYOUT, SEARCHES),
        final=final_summaries if FINAL else [],
    output:
        report(
            LAYOUT.table("cost.csv"),
            caption="../report/cost.rst",
            category="Tables",
            labels={"table": "cost.csv (runs, device-hours, images seen)"},
        ),
    log:
        LAYOUT.log("report/cost"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        tables=[LAYOUT.results] if GRID else [],
        searches=[LAYOUT.search_dir(name) for name in SEARCHES],
        runs=LAYOUT.runs,
        margin=config["findings"]["margin"],
    shell:
        f"{HPSTUDY} cost --tables {{params.tables:q}} --search-tables {{params.searches:q}}"
        " --final-summaries {input.final:q} --runs-dir {params.runs:q}"
        " --margin {params.margin:q} --out {output:q} > {log:q} 2>&1"


rule budget:
    input:
        grid=GRID_TABLES,
        searches=search_tables(LAYOUT, SEARCHES, ("trials.csv", *paths.STUDY_TABLES)),
    output:
        report(
            LAYOUT.table("budget.csv"),
            caption="../report/budget.rst",
            category="Tables",
            labels={"table": "budget.csv (expected best of k settings or trials)"},
        ),
    log:
        LAYOUT.log("report/budget"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        tables=[LAYOUT.results] if GRID else [],
        searches=[LAYOUT.search_dir(name) for name in SEARCHES],
    shell:
        f"{HPSTUDY} budget --tables {{params.tables:q}} --search-tables {{params.searches:q}}"
        " --out {output:q} > {log:q} 2>&1"


# Each study's figures in one job (one interpreter, pandas and matplotlib for all of them):
# a rule per study, since the kinds a study gets depend on what it sweeps.
for _study, _kinds in study_figures(PLAN, DATASET).items():

    rule:
        name:
            f"figures_{_study}"
        input:
            **TABLES,
        output:
            [
                report(
                    LAYOUT.figure(_study, kind, "png"),
                    caption=f"../report/{caption_file(STUDY, kind)}",
                    category=_study,
                    subcategory=kind,
                    labels={"study": _study, "figure": kind},
                )
                for kind in _kinds
            ],
            [LAYOUT.figure(_study, kind, "svg") for kind in _kinds],
        log:
            LAYOUT.log(f"report/figures/{_study}"),
        localrule: True
        conda:
            CONDA_ENV
        params:
            study=_study,
            kinds=_kinds,
            # a function of the output: Snakemake records no such param
            out_dir=lambda wildcards, output: os.path.dirname(output[0]),
        shell:
            f"{HPSTUDY} figures --kinds {{params.kinds:q}} --study {{params.study:q}}"
            f" --tables {shlex.quote(LAYOUT.results)} --runs-dir {shlex.quote(LAYOUT.runs)}"
            " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule overview_figure:
    input:
        **TABLES,
    output:
        png=report(
            LAYOUT.overview_figure("{overview}", "png"),
            caption="../report/overview.rst",
            category="The post's runs",
            labels={"figure": "{overview}"},
        ),
        svg=LAYOUT.overview_figure("{overview}", "svg"),
    log:
        LAYOUT.log("report/figures/{overview}"),
    localrule: True
    conda:
        CONDA_ENV
    shell:
        f"{HPSTUDY} figures --kind {{wildcards.overview:q}}"
        f" --tables {shlex.quote(LAYOUT.results)} --out {{output.png:q}} > {{log:q}} 2>&1"


rule tensorboard:
    input:
        rules.train.output.summary,
    output:
        directory(f"{LAYOUT.results}/tensorboard/{RUN}"),
    log:
        LAYOUT.log(f"tensorboard/{RUN}"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        # a function of the input: Snakemake records no such param (nothing reruns for it)
        run_dir=lambda wildcards, input: os.path.dirname(input[0]),
    shell:
        f"{HPSTUDY} tensorboard --run-dir {{params.run_dir:q}} --out-dir {{output:q}}"
        " > {log:q} 2>&1"
