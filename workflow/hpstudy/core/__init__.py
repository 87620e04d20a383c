"""The shared floor: errors, atomic writes, the config schema and its validation, value
text, statistics, disk paths and what a run's files hold. Imports no stage."""
