# Adaptive searches (config `search:`; hpstudy.tuning.search). Round r of a search is a checkpoint that
# writes its trials (a proposals file, also an added-runs file); the train rule trains them as
# ordinary runs; `search_tell` collects their metric for the next round. A dry run therefore
# shows jobs only up to the first round whose proposals are not written yet.
from hpstudy.report.figure_registry import SEARCH, caption_file


wildcard_constraints:
    search="|".join(SEARCHES) or "no-search",
    round="[0-9]+",


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


# a search's figures, all in one job (the same kinds for every search)
rule search_figures:
    input:
        trials=rules.search_finish.output.trials_csv,
        summary=rules.search_finish.output.summary_csv,
    output:
        [
            report(
                LAYOUT.search_file("{search}", f"figures/{kind}.png"),
                caption=f"../report/{caption_file(SEARCH, kind)}",
                category="Search {search}",
                labels={"search": "{search}", "figure": kind},
            )
            for kind in SEARCH_FIGURES
        ],
        [
            LAYOUT.search_file("{search}", f"figures/{kind}.svg")
            for kind in SEARCH_FIGURES
        ],
    log:
        LAYOUT.log("search/{search}/figures"),
    localrule: True
    conda:
        CONDA_ENV
    params:
        kinds=SEARCH_FIGURES,
        # functions of the input or output: Snakemake records no such param
        tables=lambda wildcards, input: os.path.dirname(input.trials),
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        f"{HPSTUDY} figures --kinds {{params.kinds:q}} --study {{wildcards.search:q}}"
        " --tables {params.tables:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"
