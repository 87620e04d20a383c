# Adaptive searches (config `search:`; hpstudy.tuning.search). Round r of a search is a checkpoint that
# writes its trials (a proposals file, also an added-runs file); the train rule trains them as
# ordinary runs; `search_tell` collects their metric for the next round. A dry run therefore
# shows jobs only up to the first round whose proposals are not written yet.


wildcard_constraints:
    search="|".join(SEARCHES) or "no-search",
    round="[0-9]+",
    search_kind="|".join(SEARCH_FIGURES),


checkpoint search_round:
    input:
        results=lambda wildcards: [
            LAYOUT.search_results(wildcards.search, k)
            for k in range(int(wildcards.round))
        ],
    output:
        LAYOUT.proposals("{search}", "{round}"),
    log:
        LAYOUT.log("search/{search}/round-{round}"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        config=lambda wildcards: search_config_json(wildcards.search),
    shell:
        f"{HPSTUDY} search propose --config {{params.config:q}} --search {{wildcards.search:q}}"
        " --round {wildcards.round:q} --results {input.results:q} --out {output:q}"
        " > {log:q} 2>&1"


rule search_tell:
    input:
        proposals=rules.search_round.output[0],
        summaries=trial_summaries,
        # every output of the round's trials: a trial trained again is told once it is done
        trials=lambda wildcards: run_outputs(
            run.run_id for run in trial_runs(wildcards)
        ),
    output:
        LAYOUT.search_results("{search}", "{round}"),
    log:
        LAYOUT.log("search/{search}/tell-{round}"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        config=lambda wildcards: search_config_json(wildcards.search),
    shell:
        f"{HPSTUDY} search tell --config {{params.config:q}} --search {{wildcards.search:q}}"
        " --proposals {input.proposals:q} --summaries {input.summaries:q} --out {output:q}"
        " > {log:q} 2>&1"


rule search_finish:
    input:
        results=lambda wildcards: [
            LAYOUT.search_results(wildcards.search, k)
            for k in range(SEARCHES[wildcards.search]["rounds"])
        ],
        trials=search_trial_outputs,
    output:
        **{
            name.replace(".", "_"): LAYOUT.search_file("{search}", name)
            for name in paths.SEARCH_FILES
        },
    log:
        LAYOUT.log("search/{search}/finish"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        config=lambda wildcards: search_config_json(wildcards.search),
        # a function of the output: Snakemake records no such param (nothing reruns for it)
        out_dir=lambda wildcards, output: os.path.dirname(output.trials_csv),
    shell:
        f"{HPSTUDY} search finish --config {{params.config:q}} --search {{wildcards.search:q}}"
        " --results {input.results:q} --out {params.out_dir:q} > {log:q} 2>&1"


rule search_figure:
    input:
        trials=rules.search_finish.output.trials_csv,
        summary=rules.search_finish.output.summary_csv,
    output:
        png=report(
            LAYOUT.search_file("{search}", "figures/{search_kind}.png"),
            caption="../report/search_figure.rst",
            category="Search {search}",
            labels={"search": "{search}", "figure": "{search_kind}"},
        ),
        svg=LAYOUT.search_file("{search}", "figures/{search_kind}.svg"),
    log:
        LAYOUT.log("search/{search}/figures/{search_kind}"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        # a function of the input: Snakemake records no such param (nothing reruns for it)
        tables=lambda wildcards, input: os.path.dirname(input.trials),
    shell:
        f"{HPSTUDY} figures --kind {{wildcards.search_kind:q}} --study {{wildcards.search:q}}"
        " --tables {params.tables:q} --out {output.png:q} > {log:q} 2>&1"
