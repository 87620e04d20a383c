# Selection and the final runs (config `selection:` and `final:`; hpstudy.tuning.selection). The
# winner of each study is picked on validation numbers (best.yaml). With `final:`, selecting is
# a checkpoint: it writes the settings of runs that did not exist when the DAG was built (an
# added-runs file, hpstudy.sweep.added_runs); reading that file registers them, and the train rule trains
# them as ordinary, cached, resumable runs, before final.csv tabulates their test accuracy.


if FINAL:

    checkpoint select:
        input:
            grid=[TABLES["summary.csv"], TABLES["metrics.csv"]] if GRID else [],
            searches=[
                LAYOUT.search_file(name, table)
                for name in SEARCHES
                for table in ("summary.csv", "metrics.csv")
            ],
            looks=SELECT_LOOKS,
        output:
            best=report(
                BEST,
                caption="../report/best.rst",
                category="Selection",
                labels={"file": "best.yaml"},
            ),
            runs=FINAL_RUNS,
        log:
            LAYOUT.log("report/select"),
        localrule: True
        conda:
            CONDA_ENV
        params:
            selection=json.dumps(SELECTION),
            final=json.dumps(FINAL),
            sources=f"{SELECT_TABLES_ARG}{SELECT_LOOKS_ARG}",
        shell:
            f"{HPSTUDY} select{{params.sources}} --runs-dir {shlex.quote(LAYOUT.runs)}"
            " --selection {params.selection:q} --final {params.final:q}"
            " --added-out {output.runs:q} --out {output.best:q} > {log:q} 2>&1"

    rule final_table:
        input:
            best=BEST,
            runs=FINAL_RUNS,
            summaries=final_summaries,
        output:
            report(
                FINAL_TABLE,
                caption="../report/final.rst",
                category="Selection",
                labels={"table": "final.csv (the winners' test accuracy)"},
            ),
        log:
            LAYOUT.log("report/final"),
        localrule: True
        conda:
            CONDA_ENV
        shell:
            f"{HPSTUDY} final --best {{input.best:q}} --added {{input.runs:q}}"
            " --summaries {input.summaries:q} --out {output:q} > {log:q} 2>&1"

elif SELECTION:

    rule select:
        input:
            grid=[TABLES["summary.csv"], TABLES["metrics.csv"]] if GRID else [],
            searches=[
                LAYOUT.search_file(name, table)
                for name in SEARCHES
                for table in ("summary.csv", "metrics.csv")
            ],
            looks=SELECT_LOOKS,
        output:
            best=report(
                BEST,
                caption="../report/best.rst",
                category="Selection",
                labels={"file": "best.yaml"},
            ),
        log:
            LAYOUT.log("report/select"),
        localrule: True
        conda:
            CONDA_ENV
        params:
            selection=json.dumps(SELECTION),
            sources=f"{SELECT_TABLES_ARG}{SELECT_LOOKS_ARG}",
        shell:
            f"{HPSTUDY} select{{params.sources}} --runs-dir {shlex.quote(LAYOUT.runs)}"
            " --selection {params.selection:q} --out {output.best:q} > {log:q} 2>&1"
