"""What several harness commands share: errors and exit statuses, worker children, launching a
measured program, statistics and significance, machine information, output files, units, plots."""
