"""Plan a study: validate the config, expand the cell matrix, build torch environments, launch jobs."""
