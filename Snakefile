# hpstudy — re-runs the experiments of "Experiments on hyperparameter tuning in deep learning —
# rules to follow": one training job per distinct hyperparameter setting, then tables, figures
# and a verdict on each of the post's rules. Config: config/README.md. All logic: workflow/hpstudy.
from snakemake.utils import min_version

min_version("9.0")


# The seed reproduction, unless a config file is given with --configfile (then that file alone
# is the config, instead of being deep-merged into this one).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/findings.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/select.smk"
include: "workflow/rules/search.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        run_targets(),
        results_targets(LAYOUT, PLAN, config),
        added_run_targets,
        LAYOUT.arrays(VARIANT, paths.PRED_FILES) if DATASET["pred"] else [],
    localrule: True


# The folders of the optional steps (selection, searches) exist, used or not: DVC tracks them.
onstart:
    for folder in LAYOUT.optional_dirs():
        os.makedirs(folder, exist_ok=True)


# Snakemake's own summary scrolls a job's one-paragraph error away: say it again, last.
onerror:
    reprint_failures(log)
