# Selection and the final runs (config `selection:` and `final:`; hpstudy.tuning.selection). The
# winner of each study is picked on validation numbers (best.yaml). Selecting is a checkpoint:
# with `final:` it also writes the settings of runs that did not exist when the DAG was built
# (an added-runs file, hpstudy.sweep.added_runs); reading that file registers them, and the
# train rule trains them as ordinary, cached, resumable runs, before final.csv tabulates their
# test accuracy. Without `final:` nothing reads its added runs: it is an ordinary step.
FINAL_ARGS = " --final {params.final:q} --added-out {output.runs:q}" if FINAL else ""


checkpoint select:
    input:
        grid=GRID_TABLES,
        searches=search_tables(LAYOUT, SEARCHES),
        looks=SELECT_LOOKS,
    output:
        **({"runs": FINAL_RUNS} if FINAL else {}),
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
        **({"final": json.dumps(FINAL)} if FINAL else {}),
        selection=json.dumps(SELECTION),
        sources=f"{SELECT_TABLES_ARG}{SELECT_LOOKS_ARG}",
    shell:
        f"{HPSTUDY} select{{params.sources}} --runs-dir {shlex.quote(LAYOUT.runs)}"
        f" --selection {{params.selection:q}}{FINAL_ARGS}"
        " --out {output.best:q} > {log:q} 2>&1"


# only with `final:` (its runs come from the checkpoint's added-runs file)
if FINAL:

    rule final_table:
        input:
            best=rules.select.output.best,
            runs=rules.select.output.runs,
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
