"""Validation: every notebook run with papermill as an attendee's session on each facility would run it.

One module per job; `matrix.validate` is the one entry and calls the others in this order:

    notebooks    notebooks read as plain JSON, and the parts of a cell the validator looks at
    environments each facility's package environment, built with uv from its image's files, cached by hash
    requirements what each notebook needs of its facility's image (imports, PEP 508 requirements), checked
    kernels      the installed kernelspecs a matrix needs (a missing one stops the command)
    session      one facility's session environment as reproduced here, with its substitutions
    materials    which repository files an attendee's session pulls
    fingerprint  the hashes a run's cache key is made of
    plan         the runs (notebook x facility), each with its cache key
    cache        stored results of unchanged runs, reused instead of run again
    schedule     the order runs start in: longest expected first
    staging      the sessions' working folders, laid out as nbgitpuller lays them out
    pool         runs `jobs` at a time, each in its own child and kernel, watched (run: the child;
                 preload: what the fork server loads once; checks: what is known before a kernel starts)
    display      the progress line while the matrix runs
    results      the result types: runs, failures, substitutions, the report
    report       report.json and report.html on disk
    summary      what the command prints once the matrix has run

`remote.validate_on_hub` is the day-before run (`casabook validate --hub`), the same checks in a real session:

    hubsession   which hub and facility, the token's scopes, the validation user's server, the pull
    gateway      jupyter_server's gateway kernel client, filled in where a hub session needs it
    hubrun       one notebook in the server's own kernel
    hubreport    the hub's column in the report
"""
