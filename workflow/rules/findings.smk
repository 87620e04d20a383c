# Verdicts that settle themselves (config `findings: sequential:`; hpstudy.report.looks). Look k
# of a sequential sweep is a checkpoint, like a search round: it judges every claim still open
# on the first n_k seeds of its settings and writes an added-runs file naming the next seeds of
# exactly the settings those claims compare; the train rule trains them as ordinary runs. The
# last look's file holds each claim's verdict, the looks and seeds it took and why it stopped.
from hpstudy.report.sequential import schedule

SEQUENTIAL = config["findings"].get("sequential")
LOOKS = (
    schedule(len(config["seeds"]), SEQUENTIAL.get("step", 2), SEQUENTIAL["max_seeds"])
    if SEQUENTIAL and GRID
    else []
)
LAST_LOOK = [LAYOUT.look(len(LOOKS) - 1)] if LOOKS else []


wildcard_constraints:
    look="[0-9]+",


def look_summaries(wildcards):
    """The summaries look k reads: the config's runs and those the earlier looks added."""
    files = [LAYOUT.run_file(rid, "summary.json") for rid in RUNS]
    for j in range(int(wildcards.look)):
        path = checkpoints.findings_look.get(look=str(j)).output[0]
        files += [
            LAYOUT.run_file(r.run_id, "summary.json") for r in register_added(path)
        ]
    return files


if LOOKS:

    checkpoint findings_look:
        input:
            summaries=look_summaries,
            previous=lambda wildcards: [
                LAYOUT.look(j) for j in range(int(wildcards.look))
            ],
        output:
            LAYOUT.look("{look}"),
        log:
            LAYOUT.log("findings/look-{look}"),
        localrule: True
        conda:
            CONDA_ENV
        params:
            runs=LAYOUT.runs,
            membership=MEMBERSHIP,
            looks=",".join(map(str, LOOKS)),
            margin=config["findings"]["margin"],
        shell:
            f"{HPSTUDY} looks --runs-dir {{params.runs:q}} --membership {{params.membership:q}}"
            " --look {wildcards.look:q} --looks {params.looks:q} --previous {input.previous:q}"
            " --margin {params.margin:q} --out {output:q} > {log:q} 2>&1"
