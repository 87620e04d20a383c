# Verdicts that settle themselves (config `findings: sequential:`; hpstudy.report.looks). Look k
# of a sequential sweep is a checkpoint, like a search round: it judges every claim still open
# on the first n_k seeds of its settings and writes an added-runs file naming the next seeds of
# exactly the settings those claims compare; the train rule trains them as ordinary runs. The
# last look's file holds each claim's verdict, the looks and seeds it took and why it stopped.
from hpstudy.report.sequential import schedule

# findings.sequential sets the looks; selection.sequential alone sets them when it is off
SEQUENTIAL = config["findings"].get("sequential")
SELECT_SEQUENTIAL = (SELECTION or {}).get("sequential") if GRID else None
_LOOKS_FROM = SEQUENTIAL or SELECT_SEQUENTIAL
LOOKS = (
    schedule(len(config["seeds"]), _LOOKS_FROM.get("step", 2), _LOOKS_FROM["max_seeds"])
    if _LOOKS_FROM and GRID
    else []
)
ALL_LOOKS = [LAYOUT.look(k) for k in range(len(LOOKS))]
LAST_LOOK = ALL_LOOKS[-1:] if SEQUENTIAL and GRID else []
# what the select rules add when selection.sequential is on: every look, and the membership
SELECT_LOOKS = ALL_LOOKS if SELECT_SEQUENTIAL else []
_QUOTED_LOOKS = " ".join(map(shlex.quote, ALL_LOOKS))
SELECT_LOOKS_ARG = (
    f" --looks {_QUOTED_LOOKS} --membership {shlex.quote(MEMBERSHIP)}"
    if SELECT_SEQUENTIAL
    else ""
)
_SELECTION_JSON = shlex.quote(json.dumps(SELECTION)) if SELECT_SEQUENTIAL else ""
LOOK_CLAIMS_ARG = "".join(
    (
        " --findings" if SEQUENTIAL else "",
        f" --selection {_SELECTION_JSON}" if SELECT_SEQUENTIAL else "",
    )
)


wildcard_constraints:
    look="[0-9]+",


def look_summaries(wildcards):
    """The summaries look k reads: the config's runs and those the earlier looks added."""
    files = run_summaries(RUNS)
    for j in range(int(wildcards.look)):
        path = checkpoints.findings_look.get(look=str(j)).output[0]
        files += run_summaries(r.run_id for r in register_added(path))
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
            claims=LOOK_CLAIMS_ARG,
        shell:
            f"{HPSTUDY} looks --runs-dir {{params.runs:q}} --membership {{params.membership:q}}"
            " --look {wildcards.look:q} --looks {params.looks:q} --previous {input.previous:q}"
            " --margin {params.margin:q}{params.claims} --out {output:q} > {log:q} 2>&1"
