"""envbuild.track: log_metrics / log_params from inside a run. Placeholder: the run issue fills it."""
